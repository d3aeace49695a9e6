"""What the GUI and the CLI ask of a trained model: encode, decode, diagnose, bound log p(x).

Images come in as a Dataset stores them (core.data.pixels.Pixels) or as arrays, uint8 read as 0..255
and floats in [0, 1]; each batch is converted to float32 on the model's device, never the whole set."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch

from latentlab.core.data.pixels import batch_tensor
from latentlab.core.errors import ModelError
from latentlab.core.models.priors import Prior, standard_normal

from .objectives import elbo_mc, iwae_log_px, model_log_lik

ACTIVE_THRESHOLD = 0.01
DECODE_BUDGET = 1 << 24   # decoded pixel values per decoder call in `evaluate` (64 MB of float32)


def model_device(model) -> torch.device:
    # LatentModel.device(): a model without parameters (a fixed transform) runs on the CPU.
    return model.device() if hasattr(model, "device") else next(model.parameters()).device


def decode_batch(model, batch: int) -> int:
    """`batch`, made smaller for large images so one call holds at most DECODE_BUDGET pixel values."""
    pixels = math.prod(model.image_shape) if model.image_shape else 1
    return max(1, min(int(batch), DECODE_BUDGET // pixels))


@torch.no_grad()
def encode(model, x, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances, each (N, K) float32, computed in batches; a NaN or infinite
    value (a model that passed the one-batch check and fails on later images) is one sentence."""
    dev, batch = model_device(model), decode_batch(model, batch)
    out = None
    # Each batch is copied into arrays made once: kept as tensors of their own, the small results
    # would pin the heap between the batches' large temporaries, which malloc then keeps (about
    # 3 KB per image of a 784-400 MLP).
    for i in range(0, len(x), batch):
        mu, lv = model.encode(batch_tensor(x, i, i + batch, dev))
        if not bool(torch.isfinite(mu).all() and torch.isfinite(lv).all()):
            raise ModelError(f"The model's encoder gave NaN or infinite values for images {i:,} to "
                             f"{i + len(mu) - 1:,} of {len(x):,}, so they cannot be shown or written.")
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
    dev, batch = model_device(model), decode_batch(model, batch)
    z = np.asarray(z, dtype=np.float32).reshape(-1, model.latent_dim)
    out = [model.mean_image(model.decode(torch.from_numpy(z[i:i + batch]).to(dev))).float().cpu()
           for i in range(0, len(z), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, *model.image_shape), np.float32)


@torch.no_grad()
def reconstruction_nll(model, x, z: np.ndarray, batch: int = 4096) -> np.ndarray:
    """-log p(x | z) per example (nats), e.g. at the posterior means: how badly each point is rebuilt."""
    dev, batch = model_device(model), decode_batch(model, batch)
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


def _kl_rows(mu: np.ndarray, logvar: np.ndarray, rows: slice, prior: Prior | None = None) -> torch.Tensor:
    return (prior or standard_normal()).kl_dim(torch.from_numpy(mu[rows]).double(),
                                               torch.from_numpy(logvar[rows]).double())


POINT_KL_SAMPLES = 64   # z ~ q per point for a KL without a closed form (seeded: the same numbers each time)


