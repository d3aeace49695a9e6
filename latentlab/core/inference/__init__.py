"""What a trained model says about its data: the numbers and maps every view and command reports.

objectives    the ELBO, KL, IWAE bound, in nats per example
analysis      encode, decode, evaluate, KL per dimension, active units, traversals, paths
batches       the one chunked, stoppable, progress-reporting loop over rows (encode_rows)
posterior     the exact 2-D posterior on a grid and the IWAE curve
aggregate     the aggregate posterior q(z), its holes, KL(q(z) || p(z))
projection    how K dimensions are shown in 2-D (pair, PCA, UMAP, t-SNE) and a click lifted back
maps          UMAP and t-SNE maps of the latent means, fitted with progress and stops
selection     which 2-D points lie in a rectangle or a lasso
plane         millions of means in the shown plane: chunked covariance, float32 coordinates
density_pyramid   millions of 2-D points aggregated once: level pictures, cell runs, nearest and region queries
spatial       C×h×w latents kept in their layout: channel maps, KL per channel and position, PCA over channels
"""
