"""What the GUI and the CLI ask of a trained model: encode, decode, diagnose, bound log p(x).

Images come in as a Dataset stores them (core.data.pixels.Pixels) or as arrays, uint8 read as 0..255
and floats in [0, 1]; each batch is converted to float32 on the model's device, never the whole set."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch

from latentlab.core.data.pixels import batch_tensor

from .objectives import elbo_mc, iwae_log_px, kl_per_dim, model_log_lik

ACTIVE_THRESHOLD = 0.01
DECODE_BUDGET = 1 << 24   # decoded pixel values per decoder call in `evaluate` (64 MB of float32)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _batch(model, batch: int) -> int:
    """`batch`, made smaller for large images so one call holds at most DECODE_BUDGET pixel values."""
    pixels = math.prod(model.image_shape) if model.image_shape else 1
    return max(1, min(int(batch), DECODE_BUDGET // pixels))


@torch.no_grad()
def encode(model, x, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances, each (N, K) float32, computed in batches."""
    dev, batch = _device(model), _batch(model, batch)
    out = None
    # Each batch is copied into arrays made once: kept as tensors of their own, the small results
    # would pin the heap between the batches' large temporaries, which malloc then keeps (about
    # 3 KB per image of a 784-400 MLP).
    for i in range(0, len(x), batch):
        mu, lv = model.encode(batch_tensor(x, i, i + batch, dev))
        if out is None:
            out = tuple(np.empty((len(x), *t.shape[1:]), np.float32) for t in (mu, lv))
        out[0][i:i + len(mu)] = mu.float().cpu().numpy()
        out[1][i:i + len(lv)] = lv.float().cpu().numpy()
    if out is None:
        k = model.latent_dim
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.float32)
    return out


