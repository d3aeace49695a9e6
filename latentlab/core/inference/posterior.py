"""The inference inspector's math: the exact posterior of a 2-D latent on a grid and the IWAE curve
(the aggregate posterior q(z) is in aggregate.py). No Qt here.

Everything that evaluates the decoder takes a `log_lik` callable (see `objectives`): z (..., K) ->
log p(x|z) (...), for ONE data point x, so closed-form decoders plug in exactly like the VAE's
(`model_log_lik(model, x[None])`). Prior p(z): N(0, I), or the `prior` passed (a model's declared
prior, core.models.priors); encoder q(z|x) = N(mu, diag(exp(logvar))).

Exact posterior on a grid (`posterior_grid`)
--------------------------------------------
For K = 2 the posterior p(z|x) = p(x|z) p(z) / p(x) is evaluated on size × size cell centres
(midpoint rule: for a smooth integrand that has decayed at the box edges this converges faster
than any power of the spacing, so 200 cells give p(x) to many digits).

Region rule (span=None):
  1. q box: mu ± 6σ per axis (q's mass outside it is ~2e-9), so KL(q || p(z|x)) can be integrated.
  2. coarse pass: log p(x|z) + log p(z) on a `coarse` × `coarse` grid over the search box =
     bounding box of the q box and the prior's bulk [-4, 4]². The "high region" is the coarse
     cells whose log joint is within `threshold` nats (15: relative density 3e-7; for a Gaussian
     the mass outside that contour is e^-15) of the coarse maximum, padded by one coarse spacing
     on every side (the coarse grid cannot place the edge more finely). If the high region
     touches the search box edge, the search box is doubled about its centre and the pass
     repeated (at most 3 times): the posterior is not cut off by the prior box when the
     likelihood pulls it far out.
  3. the grid box is the bounding box of the q box and the high region.
  A posterior mode narrower than the coarse spacing and outside q's box can be missed; `edge_mass`
  (posterior mass in the outermost ring of cells) reports when the box cut the posterior off.

Grid arrays are indexed [iy, ix] (rows follow ys, columns follow xs), ready to show as an image.

KL(q || p(z|x)) on the grid: both q and the posterior are normalised ON THE GRID, i.e. as the two
discrete distributions over cells, P_q = q·A / Σ q·A and P_p = p(x, z)·A / Σ p(x, z)·A, and
KL = Σ P_q (log P_q − log P_p). The posterior has to be normalised on the grid anyway (p(x) is the
grid's sum), and normalising q the same way keeps the two on one footing: the result is a true KL
between distributions on the same support, so it is ≥ 0 exactly, whereas q's analytic density
(which misses its mass outside the box) paired with a grid-normalised posterior is not a KL at all
and can go negative when the box truncates q. When the box holds q (the region rule's 6σ), the two
choices differ by ~1e-9 nats.

ELBO: analytic KL(q || p(z)) plus E_q[log p(x|z)] by Gauss–Hermite quadrature (`elbo_quadrature`,
order 48 → 2304 decodes, ~6% of a 200² grid): deterministic, exact for quadratic log-likelihoods
(linear-Gaussian decoders) and within ~1e-3 nats for the bundled ReLU decoder (checked against
orders up to 96 and 2·10⁶-sample Monte Carlo; ReLU kinks make order 24 err by ~3e-3). It is
independent of the grid, so gap = log_px − elbo and the grid KL are two separate computations of
the same number: log p(x) = ELBO + KL(q || p(z|x)).

Cost: (coarse² + size² + gh_order²) decoder evaluations in chunks of 4,096 (2,304 + 40,000 + 2,304
for the defaults): ~100 ms for the bundled model on the 2-core CPU (benchmarks/posterior_grid.py).
Chunks of a few thousand beat one batch of 40,000 (~2× here): the activations stay in cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from latentlab.core.models.priors import Prior, StandardNormal

from .objectives import LOG_2PI, LogLik, elbo_quadrature, iwae_log_px, model_log_lik

Q_SIGMAS = 6.0           # the q box is mu ± Q_SIGMAS·σ
PRIOR_HALF_WIDTH = 4.0   # the prior's bulk searched by the coarse pass: [-4, 4]² (mass outside 6e-5)
COARSE = 48              # coarse-pass cells per axis
THRESHOLD = 15.0         # nats below the coarse maximum that still count as posterior mass
GH_ORDER = 48            # Gauss–Hermite nodes per axis for E_q[log p(x|z)]: 48² = 2304 decodes
CHUNK = 4096             # latent points per decoder call
MAX_SEARCH_DOUBLINGS = 3


@dataclass(frozen=True, eq=False)
class PosteriorGrid:
    """The exact posterior of one data point on a grid; plain read-only numpy arrays and floats.

    2-D arrays are (len(ys), len(xs)), indexed [iy, ix]."""

    xs: np.ndarray            # (nx,) cell centres along z₁, float64, uniformly spaced
    ys: np.ndarray            # (ny,) cell centres along z₂
    log_joint: np.ndarray     # log p(x|z) + log p(z) at the cell centres, nats
    density: np.ndarray       # p(z|x), normalised on the grid: density.sum() * cell_area == 1
    q_density: np.ndarray     # q(z|x), normalised on the grid the same way
    cell_area: float
    log_px: float             # log p(x) by quadrature: logsumexp(log_joint) + log(cell_area)
    mean: np.ndarray          # (2,) posterior mean on the grid
    cov: np.ndarray           # (2, 2) posterior covariance on the grid
    kl_q_posterior: float     # KL(q || p(z|x)) on the grid (both normalised on the grid)
    elbo: float               # recon − kl_prior (Gauss–Hermite; independent of the grid)
    recon: float              # E_q[log p(x|z)], nats
    kl_prior: float           # KL(q || p(z)), closed form (or by the same quadrature for a prior without one)
    gap: float                # log_px − elbo; equals kl_q_posterior up to quadrature error
    q_mu: np.ndarray          # (2,) the encoder's mean
    q_logvar: np.ndarray      # (2,) the encoder's log-variance
    edge_mass: float          # posterior mass in the outermost ring of cells: ~0 when the box holds it
    extent: tuple[float, float, float, float]  # the box's outer edges (x0, x1, y0, y1)


# --------------------------------------------------------------------------------------------
# exact posterior on a grid

def posterior_grid(log_lik: LogLik, mu, logvar, *, size: int = 200, span=None, coarse: int = COARSE,
                   threshold: float = THRESHOLD, chunk: int = CHUNK, gh_order: int = GH_ORDER,
                   dtype: torch.dtype | None = None, device=None, prior: Prior | None = None) -> PosteriorGrid:
    """The exact posterior p(z|x) ∝ p(x|z) p(z) of a 2-D latent on a size × size grid (p(z) = N(0, I)
    unless `prior` is given).

    log_lik: z (..., 2) -> log p(x|z) (...) for one data point (called with z of shape (n, 1, 2)).
    mu, logvar: q(z|x), shape (2,) or (1, 2), numpy or torch.
    span: None picks the box automatically (module docstring); a float s means [-s, s]²;
      a 4-tuple (x0, x1, y0, y1) gives the box edges.
    dtype/device: what z is handed to log_lik as; default mu's if it is a tensor, else float64 CPU.
      Accumulation (log-sum-exp, moments, KL) is always float64.
    """
    mu_t, lv_t = _row(mu, dtype, device), _row(logvar, dtype, device)
    if mu_t.shape[-1] != 2:
        raise ValueError(f"posterior_grid needs a 2-D latent, got {mu_t.shape[-1]} dimensions.")
    size = int(size)
    if size < 2:
        raise ValueError("size must be at least 2.")
    q_mu = mu_t[0].detach().double().cpu().numpy()
    q_lv = lv_t[0].detach().double().cpu().numpy()

    with torch.inference_mode():
        if span is None:
            box = _auto_box(log_lik, q_mu, q_lv, mu_t, coarse, threshold, chunk, prior)
        elif np.ndim(span) == 0:
            box = (-float(span), float(span), -float(span), float(span))
        else:
            box = tuple(float(v) for v in span)
            if len(box) != 4:
                raise ValueError("span must be None, a half-width, or (x0, x1, y0, y1).")
        x0, x1, y0, y1 = box
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"empty grid box {box}.")
        dx, dy = (x1 - x0) / size, (y1 - y0) / size
        xs = x0 + (np.arange(size) + 0.5) * dx
        ys = y0 + (np.arange(size) + 0.5) * dy
        area = dx * dy
        log_joint = _log_joint(log_lik, xs, ys, mu_t, chunk, prior)
        elbo, rec, kl = elbo_quadrature(log_lik, mu_t, lv_t, order=gh_order, prior=prior)

    log_area = math.log(area)
    log_z = _logsumexp(log_joint)                       # log Σ p(x, z_cell)
    log_px = log_z + log_area
    log_post = log_joint - log_z                        # log of cell probabilities P_p
    p_cells = np.exp(log_post)
    density = p_cells / area

    px, py = p_cells.sum(0), p_cells.sum(1)            # marginals over x and over y
    mean = np.array([px @ xs, py @ ys])
    cx, cy = xs - mean[0], ys - mean[1]
    cxy = float(cy @ p_cells @ cx)
    cov = np.array([[px @ cx ** 2, cxy], [cxy, py @ cy ** 2]])

    # q on the grid, normalised over the cells like the posterior (module docstring).
    log_q = _log_normal_1d(ys, q_mu[1], q_lv[1])[:, None] + _log_normal_1d(xs, q_mu[0], q_lv[0])[None, :]
    log_q -= _logsumexp(log_q)                          # log of cell probabilities P_q
    q_cells = np.exp(log_q)
    kl_grid = float(np.sum(q_cells * (log_q - log_post)))

    edge = p_cells[0].sum() + p_cells[-1].sum() + p_cells[1:-1, 0].sum() + p_cells[1:-1, -1].sum()
    elbo_f = float(elbo.double().reshape(-1)[0])
    return PosteriorGrid(
        xs=_ro(xs), ys=_ro(ys), log_joint=_ro(log_joint), density=_ro(density),
        q_density=_ro(q_cells / area), cell_area=float(area), log_px=float(log_px),
        mean=_ro(mean), cov=_ro(cov), kl_q_posterior=max(kl_grid, 0.0), elbo=elbo_f,
        recon=float(rec.double().reshape(-1)[0]), kl_prior=float(kl.double().sum()),
        gap=float(log_px) - elbo_f, q_mu=_ro(q_mu), q_logvar=_ro(q_lv), edge_mass=float(edge),
        extent=(float(x0), float(x1), float(y0), float(y1)),
    )


def posterior_for_image(model, x_image: np.ndarray, size: int = 200, **kwargs) -> PosteriorGrid:
    """Encode one image (C, H, W) in [0, 1] with the model and return its exact posterior grid.

    The model must have latent_dim == 2; keyword arguments go to `posterior_grid`."""
    if model.latent_dim != 2:
        raise ValueError(f"the exact posterior grid needs a 2-D latent; this model has {model.latent_dim}.")
    param = next(model.parameters())
    x = torch.as_tensor(np.ascontiguousarray(x_image), dtype=param.dtype, device=param.device)[None]
    with torch.inference_mode():
        mu, logvar = model.encode(x)
    kwargs.setdefault("prior", model.latent_prior())
    return posterior_grid(model_log_lik(model, x), mu, logvar, size=size, **kwargs)


def _auto_box(log_lik, q_mu, q_lv, like, coarse, threshold, chunk, prior=None):
    q_sd = np.exp(0.5 * q_lv)
    qx0, qx1 = q_mu[0] - Q_SIGMAS * q_sd[0], q_mu[0] + Q_SIGMAS * q_sd[0]
    qy0, qy1 = q_mu[1] - Q_SIGMAS * q_sd[1], q_mu[1] + Q_SIGMAS * q_sd[1]
    px0, px1, py0, py1 = _prior_bulk(prior)
    sx0, sx1, sy0, sy1 = min(qx0, px0), max(qx1, px1), min(qy0, py0), max(qy1, py1)
    for attempt in range(MAX_SEARCH_DOUBLINGS + 1):
        dx, dy = (sx1 - sx0) / coarse, (sy1 - sy0) / coarse
        cxs = sx0 + (np.arange(coarse) + 0.5) * dx
        cys = sy0 + (np.arange(coarse) + 0.5) * dy
        lj = _log_joint(log_lik, cxs, cys, like, chunk, prior)
        high = lj >= lj.max() - threshold
        cols, rows = np.flatnonzero(high.any(0)), np.flatnonzero(high.any(1))
        touches = cols[0] == 0 or cols[-1] == coarse - 1 or rows[0] == 0 or rows[-1] == coarse - 1
        if not touches or attempt == MAX_SEARCH_DOUBLINGS:
            break
        cx, cy, hx, hy = (sx0 + sx1) / 2, (sy0 + sy1) / 2, sx1 - sx0, sy1 - sy0
        sx0, sx1, sy0, sy1 = cx - hx, cx + hx, cy - hy, cy + hy
    hx0, hx1 = cxs[cols[0]] - 1.5 * dx, cxs[cols[-1]] + 1.5 * dx   # cell edge + one coarse spacing
    hy0, hy1 = cys[rows[0]] - 1.5 * dy, cys[rows[-1]] + 1.5 * dy
    return min(qx0, hx0), max(qx1, hx1), min(qy0, hy0), max(qy1, hy1)


def _prior_bulk(prior) -> tuple[float, float, float, float]:
    """A box holding the prior's bulk: [-4, 4]² for N(0, I), else ±4 standard deviations around the
    mean of 4,096 seeded draws (the N(0, I) box when the prior cannot be drawn from)."""
    b = PRIOR_HALF_WIDTH
    if prior is None or isinstance(prior, StandardNormal) or not prior.can_sample:
        return -b, b, -b, b
    z = prior.sample(4096, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    m, sd = z.mean(0), z.std(0)
    return m[0] - b * sd[0], m[0] + b * sd[0], m[1] - b * sd[1], m[1] + b * sd[1]


def _log_joint(log_lik, xs: np.ndarray, ys: np.ndarray, like: torch.Tensor, chunk: int, prior=None) -> np.ndarray:
    """log p(x|z) + log p(z) on the grid xs × ys, float64 (len(ys), len(xs))."""
    gx = torch.as_tensor(xs, dtype=like.dtype, device=like.device)
    gy = torch.as_tensor(ys, dtype=like.dtype, device=like.device)
    z = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1).reshape(-1, 1, 2)
    parts = [log_lik(z[i:i + chunk]).reshape(-1) for i in range(0, z.shape[0], chunk)]
    ll = torch.cat(parts).to("cpu", torch.float64).numpy().reshape(len(ys), len(xs))
    if np.isnan(ll).any() or np.isposinf(ll).any() or not np.isfinite(ll).any():
        raise ValueError("log p(x|z) is NaN, +inf or -inf everywhere on the grid: no posterior to show.")
    if prior is not None and not isinstance(prior, StandardNormal):
        lp = torch.cat([prior.log_prob(z[i:i + chunk, 0]).reshape(-1) for i in range(0, z.shape[0], chunk)])
        return ll + lp.to("cpu", torch.float64).numpy().reshape(len(ys), len(xs))
    lp_x = -0.5 * (LOG_2PI + xs ** 2)
    lp_y = -0.5 * (LOG_2PI + ys ** 2)
    return ll + lp_y[:, None] + lp_x[None, :]


# --------------------------------------------------------------------------------------------
# IWAE curve

def iwae_curve(log_lik: LogLik, mu, logvar, ks=(1, 10, 100, 1000, 5000), generator=None,
               chunk: int = CHUNK, prior: Prior | None = None) -> list[tuple[int, float]]:
    """Importance-weighted estimates of log p(x) for each k in ks, one data point, any latent size.

    One set of max(ks) samples from q is shared by all k: its log-weights log w_j =
    log p(x|z_j) + log p(z_j) − log q(z_j) come from `iwae_log_px` with k = 1 (whose value is
    exactly one sample's log-weight) on the data point repeated max(ks) times. The estimate for k
    averages log-mean-exp over the ⌊max(ks)/k⌋ disjoint blocks of k consecutive weights: each block
    is an independent draw of the k-sample IWAE bound, so the average has the bound's expectation
    and less noise than one block, at no extra decoding. Estimates for different k are correlated
    (they share samples); each is a lower bound on log p(x) in expectation.
    Returns [(k, estimate)] in the order of ks.
    """
    mu_t, lv_t = _row(mu), _row(logvar)
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError("ks must be positive sample counts.")
    kmax = max(ks)
    with torch.inference_mode():
        parts = []
        for start in range(0, kmax, chunk):
            n = min(chunk, kmax - start)
            parts.append(iwae_log_px(log_lik, mu_t.expand(n, -1), lv_t.expand(n, -1), 1,
                                     generator=generator, prior=prior).reshape(-1))
        logw = torch.cat(parts).to("cpu", torch.float64)
    out = []
    for k in ks:
        blocks = kmax // k
        lw = logw[:blocks * k].view(blocks, k)
        out.append((k, float((torch.logsumexp(lw, 1) - math.log(k)).mean())))
    return out


# --------------------------------------------------------------------------------------------
# helpers

def _row(v, dtype=None, device=None) -> torch.Tensor:
    """A (1, K) tensor from (K,) or (1, K) numpy/torch input."""
    if isinstance(v, torch.Tensor):
        t = v.detach()
        t = t.to(dtype=dtype or t.dtype, device=device or t.device)
    else:
        t = torch.as_tensor(np.asarray(v, dtype=np.float64), dtype=dtype or torch.float64, device=device)
    if t.dim() == 1:
        t = t[None]
    if t.dim() != 2 or t.shape[0] != 1:
        raise ValueError(f"expected one data point's (K,) or (1, K) parameters, got shape {tuple(t.shape)}.")
    return t


def _logsumexp(a: np.ndarray) -> float:
    m = float(np.max(a))
    if not np.isfinite(m):
        return m
    return m + math.log(float(np.sum(np.exp(a - m))))


def _log_normal_1d(t: np.ndarray, mu: float, logvar: float) -> np.ndarray:
    return -0.5 * (LOG_2PI + logvar + (t - mu) ** 2 * math.exp(-logvar))


def _ro(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a
