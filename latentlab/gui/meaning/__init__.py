"""What the latent space means: panels that read it against labels, factors and another model.
Each panel is one module; they never import each other.

vector        attribute vectors: from two selections, two labels or a factor; trust, plane, analogies
factors       disentanglement scores and the factor × latent importance heat map
outliers      the images the model explains worst, worst first
compare       two models side by side: linked views, their numbers, one image decoded by both
install       puts the panels in the main window (tabs, the comparison window, its menu entry)
pictures      image grids as pixmaps, shared by the panels
"""
