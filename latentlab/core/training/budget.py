"""Memory estimates, so that a model, a batch or a dataset that cannot fit is refused in one
sentence before anything is allocated ("this model needs about 33 GB; this machine has 24 GB")
instead of ending in a C++ traceback or the kernel's OOM killer.

Sizes are counted from the model built on torch's meta device, where building it allocates nothing,
so the estimate is exact for parameters and activations whatever the config.
"""

from __future__ import annotations

import functools

from latentlab.core.errors import ResourceError
from latentlab.core.memory import available_bytes, gib
from latentlab.core.models.config import ModelConfig

FLOAT = 4
# Weights, gradients, Adam's two moments, the last-good copy kept for roll-back, the CPU copy taken
# at every epoch end and the serialised checkpoint: seven float32 copies of the parameters.
TRAINING_PARAM_COPIES = 7
# Forward activations are kept for backward and each gets a gradient of the same size.
TRAINING_ACTIVATION_COPIES = 3
# Above this many latent dimensions the window's per-dimension views (traversals, KL bars, the
# collapse table) are not useful and cost more than they show.
WINDOW_MAX_LATENT_DIM = 4096


def parameter_count(cfg: ModelConfig) -> int:
    import torch

    from latentlab.core.models.vae import VAE

    with torch.device("meta"):
        return sum(p.numel() for p in VAE(cfg).parameters())


def activation_bytes(cfg: ModelConfig, batch: int) -> int:
    """Bytes of every module output for one forward pass of `batch` images (counted, not run)."""
    return batch * _activation_bytes_per_image(cfg)


# Every output has the batch as its first dimension, so one image's count scales. Counted from the
# model's layers built on the meta device, not by running it there: a meta forward's first matrix
# product imports torch's compiler stack (seconds, holding the interpreter lock), which would land in
# every `latentlab train` and in the window's first press of Train. Cached all the same.
@functools.lru_cache(maxsize=64)
def _activation_bytes_per_image(cfg: ModelConfig) -> int:
    import torch
    from torch import nn

    from latentlab.core.models.vae import VAE

    with torch.device("meta"):
        model = VAE(cfg)
    pixels = cfg.image_shape[0] * cfg.image_shape[1] * cfg.image_shape[2]
    floats = 0
    if model.trunk is not None:   # each conv's output at the size the trunk recorded for it
        floats += sum(conv.out_channels * h * w for conv, (h, w) in zip(model.trunk.layers, model.trunk.sizes[1:]))
    for seq in (model.encoder, model.decoder):   # the outputs of every Linear and ReLU module in them
        width = 0
        for layer in seq:
            width = layer.out_features if isinstance(layer, nn.Linear) else width
            floats += width
    floats += model.enc_out.out_features + model.dec_out.out_features
    if model.deconvs is not None:  # each transposed conv's output at the mirrored size decode asks for
        sizes = list(reversed(model.trunk.sizes))[1:]
        floats += sum(d.out_channels * h * w for d, (h, w) in zip(model.deconvs, sizes))
    return FLOAT * floats + 4 * (cfg.latent_dim + pixels) * FLOAT  # z, eps, the loss terms


def training_bytes(cfg: ModelConfig, n_examples: int, batch: int, pixel_bytes: int = FLOAT) -> int:
    """About what training needs on its device: parameter copies, activations, the dataset itself
    (`pixel_bytes` a pixel as stored: 1 for 8-bit images, which are converted a batch at a time)."""
    batch = max(1, min(batch, n_examples))
    pixels = cfg.image_shape[0] * cfg.image_shape[1] * cfg.image_shape[2]
    return (TRAINING_PARAM_COPIES * FLOAT * parameter_count(cfg)
            + TRAINING_ACTIVATION_COPIES * activation_bytes(cfg, batch)
            + pixel_bytes * pixels * n_examples)


CLI_ADVICE = "Use a smaller --hidden, --latent-dim or --batch-size."


def check_training_fits(cfg: ModelConfig, n_examples: int, batch: int, device="cpu", advice: str = CLI_ADVICE,
                        pixel_bytes: int = FLOAT, free_bytes=None) -> None:
    """Raise ResourceError in one sentence (and `advice`) when training `cfg` cannot fit on `device`.
    free_bytes(device) says what the device has free (None: unknown, nothing is refused); by default
    it is asked here (core.memory.available_bytes), which on CUDA first creates the device's context."""
    need = training_bytes(cfg, n_examples, batch, pixel_bytes)
    have = (free_bytes or available_bytes)(device)
    if have is not None and need > have:
        kind = str(device).split(":")[0]
        where = "this machine has" if kind == "cpu" else f"the {kind} device has"
        raise ResourceError(f"This model needs about {gib(need)} to train with batch size {batch:,}; "
                            f"{where} {gib(have)} free. {advice}".rstrip())


def window_refusal(cfg: ModelConfig, n_points: int) -> str | None:
    """One sentence when the window should not open a model of this size on `n_points` images, else None.

    The window keeps the posterior means and log-variances of every point and per-dimension
    statistics; past WINDOW_MAX_LATENT_DIM dimensions or the free memory it says so instead of hanging.
    """
    return _window_refusal(cfg.latent_dim, parameter_count(cfg), n_points)


def model_window_refusal(model, n_points: int) -> str | None:
    """window_refusal for any LatentModel (a user's own included: the same limits apply to every model)."""
    cfg = getattr(model, "cfg", None)
    if isinstance(cfg, ModelConfig):
        return window_refusal(cfg, n_points)
    return _window_refusal(model.latent_dim, sum(p.numel() for p in model.parameters()), n_points)


def _window_refusal(k: int, n_params: int, n_points: int) -> str | None:
    if k > WINDOW_MAX_LATENT_DIM:
        return (f"This model has {k:,} latent dimensions; the window shows at most {WINDOW_MAX_LATENT_DIM:,} "
                f"(use latentlab eval for it).")
    need = FLOAT * n_params * 2 + 2 * FLOAT * k * n_points
    have = available_bytes("cpu")
    if have is not None and need > have // 2:
        return f"Showing this model on {n_points:,} images needs about {gib(need)}; this machine has {gib(have)} free."
    return None
