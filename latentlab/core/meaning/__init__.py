"""What the latent space means: directions that carry an attribute, how well the code separates known
factors, and the images a model explains worst.

attributes    attribute vectors from two groups or a factor, how far to trust them, their plane, analogies
vectors       attribute vectors as .npz files (no pickle), validated on load
disentanglement, disentanglement_votes   MIG, DCI, SAP; the β-VAE and FactorVAE scores
outliers      the images a model explains worst, by reconstruction error or IWAE log p(x)
"""
