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

from .checkpoint import load_checkpoint, save_checkpoint
from .config import ModelConfig, TrainConfig
from .errors import CheckpointError, LatentLabError
from .model import build_model
from .training import train


@dataclass(frozen=True)
class SweepPoint:
    beta: float
    rate: float                 # test KL(q(z|x) || p(z)), nats per example
    distortion: float           # test reconstruction NLL, nats per example
    config: ModelConfig
    weights: dict               # CPU numpy state dict
    history: tuple
    path: Path | None = None    # where it was saved or loaded from


def log_betas(lo: float, hi: float, n: int) -> list[float]:
    if n == 1:
        return [float(lo)]
    return [float(f"{v:.4g}") for v in np.geomspace(lo, hi, n)]


def run_sweep(data, config: ModelConfig, betas: list[float], tcfg: TrainConfig,
              should_stop: Callable[[], bool] | None = None) -> Iterator[tuple[int, object]]:
    """Train a fresh model for each β. Yields (i, Snapshot) while training model i and
    (i, SweepPoint) when it is done; stops after a cancelled or failed run."""
    stop = should_stop or (lambda: False)
    for i, beta in enumerate(betas):
        model = build_model(config, seed=tcfg.seed)
        last = None
        for snap in train(model, data, dataclasses.replace(tcfg, beta=float(beta)), should_stop=stop):
            last = snap
            yield i, snap
        if last is None or last.cancelled or last.error:
            return
        rec = last.history[-1]
        yield i, SweepPoint(beta=float(beta), rate=float(rec.get("test_kl", rec["kl"])),
                            distortion=float(rec.get("test_recon", rec["recon"])), config=config,
                            weights=last.weights, history=last.history)


def point_file(folder: Path, beta: float) -> Path:
    return Path(folder) / f"beta_{beta:.4g}.safetensors"


def save_sweep(folder, points: list[SweepPoint], dataset: str) -> list[Path]:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LatentLabError(f"Cannot create {folder}: {exc.strerror or exc}.") from None
    paths = []
    for p in points:
        model = build_model(p.config, seed=None)
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in p.weights.items()})
        paths.append(save_checkpoint(point_file(folder, p.beta), model, dataset=dataset, history=p.history))
    return paths


def load_sweep(folder) -> tuple[list[SweepPoint], str]:
    """Every `beta_*.safetensors` checkpoint in a folder, sorted by β, with the dataset spec."""
    folder = Path(folder)
    files = sorted(f for f in folder.glob("beta_*.safetensors") if re.fullmatch(r"beta_[-+.\deE]+\.safetensors", f.name))
    if not folder.is_dir() or not files:
        raise LatentLabError(f"{folder} holds no β-sweep checkpoints (beta_*.safetensors).")
    points, dataset = [], ""
    for f in files:
        ckpt = load_checkpoint(f)
        if not ckpt.history:
            raise CheckpointError(f"{f} has no training history, so its rate and distortion are unknown.")
        rec = ckpt.history[-1]
        beta = float(rec.get("beta", math.nan))
        points.append(SweepPoint(beta=beta, rate=float(rec.get("test_kl", rec["kl"])),
                                 distortion=float(rec.get("test_recon", rec["recon"])), config=ckpt.config,
                                 weights={k: v.detach().numpy() for k, v in ckpt.model.state_dict().items()},
                                 history=tuple(ckpt.history), path=f))
        dataset = dataset or ckpt.dataset
    return sorted(points, key=lambda p: p.beta), dataset