@torch.no_grad()
def decode(model, z: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Mean images E[x|z] for latent codes z (N, K): float32 (N, C, H, W) in [0, 1]."""
    dev, batch = _device(model), _batch(model, batch)
    z = np.asarray(z, dtype=np.float32).reshape(-1, model.latent_dim)
    out = [model.mean_image(model.decode(torch.from_numpy(z[i:i + batch]).to(dev))).float().cpu()
           for i in range(0, len(z), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, *model.image_shape), np.float32)


@torch.no_grad()
def reconstruction_nll(model, x, z: np.ndarray, batch: int = 4096) -> np.ndarray:
    """-log p(x | z) per example (nats), e.g. at the posterior means: how badly each point is rebuilt."""
    dev, batch = _device(model), _batch(model, batch)
    out = []
    for i in range(0, len(x), batch):
        xb = batch_tensor(x, i, i + batch, dev)
        zb = torch.from_numpy(np.ascontiguousarray(z[i:i + batch], dtype=np.float32)).to(dev)
        out.append(-model.log_likelihood(xb, model.decode(zb)).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


# Statistics over all points are summed in float64 a slice of rows at a time, each slice holding at
# most this many values: (N, K) float64 temporaries of a million points would cost more than the means.
STAT_SLICE_VALUES = 1 << 20


def _row_slices(n: int, k: int):
    step = max(1, STAT_SLICE_VALUES // max(1, k))
    return (slice(i, i + step) for i in range(0, n, step))


def _kl_rows(mu: np.ndarray, logvar: np.ndarray, rows: slice) -> torch.Tensor:
    return kl_per_dim(torch.from_numpy(mu[rows]).double(), torch.from_numpy(logvar[rows]).double())


def point_kl(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """KL(q(z|x_i) || p(z)) of each data point, nats (N,)."""
    out = np.empty(len(mu), np.float64)
    for rows in _row_slices(*mu.shape):
        out[rows] = _kl_rows(mu, logvar, rows).sum(-1).numpy()
    return out


def mean_kl_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Average KL(q(z|x) || p(z)) of each latent dimension over the data, nats (K,)."""
    total = np.zeros(mu.shape[1], np.float64)
    for rows in _row_slices(*mu.shape):
        total += _kl_rows(mu, logvar, rows).sum(0).numpy()
    return total / len(mu) if len(mu) else np.full(mu.shape[1], np.nan)


def active_units(mu: np.ndarray, threshold: float = ACTIVE_THRESHOLD) -> np.ndarray:
    """Burda et al.'s activity: a dimension is active when its posterior mean varies over the data."""
    if len(mu) < 2:
        return np.zeros(mu.shape[1], dtype=bool)
    mean = mu.sum(0, dtype=np.float64) / len(mu)
    squares = np.zeros(mu.shape[1], np.float64)
    for rows in _row_slices(*mu.shape):
        squares += np.square(mu[rows] - mean).sum(0)
    return squares / len(mu) > threshold


def log_prior(z: np.ndarray) -> np.ndarray:
    """log N(z; 0, I) for z (..., K)."""
    z = np.asarray(z, dtype=np.float64)
    return -0.5 * (z.shape[-1] * math.log(2 * math.pi) + np.square(z).sum(-1))


@torch.no_grad()
def evaluate(model, x, *, iw_samples: int = 0, elbo_samples: int = 1, batch: int = 512,
             seed: int = 0) -> dict:
    """Test-set ELBO, reconstruction, KL (total and per dimension), active units, and optionally
    the importance-weighted estimate of log p(x) with the gap log p(x) - ELBO; nats per example."""
    dev = _device(model)
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    sums = {"elbo": 0.0, "recon": 0.0, "kl": 0.0, "log_px": 0.0}
    kl_dim = torch.zeros(model.latent_dim, dtype=torch.float64)
    mus = []
    n = len(x)
    # Decoded images are held K at a time per example: batches and sample chunks shrink with the
    # number of importance samples and with the image size, so a 512×512 autoencoder fits as well.
    pixels = math.prod(model.image_shape) if model.image_shape else 1
    batch = max(1, min(batch, DECODE_BUDGET // (pixels * max(1, iw_samples))))
    chunk = max(1, min(iw_samples, 256, DECODE_BUDGET // (pixels * batch)))
    for i in range(0, n, batch):
        xb = batch_tensor(x, i, i + batch, dev)
        mu, lv = model.encode(xb)
        log_lik = model_log_lik(model, xb)
        elbo, rec, kl = elbo_mc(log_lik, mu, lv, samples=elbo_samples, generator=gen)
        sums["elbo"] += float(elbo.sum())
        sums["recon"] += float(-rec.sum())
        sums["kl"] += float(kl.sum())
        kl_dim += kl.double().sum(0).cpu()
        mus.append(mu.cpu().numpy())
        if iw_samples:
            sums["log_px"] += float(iwae_log_px(log_lik, mu, lv, iw_samples, chunk=chunk, generator=gen).sum())
    mu_all = np.concatenate(mus) if mus else np.zeros((0, model.latent_dim), np.float32)
    active = active_units(mu_all)
    out = {
        "examples": n,
        "elbo": sums["elbo"] / max(n, 1),
        "recon": sums["recon"] / max(n, 1),
        "kl": sums["kl"] / max(n, 1),
        "kl_per_dim": [float(v) for v in (kl_dim / max(n, 1)).numpy()],
        "active_units": int(active.sum()),
        "latent_dim": int(model.latent_dim),
    }
    if iw_samples:
        out["iw_samples"] = int(iw_samples)
        out["log_px_iw"] = sums["log_px"] / max(n, 1)
        out["gap"] = out["log_px_iw"] - out["elbo"]
    return out


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int, mode: str = "linear") -> np.ndarray:
    """Points from z0 to z1 inclusive, (steps, K). "slerp" follows the great circle in direction
    and interpolates the norm linearly, so the path stays in the prior's typical shell instead of
    cutting through the low-norm middle as a straight line does."""
    z0 = np.asarray(z0, dtype=np.float64)
    z1 = np.asarray(z1, dtype=np.float64)
    t = np.linspace(0.0, 1.0, max(2, int(steps)))[:, None]
    if mode == "linear":
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    if mode != "slerp":
        raise ValueError(f"unknown interpolation mode {mode!r}")
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if n0 < 1e-12 or n1 < 1e-12:
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    u0, u1 = z0 / n0, z1 / n1
    omega = math.acos(float(np.clip(u0 @ u1, -1.0, 1.0)))
    if omega < 1e-6:
        direction = (1 - t) * u0 + t * u1
    else:
        direction = (np.sin((1 - t) * omega) * u0 + np.sin(t * omega) * u1) / math.sin(omega)
    return (direction * ((1 - t) * n0 + t * n1)).astype(np.float32)


def traversal_values(n: int, kind: str = "sigma") -> np.ndarray:
    """Where a traversal row samples its coordinate: −3σ..3σ evenly, or the prior's quantiles
    5%..95% (evenly spaced in probability)."""
    if kind == "quantiles":
        return np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)], dtype=np.float32)
    return np.linspace(-3.0, 3.0, n).astype(np.float32)


def traversal_codes(anchor: np.ndarray, values: np.ndarray, dims=None) -> np.ndarray:
    """Codes (len(dims), n, K): row i sweeps coordinate dims[i] through `values`, the rest stay at
    the anchor. dims defaults to every coordinate; for K in the thousands pass `top_dims_by_kl`."""
    anchor = np.asarray(anchor, dtype=np.float32)
    dims = np.arange(anchor.shape[0]) if dims is None else np.asarray(dims, dtype=np.int64)
    codes = np.repeat(np.repeat(anchor[None, None, :], len(dims), 0), len(values), 1)
    for row, d in enumerate(dims):
        codes[row, :, d] = values
    return codes


def top_dims_by_kl(kl_per_dim, n: int) -> np.ndarray:
    """The n latent dimensions with the most KL, most first (ties keep index order)."""
    kl = np.asarray(kl_per_dim, dtype=np.float64)
    return np.argsort(-kl, kind="stable")[:max(0, int(n))]
