"""Configuration dataclasses. They travel inside checkpoints as JSON, so every field is plain data."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class Bound:
    """The range one number may take: from lo to hi, lo itself excluded when `above`. Whole numbers
    when both ends are ints."""
    lo: float
    hi: float
    above: bool = False

    @property
    def whole(self) -> bool:
        return isinstance(self.lo, int) and isinstance(self.hi, int)

    def holds(self, value) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return (value > self.lo if self.above else value >= self.lo) and value <= self.hi   # exact for huge ints too

    def describe(self) -> str:
        if self.whole:
            return f"a whole number from {self.lo:,} to {self.hi:,}"
        return f"a number above {self.lo:g} and at most {self.hi:g}" if self.above else f"a number from {self.lo:g} to {self.hi:g}"


# Every number a config holds, whether it comes from the command line, the window or a file, is
# checked against this one table (the command line's option types read it too). Past the upper ends
# torch or numpy fail in C++ or a run never ends; the lower ends are what the numbers mean.
BOUNDS = {
    "latent_dim": Bound(1, 1_000_000),
    "width": Bound(1, 1_000_000),          # a hidden or conv layer, an image side
    "layers": Bound(1, 32),                # hidden layers (conv layers: at most as many)
    "epochs": Bound(1, 10 ** 6),
    "batch_size": Bound(1, 10 ** 7),
    "lr": Bound(0.0, 1e6, above=True),
    "beta": Bound(0.0, 1e6),
    "warmup_steps": Bound(0, 10 ** 12),
    "free_bits": Bound(0.0, 1e6),
    "seed": Bound(0, 2 ** 63 - 1),
    "snapshot_every": Bound(1, 10 ** 9),
    "scatter_points": Bound(0, 10 ** 7),
}


# The model a new run trains when nothing else is asked for: the command line's, the window's and
# the API's default, named once here.
DEFAULT_LATENT_DIM = 2
DEFAULT_HIDDEN = (512, 256)


@dataclass(frozen=True)
class ModelConfig:
    # (channels, height, width) of the images the model reads and writes.
    image_shape: tuple[int, int, int]
    # Size K of the latent space; 2 lets the scatter show it without projection.
    latent_dim: int = DEFAULT_LATENT_DIM
    # "mlp" flattens the image; "conv" uses strided convolutions (better past ~28x28).
    arch: str = "mlp"
    # Widths of the hidden dense layers of the encoder; the decoder mirrors them.
    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    # Channels of the strided conv layers (conv arch only); each halves the resolution.
    conv_channels: tuple[int, ...] = (32, 64)
    # "bernoulli": decoder gives logits, right for images in [0, 1];
    # "gaussian": decoder gives a mean with one learned scale, right for continuous data.
    likelihood: str = "bernoulli"
    # The encoder predicts log-variance; clamping it keeps exp() finite and σ away from 0.
    logvar_min: float = -12.0
    logvar_max: float = 6.0

    def __post_init__(self) -> None:
        _check_types(self, ints=("latent_dim",), floats=("logvar_min", "logvar_max"), strs=("arch", "likelihood"),
                     int_tuples=("image_shape", "hidden", "conv_channels"))
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        object.__setattr__(self, "hidden", tuple(int(v) for v in self.hidden))
        object.__setattr__(self, "conv_channels", tuple(int(v) for v in self.conv_channels))
        problems = _out_of_bounds(self, ("latent_dim",))
        layers, width = BOUNDS["layers"], BOUNDS["width"]
        if len(self.hidden) > layers.hi or len(self.conv_channels) > layers.hi:
            problems.append(f"at most {layers.hi} layers")
        if max((*self.hidden, *self.conv_channels, *self.image_shape), default=0) > width.hi:
            problems.append(f"widths and image sides are at most {width.hi:,}")
        if not (math.isfinite(self.logvar_min) and math.isfinite(self.logvar_max)):
            problems.append("logvar bounds must be finite")
        if len(self.image_shape) != 3 or self.image_shape[0] not in (1, 3) or min(self.image_shape) < 1:
            problems.append(f"image_shape must be (1 or 3, H, W), got {self.image_shape}")
        if self.arch not in ARCHS:
            problems.append(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.likelihood not in LIKELIHOODS:
            problems.append(f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}")
        if not self.hidden or min(self.hidden) < 1:
            problems.append(f"hidden widths must be positive, got {self.hidden}")
        if self.arch == "conv" and (not self.conv_channels or min(self.conv_channels) < 1):
            problems.append(f"conv_channels must be positive, got {self.conv_channels}")
        if not self.logvar_min < self.logvar_max:
            problems.append("logvar_min must be below logvar_max")
        if problems:
            raise ValueError("; ".join(problems) + ".")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    # Weight of the KL term (β-VAE); 1 gives the ELBO.
    beta: float = 1.0
    # β ramps linearly from 0 to its value over this many optimiser steps (0: no warm-up).
    warmup_steps: int = 0
    # Free bits: per-dimension KL below this many nats is not penalised (0: off).
    free_bits: float = 0.0
    seed: int = 0
    device: str = "auto"
    # Optimiser steps between live snapshots (each epoch end also yields one).
    snapshot_every: int = 25
    # Also yield a live snapshot once this many seconds have passed, however few steps that was,
    # so a slow model still animates its scatter (None: by steps only).
    snapshot_seconds: float | None = None
    # How many training points are re-encoded for each live scatter snapshot.
    scatter_points: int = 2000
    # Intra-op threads for torch while training; None leaves torch's default.
    threads: int | None = None

    def __post_init__(self) -> None:
        _check_types(self, ints=("epochs", "batch_size", "warmup_steps", "seed", "snapshot_every", "scatter_points"),
                     floats=("lr", "beta", "free_bits"), strs=("device",))
        problems = _out_of_bounds(self, ("epochs", "batch_size", "lr", "beta", "warmup_steps", "free_bits", "seed",
                                         "snapshot_every", "scatter_points"))
        if self.snapshot_seconds is not None and not (isinstance(self.snapshot_seconds, (int, float))
                                                      and not isinstance(self.snapshot_seconds, bool)
                                                      and 0 <= self.snapshot_seconds <= 1e6):
            problems.append("snapshot_seconds must be None or a number of seconds")
        if self.threads is not None and not (type(self.threads) is int and 1 <= self.threads <= 4096):
            problems.append("threads must be None or from 1 to 4096")
        if self.device not in DEVICES:
            problems.append(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if problems:
            raise ValueError("; ".join(problems) + ".")


def _out_of_bounds(cfg, names) -> list[str]:
    """What of cfg's fields `names` lies outside BOUNDS, one phrase each."""
    return [f"{name} must be {BOUNDS[name].describe()}, got {getattr(cfg, name)!r:.40}"
            for name in names if not BOUNDS[name].holds(getattr(cfg, name))]


def _check_types(cfg, ints=(), floats=(), strs=(), int_tuples=()) -> None:
    """Configs also come from files, so a field of the wrong type is refused here, not deep in torch."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    bad = [n for n in ints if not is_int(getattr(cfg, n))]
    bad += [n for n in floats if not (is_int(getattr(cfg, n)) or isinstance(getattr(cfg, n), float))]
    bad += [n for n in strs if not isinstance(getattr(cfg, n), str)]
    bad += [n for n in int_tuples if not (isinstance(getattr(cfg, n), (list, tuple))
                                          and all(is_int(v) for v in getattr(cfg, n)))]
    if bad:
        raise ValueError(f"{type(cfg).__name__} has a value of the wrong type for {', '.join(bad)}.")


def to_json(cfg) -> str:
    return json.dumps(dataclasses.asdict(cfg), sort_keys=True)


def from_json(cls, text: str):
    """Build `cls` from JSON, ignoring unknown keys so newer files stay readable where possible."""
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError(f"{cls.__name__} must be a JSON object")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in raw.items() if k in names})


__all__ = ["ModelConfig", "TrainConfig", "to_json", "from_json", "ARCHS", "LIKELIHOODS", "DEVICES", "BOUNDS", "Bound"]
