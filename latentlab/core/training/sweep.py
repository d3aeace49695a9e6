"""β sweeps: one model per β, trained one after another, summarised as rate (KL) against
distortion (reconstruction NLL) on the test set — the rate–distortion view of the β-VAE."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from latentlab.core.errors import CheckpointError, LatentLabError
from latentlab.core.files.checkpoint import load_checkpoint
from latentlab.core.files.metadata import validate_metadata
from latentlab.core.files.model_spec import load_weights, save_model
from latentlab.core.models.adapters import LatentModel
from latentlab.core.models.config import ModelConfig, TrainConfig
from latentlab.core.models.vae import build_model

from .sharded import train


@dataclass(frozen=True)
class SweepPoint:
    beta: float
    rate: float                 # test KL(q(z|x) || p(z)), nats per example
    distortion: float           # test reconstruction NLL, nats per example
    config: ModelConfig | None  # None for a fine-tuned copy of a foreign model
    weights: dict               # CPU numpy state dict
    history: tuple
    path: Path | None = None    # where it was saved or loaded from


def log_betas(lo: float, hi: float, n: int) -> list[float]:
    if n == 1:
        return [float(lo)]
    return [float(f"{v:.4g}") for v in np.geomspace(lo, hi, n)]


def run_sweep(data, config: ModelConfig | LatentModel, betas: list[float], tcfg: TrainConfig,
              should_stop: Callable[[], bool] | None = None) -> Iterator[tuple[int, object]]:
    """Train one model for each β: a fresh latentlab VAE for a ModelConfig, a copy of the given
    model (fine-tuned from its weights) for a LatentModel. Yields (i, Snapshot) while training
    model i and (i, SweepPoint) when it is done; stops after a cancelled or failed run."""
    stop = should_stop or (lambda: False)
    own = isinstance(config, ModelConfig)
    for i, beta in enumerate(betas):
        model = build_model(config, seed=tcfg.seed) if own else config.copy()
        last = None
        for snap in train(model, data, dataclasses.replace(tcfg, beta=float(beta)), should_stop=stop):
            last = snap
            yield i, snap
        if last is None or last.cancelled or last.error:
            return
        rec = last.history[-1]
        yield i, SweepPoint(beta=float(beta), rate=float(rec.get("test_kl", rec["kl"])),
                            distortion=float(rec.get("test_recon", rec["recon"])), config=config if own else None,
                            weights=last.weights, history=last.history)


def point_file(folder: Path, beta: float) -> Path:
    return Path(folder) / f"beta_{beta:.4g}.safetensors"


def point_model(point: SweepPoint, base: LatentModel | None = None) -> LatentModel:
    """The model of one sweep point: a latentlab VAE from its config, or a copy of `base` (the
    foreign model the sweep fine-tuned) holding the point's weights."""
    if point.config is not None:
        model = build_model(point.config, seed=None)
    elif base is not None:
        model = base.copy()
    else:
        raise LatentLabError("This sweep fine-tuned a foreign model; open that model to use its points.")
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in point.weights.items()})
    return model.eval()


def save_sweep(folder, points: list[SweepPoint], dataset: str, base: LatentModel | None = None) -> list[Path]:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LatentLabError(f"Cannot create {folder}: {exc.strerror or exc}.") from None
    paths = []
    for p in points:
        paths.append(save_model(point_file(folder, p.beta), point_model(p, base), dataset=dataset, history=p.history))
    return paths


def load_sweep(folder, base: LatentModel | None = None) -> tuple[list[SweepPoint], str]:
    """Every `beta_*.safetensors` file in a folder, sorted by β, with the dataset spec. Weights files
    of a fine-tuned foreign model are read into copies of `base` (that model, opened by the caller)."""
    folder = Path(folder)
    files = sorted(f for f in folder.glob("beta_*.safetensors") if re.fullmatch(r"beta_[-+.\deE]+\.safetensors", f.name))
    if not folder.is_dir() or not files:
        raise LatentLabError(f"{folder} holds no β-sweep checkpoints (beta_*.safetensors).")
    points, dataset = [], ""
    for f in files:
        model, config, history, file_dataset = _load_point(f, base)
        if not history:
            raise CheckpointError(f"{f} has no training history, so its rate and distortion are unknown.")
        rec = history[-1]
        beta = float(rec.get("beta", math.nan))
        points.append(SweepPoint(beta=beta, rate=float(rec.get("test_kl", rec["kl"])),
                                 distortion=float(rec.get("test_recon", rec["recon"])), config=config,
                                 weights={k: v.detach().cpu().numpy() for k, v in model.state_dict().items()},
                                 history=tuple(history), path=f))
        dataset = dataset or file_dataset
    return sorted(points, key=lambda p: p.beta), dataset


def _load_point(f: Path, base):
    if base is None:
        ckpt = load_checkpoint(f)
        return ckpt.model, ckpt.config, ckpt.history, ckpt.dataset
    model = base.copy()
    checked = validate_metadata(load_weights(model, f), model.latent_dim)
    return model, None, checked.history, checked.dataset
