"""latentlab: look inside variational autoencoders.

`latentlab.explore(model, data)` opens the window on your own VAE and `latentlab.evaluate(model,
data)` returns its test-set ELBO, KL and log p(x) estimate; `latentlab.LatentModel` is the protocol
to subclass for a model latentlab cannot wrap by itself. All three are imported on first use, so
`import latentlab` stays cheap and needs neither torch nor Qt.
"""

from ._version import __version__

__all__ = ["LatentModel", "__version__", "evaluate", "explore"]


def __getattr__(name):
    if name in ("evaluate", "explore"):
        from . import api

        return getattr(api, name)
    if name == "LatentModel":
        from .core.models.adapters import LatentModel

        return LatentModel
    raise AttributeError(f"module 'latentlab' has no attribute {name!r}")
