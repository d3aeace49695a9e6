"""The images a model explains worst: every image scored by its reconstruction error at the posterior
mean (−log p(x | z = μ), nats) or by the importance-weighted estimate of log p(x) (nats; K samples of
q(z|x)), ranked worst first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from latentlab.core.data.pixels import batch_tensor
from latentlab.core.errors import Cancelled, LatentLabError
from latentlab.core.inference.objectives import iwae_log_px, model_log_lik

BY = {"recon": "reconstruction error (nats)", "iw": "importance-weighted log p(x) (nats)"}
IW_SAMPLES = 50
CHUNK = 2048   # images between two progress reports and looks at the stop flag


@dataclass(frozen=True, eq=False)
class Outliers:
    rows: np.ndarray       # (n,) indices into the images scored, worst first
    scores: np.ndarray     # (n,) their scores
    all_scores: np.ndarray  # (N,) every image's score, in image order
    by: str                # "recon" or "iw"
    iw_samples: int = 0

    @property
    def label(self) -> str:
        return BY[self.by] + (f", K = {self.iw_samples}" if self.by == "iw" else "")


def image_scores(model, x, *, by: str = "recon", iw_samples: int = IW_SAMPLES, seed: int = 0,
                 progress: Callable[[float], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """Each image's score (N,): its reconstruction error, or its IWAE estimate of log p(x)."""
    from latentlab.core.inference.analysis import decode_batch, model_device

    if by not in BY:
        raise LatentLabError(f"Rank by recon or iw, not {by!r}.")
    dev = model_device(model)
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    out = np.empty(len(x), np.float64)
    per_call = decode_batch(model, 512 if by == "recon" else max(1, 512 // max(1, iw_samples)))
    for start in range(0, len(x), CHUNK):
        if should_stop is not None and should_stop():
            raise Cancelled("Ranking the images was stopped.")
        if progress is not None:
            progress(start / max(1, len(x)))
        for i in range(start, min(start + CHUNK, len(x)), per_call):
            j = min(i + per_call, start + CHUNK, len(x))
            out[i:j] = _score(model, batch_tensor(x, i, j, dev), by, iw_samples, gen)
    if progress is not None:
        progress(1.0)
    return out


@torch.no_grad()
def _score(model, xb, by, iw_samples, gen) -> np.ndarray:
    mu, logvar = model.encode(xb)
    if by == "recon":
        return (-model.log_likelihood(xb, model.decode(mu))).double().cpu().numpy()
    return iwae_log_px(model_log_lik(model, xb), mu, logvar, iw_samples, chunk=min(iw_samples, 64),
                       generator=gen).double().cpu().numpy()


def rank_outliers(model, x, *, by: str = "recon", n: int = 24, iw_samples: int = IW_SAMPLES, seed: int = 0,
                  progress=None, should_stop=None) -> Outliers:
    """The n worst images: the highest reconstruction errors, or the lowest log p(x)."""
    scores = image_scores(model, x, by=by, iw_samples=iw_samples, seed=seed, progress=progress, should_stop=should_stop)
    return worst(scores, by, n, iw_samples if by == "iw" else 0)


def worst(scores: np.ndarray, by: str, n: int, iw_samples: int = 0) -> Outliers:
    """The n worst of precomputed scores; non-finite scores count as the worst of all."""
    s = np.asarray(scores, np.float64)
    key = np.where(np.isfinite(s), -s if by == "recon" else s, -np.inf)
    order = np.argsort(key, kind="stable")[:max(0, int(n))]
    return Outliers(rows=order, scores=s[order], all_scores=s, by=by, iw_samples=iw_samples)
