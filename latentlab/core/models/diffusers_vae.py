"""diffusers' AutoencoderKL (Stable Diffusion's VAE) as a LatentModel, for `diffusers:DIR` specs and
diffusers objects handed to the API; AutoencoderTiny opens the same way as a deterministic
autoencoder (its encoder gives `latents`, one code per image).

diffusers is optional (`pip install latentlab[diffusers]`) and imported only here, only when such
a spec is opened. Its images live in [-1, 1]; its posterior is `latent_dist` (mean, logvar) of
shape (C, h, w), flattened to K = C·h·w for the views. The views use the unscaled latent, the
space whose prior N(0, I) the autoencoder's KL term was trained against; `scaling_factor` (the
factor diffusion pipelines multiply latents by) is reported by describe() and not applied.
The decoder has no likelihood of its own, so a Gaussian with a fixed scale stands in for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from latentlab.core.errors import ModelError
from latentlab.core.text import short

from .adapters import TorchVAE, one_line
from .priors import standard_normal

DEFAULT_LIKELIHOOD = "gaussian:0.1"
CLASSES = ("AutoencoderKL", "AutoencoderTiny")   # AutoencoderTiny's encoder gives one code: deterministic


def is_diffusers_autoencoder(obj) -> bool:
    """A diffusers autoencoder object (checked by name: diffusers is not imported for it)."""
    return type(obj).__module__.split(".")[0] == "diffusers" and type(obj).__name__ in CLASSES


class DiffusersVAE(TorchVAE):
    def __init__(self, vae, *, likelihood=None, name: str = "AutoencoderKL"):
        super().__init__(vae, likelihood=likelihood or DEFAULT_LIKELIHOOD, name=name)
        self.input_range = (-1.0, 1.0)
        self.in_channels = int(vae.config.in_channels)
        self.scaling_factor = float(getattr(vae.config, "scaling_factor", 1.0) or 1.0)

    def latent_prior(self):
        return standard_normal(True)   # AutoencoderKL's KL term is against N(0, I)

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
    config = path / "config.json"
    try:
        cls_name = json.loads(config.read_text(encoding="utf-8")).get("_class_name", "AutoencoderKL")
    except (OSError, ValueError, AttributeError):
        raise ModelError(f"{short(str(config), 120)} is not a readable JSON object.") from None
    if cls_name not in CLASSES:
        raise ModelError(f"{short(str(path), 120)} holds a diffusers {short(str(cls_name), 40)}; latentlab opens "
                         "AutoencoderKL and AutoencoderTiny folders.")
    try:
        import diffusers
        from diffusers.utils import logging as diffusers_logging
    except ImportError:
        raise ModelError("Opening a diffusers:DIR model needs diffusers: pip install latentlab[diffusers].") from None
    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        vae = getattr(diffusers, cls_name).from_pretrained(str(path), use_safetensors=True, local_files_only=True,
                                                           low_cpu_mem_usage=False)
    except Exception as exc:  # noqa: BLE001 - diffusers raises many kinds for a broken folder
        raise ModelError(f"diffusers could not load {short(str(path), 120)}: {one_line(exc)}.") from None
    finally:
        diffusers_logging.set_verbosity(level)
    return DiffusersVAE(vae.to(device).eval(), likelihood=likelihood, name=f"{cls_name} {short(path.name, 60)}")
