"""latentlab: look inside variational autoencoders."""

__version__ = "0.1.0"
