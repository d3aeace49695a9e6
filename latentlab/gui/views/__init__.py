"""The main panels, one module each; they never import each other.

latent        the latent scatter with the prior circles, clicks, hover and selections
decoded       the image decoded at the marker
training      the Training form, the β slider, Train/Stop
open_model    File → Open model…
open_table    File → Open latent table…
"""
