"""diffusers' AutoencoderKL (Stable Diffusion's VAE) as a LatentModel, for `diffusers:DIR` specs.

diffusers is optional (`pip install latentlab[diffusers]`) and imported only here, only when such
a spec is opened. Its images live in [-1, 1]; its posterior is `latent_dist` (mean, logvar) of
shape (C, h, w), flattened to K = C·h·w for the views. The views use the unscaled latent, the
space whose prior N(0, I) the autoencoder's KL term was trained against; `scaling_factor` (the
factor diffusion pipelines multiply latents by) is reported by describe() and not applied.
The decoder has no likelihood of its own, so a Gaussian with a fixed scale stands in for it.
"""

from __future__ import annotations

from pathlib import Path

from latentlab.core.errors import ModelError
from latentlab.core.text import short

from .adapters import TorchVAE, one_line

DEFAULT_LIKELIHOOD = "gaussian:0.1"


class DiffusersVAE(TorchVAE):
    def __init__(self, vae, *, likelihood=None, name: str = "AutoencoderKL"):
        super().__init__(vae, likelihood=likelihood or DEFAULT_LIKELIHOOD, name=name)
        self.input_range = (-1.0, 1.0)
        self.in_channels = int(vae.config.in_channels)
        self.scaling_factor = float(getattr(vae.config, "scaling_factor", 1.0) or 1.0)

    def encode(self, x):
        if x.shape[1] != self.in_channels:
            raise ModelError(f"{self.name} reads {self.in_channels}-channel images, but the data has "
                             f"{x.shape[1]} channel{'s' if x.shape[1] != 1 else ''}.")
        return super().encode(x)

    def describe(self) -> str:
        return (f"{self.name} (K = {self.latent_dim} = {'×'.join(map(str, self.latent_shape))}, {self.likelihood}, "
                f"scaling factor {self.scaling_factor:g} not applied)")


def load_diffusers(folder: str, *, likelihood=None, device="cpu") -> DiffusersVAE:
    """Open a folder written by AutoencoderKL.save_pretrained; safetensors weights only, no network.
    The folder's config and weights are checked first by the caller (core.files.diffusers_folder):
    here diffusers reads them, with its log quiet (it would echo a config's unknown fields)."""
    path = Path(folder).expanduser()
    try:
        from diffusers import AutoencoderKL
        from diffusers.utils import logging as diffusers_logging
    except ImportError:
        raise ModelError("Opening a diffusers:DIR model needs diffusers: pip install latentlab[diffusers].") from None
    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        vae = AutoencoderKL.from_pretrained(str(path), use_safetensors=True, local_files_only=True,
                                            low_cpu_mem_usage=False)
    except Exception as exc:  # noqa: BLE001 - diffusers raises many kinds for a broken folder
        raise ModelError(f"diffusers could not load {short(str(path), 120)}: {one_line(exc)}.") from None
    finally:
        diffusers_logging.set_verbosity(level)
    return DiffusersVAE(vae.to(device).eval(), likelihood=likelihood, name=f"AutoencoderKL {short(path.name, 60)}")
