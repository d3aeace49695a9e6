"""Memory estimates, so that a model, a batch or a dataset that cannot fit is refused in one
sentence before anything is allocated ("this model needs about 33 GB; this machine has 24 GB")
instead of ending in a C++ traceback or the kernel's OOM killer.

Sizes are counted on torch's meta device, where building a model and running a batch through it
allocates nothing, so the estimate is exact for parameters and activations whatever the config.
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


# Every output has the batch as its first dimension, so one image's count scales. Cached: the window
# checks the budget on the GUI thread when Train is pressed, and a meta forward costs tens of ms.
@functools.lru_cache(maxsize=64)
def _activation_bytes_per_image(cfg: ModelConfig) -> int:
    import torch

    from latentlab.core.models.vae import VAE

    total = [0]

    def count(_module, _inputs, output):
        for t in output if isinstance(output, tuple) else (output,):
            if isinstance(t, torch.Tensor):
                total[0] += t.numel() * t.element_size()

    with torch.device("meta"):
        model = VAE(cfg)
        hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
        x = torch.empty((1, *cfg.image_shape))
        mu, _ = model.encode(x)
        model.decode(mu)
        for h in hooks:
            h.remove()
    return total[0] + 4 * (cfg.latent_dim + x[0].numel()) * FLOAT  # z, eps, the loss terms


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
                        pixel_bytes: int = FLOAT) -> None:
    """Raise ResourceError in one sentence (and `advice`) when training `cfg` cannot fit on `device`."""
    need = training_bytes(cfg, n_examples, batch, pixel_bytes)
    have = available_bytes(device)
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