@torch.no_grad()
def point_kl(mu: np.ndarray, logvar: np.ndarray, prior: Prior | None = None) -> np.ndarray:
    """KL(q(z|x_i) || p(z)) of each data point, nats (N,): closed form, or for a prior without one
    a seeded Monte Carlo estimate over POINT_KL_SAMPLES draws from each q."""
    out = np.empty(len(mu), np.float64)
    if prior is None or prior.closed_form:
        for rows in _row_slices(*mu.shape):
            out[rows] = _kl_rows(mu, logvar, rows, prior).sum(-1).numpy()
        return out
    gen = torch.Generator().manual_seed(0)
    step = max(1, STAT_SLICE_VALUES // max(1, mu.shape[1] * POINT_KL_SAMPLES))
    for i in range(0, len(mu), step):
        m, lv = torch.from_numpy(mu[i:i + step]).double(), torch.from_numpy(logvar[i:i + step]).double()
        z = m + torch.exp(0.5 * lv) * torch.randn((POINT_KL_SAMPLES, *m.shape), generator=gen, dtype=m.dtype)
        out[i:i + step] = prior.kl(m, lv, z).double().numpy()
    return out


def mean_kl_per_dim(mu: np.ndarray, logvar: np.ndarray, prior: Prior | None = None) -> np.ndarray:
    """Average KL per latent dimension over the data, nats (K,): against the prior's own factors, or
    against N(0, 1) for a prior that does not factorise (Prior.per_dim_reference)."""
    total = np.zeros(mu.shape[1], np.float64)
    if prior is None:   # N(0, I): exp(logvar) + mu² − logvar per value in float32, summed in float64
        for rows in _row_slices(*mu.shape):
            m, lv = np.asarray(mu[rows], np.float32), np.asarray(logvar[rows], np.float32)
            t = np.exp(lv)
            t += m * m
            t -= lv
            total += t.sum(0, dtype=np.float64)
        return 0.5 * (total / len(mu) - 1.0) if len(mu) else np.full(mu.shape[1], np.nan)
    for rows in _row_slices(*mu.shape):
        total += _kl_rows(mu, logvar, rows, prior).sum(0).numpy()
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


def log_prior(z: np.ndarray, prior: Prior | None = None) -> np.ndarray:
    """log p(z) for z (..., K): N(0, I), or the model's prior."""
    z = np.asarray(z, dtype=np.float64)
    if prior is None:
        return -0.5 * (z.shape[-1] * math.log(2 * math.pi) + np.square(z).sum(-1))
    with torch.no_grad():
        return prior.log_prob(torch.from_numpy(np.ascontiguousarray(z))).double().numpy()


@torch.no_grad()
def evaluate(model, x, *, iw_samples: int = 0, elbo_samples: int = 1, batch: int = 512,
             seed: int = 0, progress=None, should_stop=None) -> dict:
    """Test-set ELBO, reconstruction, KL (total and per dimension), active units, and optionally
    the importance-weighted estimate of log p(x) with the gap log p(x) - ELBO; nats per example,
    against the model's prior (`prior`, `kl_method` and `notes` say which and what was assumed).

    progress(done, total) is called after each batch; should_stop() is polled before each and
    raises Cancelled. A deterministic autoencoder gets its reconstruction at the code only."""
    from latentlab.core.errors import Cancelled

    dev = model_device(model)
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    prior = model.latent_prior()
    point = bool(getattr(model, "deterministic", False))
    iw_samples = 0 if point else iw_samples
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
        if should_stop is not None and should_stop():
            raise Cancelled("Evaluation was stopped.")
        xb = batch_tensor(x, i, i + batch, dev)
        mu, lv = model.encode(xb)
        mus.append(mu.float().cpu().numpy())
        if point:
            sums["recon"] += float(-model.log_likelihood(xb, model.decode(mu)).sum())
        else:
            log_lik = model_log_lik(model, xb)
            est = elbo_mc(log_lik, mu, lv, samples=elbo_samples, generator=gen, prior=prior)
            sums["elbo"] += float(est.elbo.sum())
            sums["recon"] += float(-est.rec.sum())
            sums["kl"] += float(est.kl.sum())
            kl_dim += est.kl_dim.double().sum(0).cpu()
            if iw_samples:
                sums["log_px"] += float(iwae_log_px(log_lik, mu, lv, iw_samples, chunk=chunk, generator=gen,
                                                    prior=prior).sum())
        if progress is not None:
            progress(min(i + batch, n), n)
    mu_all = np.concatenate(mus) if mus else np.zeros((0, model.latent_dim), np.float32)
    active = active_units(mu_all)
    per = max(n, 1)
    out = {
        "examples": n,
        "elbo": None if point else sums["elbo"] / per,
        "recon": sums["recon"] / per,
        "kl": None if point else sums["kl"] / per,
        "kl_per_dim": None if point else [float(v) for v in (kl_dim / per).numpy()],
        "active_units": int(active.sum()),
        "latent_dim": int(model.latent_dim),
        "prior": prior.describe(),
        "prior_declared": bool(prior.declared),
        "kl_method": None if point else prior.kl_method,
        "kl_per_dim_against": None if point else prior.per_dim_reference,
        "deterministic": point,
        "notes": list(model.notes()) if hasattr(model, "notes") else [],
    }
    if point:
        out["recon_at"] = "the code"
    if iw_samples:
        out["iw_samples"] = int(iw_samples)
        out["log_px_iw"] = sums["log_px"] / per
        out["gap"] = out["log_px_iw"] - out["elbo"]
    _refuse_non_finite(out, n)
    return out


def _refuse_non_finite(stats: dict, n: int) -> None:
    """A NaN or infinite ELBO, reconstruction, KL or log p(x) is no result: one sentence instead."""
    for key, what in (("recon", "reconstruction term"), ("kl", "KL term"), ("elbo", "ELBO"),
                      ("log_px_iw", "importance-weighted log p(x)")):
        if stats.get(key) is not None and not math.isfinite(stats[key]):   # None: no such number (an autoencoder's ELBO)
            raise ModelError(f"The model's {what} on {n:,} images is {stats[key]}: its encoder or decoder gave NaN "
                             "or infinite values on some of them, so there is no number to report.")


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
