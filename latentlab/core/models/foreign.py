"""One door for a model object from anywhere (a `PATH.py:NAME` callable, the Python API): the
wrapper that knows its library, so the same object gives the same numbers whichever way it came in.

    a LatentModel                          as it is
    diffusers' AutoencoderKL / AutoencoderTiny   DiffusersVAE: [-1, 1] inputs, N(0, I) prior
    a pythae model                         PythaeVAE: .encoder/.decoder, its likelihood and prior
    any other nn.Module                    TorchVAE (duck typing)
"""

from __future__ import annotations

from torch import nn

from .adapters import LatentModel, as_latent_model
from .diffusers_vae import DiffusersVAE, is_diffusers_autoencoder
from .pythae_vae import PythaeVAE, is_pythae_model


def as_model(obj, *, likelihood=None, name: str = "") -> LatentModel:
    """A LatentModel for `obj`; `name` is only a fallback label (the class name is preferred)."""
    if isinstance(obj, LatentModel):
        return as_latent_model(obj, likelihood=likelihood)
    if is_diffusers_autoencoder(obj):
        return DiffusersVAE(obj, likelihood=likelihood, name=type(obj).__name__)
    if is_pythae_model(obj):
        return PythaeVAE(obj, likelihood=likelihood)
    return as_latent_model(obj, likelihood=likelihood, name=type(obj).__name__ if isinstance(obj, nn.Module) else name)
