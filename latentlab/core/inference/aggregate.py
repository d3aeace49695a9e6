"""The aggregate posterior q(z) = (1/N) Σ_i q(z|x_i): its density on a grid, its holes (where the
prior has mass but no data is encoded), prior samples that land there, and KL(q(z) ‖ p(z)).

p(z) is N(0, I) unless a model's declared prior is passed (core.models.priors). On the shown plane
of two coordinates it is the prior's marginal there (`PlanePrior`): exact for N(0, I), a diagonal
Gaussian and any prior of a 2-D latent; for another prior of more dimensions, a histogram of seeded
draws from it (`exact` False, which the window says).

q(z) = (1/N) Σ_i N(z; mu_i, diag(exp(logvar_i))). Every component is axis aligned, so on a grid it
is the outer product of two 1-D Gaussians and the whole mixture is one matrix product
Gy (G_y × N) @ Gx (N × G_x) / N: exact, ~O(N·(G_x + G_y)) exponentials instead of N·G_x·G_y.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from latentlab.core.models.priors import DiagonalGaussian, Prior, StandardNormal

from .objectives import LOG_2PI, reparameterize


def aggregate_density(mu, logvar, xs, ys, *, chunk: int = 2048, cell_average: bool = False) -> np.ndarray:
    """q(z) = mean_i N(z; mu_i, diag(exp(logvar_i))) on the grid xs × ys, float64 (len(ys), len(xs)).

    mu, logvar: (N, 2). Exact: each component is separable, so the mixture on the grid is
    Gy.T @ Gx / N, accumulated over chunks of components (memory O(chunk·(G_x + G_y))).
    cell_average=True gives each cell's mean density instead of the density at its centre (cell
    edges halfway between neighbouring xs/ys): components narrower than a cell then still show
    up with their full mass, and the grid integrates the mixture exactly.
    """
    mu, logvar = _pairs(mu), _pairs(logvar)
    xs, ys = np.asarray(xs, np.float64).ravel(), np.asarray(ys, np.float64).ravel()
    n = len(mu)
    if n == 0:
        return np.zeros((len(ys), len(xs)))
    profile = _cell_means_1d if cell_average else _normal_pdf_1d
    m, sd = torch.from_numpy(mu), torch.from_numpy(np.exp(0.5 * logvar))
    tx, ty = torch.from_numpy(xs), torch.from_numpy(ys)
    out = torch.zeros((len(ys), len(xs)), dtype=torch.float64)
    for s in range(0, n, chunk):
        gx = profile(tx, m[s:s + chunk, 0], sd[s:s + chunk, 0])   # (n, G_x)
        gy = profile(ty, m[s:s + chunk, 1], sd[s:s + chunk, 1])   # (n, G_y)
        out.addmm_(gy.T, gx)
    return (out / n).numpy()


def prior_density(xs, ys) -> np.ndarray:
    """N(z; 0, I) on the grid xs × ys, (len(ys), len(xs))."""
    xs, ys = np.asarray(xs, np.float64).ravel(), np.asarray(ys, np.float64).ravel()
    return np.exp(-0.5 * ys ** 2)[:, None] * np.exp(-0.5 * xs ** 2)[None, :] / (2 * math.pi)


def holes(aggregate: np.ndarray, prior: np.ndarray, *, ratio: float = 0.1, prior_mass: float = 0.95,
          prior_level: float | None = None) -> np.ndarray:
    """Cells where the prior expects codes but the encoder puts almost none: a boolean mask.

    A cell is a hole when it lies in the prior's highest-density region of mass `prior_mass`
    (prior ≥ level; for the 2-D standard normal that region is |z|² ≤ −2 ln(1 − prior_mass) and its
    level is (1 − prior_mass) / 2π, used unless `prior_level` is given) AND the aggregate posterior
    there is below `ratio` × the prior. Decoding prior samples from such cells gives images the
    decoder was never trained on.
    """
    aggregate, prior = np.asarray(aggregate), np.asarray(prior)
    if aggregate.shape != prior.shape:
        raise ValueError(f"aggregate {aggregate.shape} and prior {prior.shape} grids differ.")
    level = (1.0 - prior_mass) / (2 * math.pi) if prior_level is None else prior_level
    return (prior >= level) & (aggregate < ratio * prior)


def aggregate_log_density_at(z, mu, logvar, *, chunk_pairs: int = 1 << 18) -> np.ndarray:
    """log q(z) of the mixture mean_i N(mu_i, diag(exp(logvar_i))) at points z (n, K), exactly:
    log-sum-exp over all components, in chunks of components so n × chunk stays ≤ chunk_pairs."""
    z = np.asarray(z, np.float64)
    z = z.reshape(-1, z.shape[-1])
    mu = np.asarray(mu, np.float64).reshape(-1, z.shape[1])
    logvar = np.asarray(logvar, np.float64).reshape(-1, z.shape[1])
    n, k = z.shape
    if len(mu) == 0:
        return np.full(n, -np.inf)
    zt = torch.from_numpy(z)
    z2 = zt.square()
    step = max(1, chunk_pairs // max(n, 1))
    total = torch.full((n,), -math.inf, dtype=torch.float64)
    for s in range(0, len(mu), step):
        m, lv = torch.from_numpy(mu[s:s + step]), torch.from_numpy(logvar[s:s + step])
        iv = torch.exp(-lv)
        # Σ_d (z_d − m_d)² / v_d expanded into three small matmuls; in float64 the cancellation
        # costs ~1e-16 × |z|²/v ≲ 1e-9 nats even for the encoder's smallest variance (logvar −12).
        quad = z2 @ iv.T - 2.0 * (zt @ (m * iv).T) + (m.square() * iv).sum(1)
        logc = -0.5 * (quad + lv.sum(1) + k * LOG_2PI)
        total = torch.logaddexp(total, torch.logsumexp(logc, 1))
    return (total - math.log(len(mu))).numpy()


def prior_samples_in_holes(mu, logvar, n: int, rng: np.random.Generator, ratio: float = 0.1,
                           plane: PlanePrior | None = None):
    """Draw n codes from the prior (N(0, I), or `plane`'s marginal of a declared prior) and flag
    those where the aggregate posterior q(z) (evaluated exactly at each sample) is below `ratio` ×
    p(z). Returns (samples (n, 2), in_hole (n,)).

    The flagged fraction estimates the prior mass lying in holes (no 95% restriction here: the
    samples come from the prior, so its bulk dominates by construction)."""
    mu, logvar = _pairs(mu), _pairs(logvar)
    if plane is None:
        z = rng.standard_normal((int(n), 2))
        log_p = -0.5 * (2 * LOG_2PI + np.square(z).sum(1))
    else:
        z = plane.sample(int(n), rng)
        log_p = plane.log_density(z)
    log_q = aggregate_log_density_at(z, mu, logvar)
    return z, log_q < math.log(ratio) + log_p


class PlanePrior:
    """A prior's marginal on two coordinates (dims) of the latent: its density on a grid, at points,
    draws from it, and the level of its highest-density region of a given mass."""

    def __init__(self, prior: Prior, k: int, dims=(0, 1), *, box: float = 4.0, draws: int = 200_000, seed: int = 0):
        self.prior, self.k, self.dims = prior, int(k), tuple(int(d) for d in dims)
        self.exact = isinstance(prior, (StandardNormal, DiagonalGaussian)) or self.k <= 2
        self._hist = None
        if not self.exact:
            if not prior.can_sample:
                raise ValueError(f"the declared prior ({prior.name}) cannot be drawn from, so its marginal on "
                                 "two coordinates is unknown")
            z = self._draw(draws, seed)
            edges = np.linspace(-box * 2, box * 2, 161)
            hist, _, _ = np.histogram2d(z[:, 1], z[:, 0], bins=(edges, edges), density=True)
            self._hist, self._edges = hist, edges

    def _draw(self, n: int, seed: int) -> np.ndarray:
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            z = self.prior.sample(n, self.k, generator=gen, dtype=torch.float64)
        z = z.double().numpy().reshape(n, -1)
        return z[:, list(self.dims)] if z.shape[1] > 1 else np.c_[z[:, 0], np.zeros(n)]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if isinstance(self.prior, StandardNormal):
            return rng.standard_normal((int(n), 2))
        return self._draw(int(n), int(rng.integers(0, 2 ** 62)))

    def log_density(self, z2) -> np.ndarray:
        z2 = np.asarray(z2, np.float64).reshape(-1, 2)
        if isinstance(self.prior, StandardNormal):
            return -0.5 * (2 * LOG_2PI + np.square(z2).sum(1))
        if isinstance(self.prior, DiagonalGaussian):
            loc, scale = self.prior.loc.double().numpy(), self.prior.scale.double().numpy()
            m, sd = loc[list(self.dims)], scale[list(self.dims)]
            return (-0.5 * (LOG_2PI + 2 * np.log(sd) + ((z2 - m) / sd) ** 2)).sum(1)
        if self._hist is None:   # a 2-D latent: the prior itself
            with torch.no_grad():
                full = torch.from_numpy(z2 if self.k == 2 else z2[:, :1])
                return self.prior.log_prob(full).double().numpy()
        e = self._edges
        ix = np.clip(np.searchsorted(e, z2[:, 0]) - 1, 0, len(e) - 2)
        iy = np.clip(np.searchsorted(e, z2[:, 1]) - 1, 0, len(e) - 2)
        inside = (z2[:, 0] >= e[0]) & (z2[:, 0] <= e[-1]) & (z2[:, 1] >= e[0]) & (z2[:, 1] <= e[-1])
        with np.errstate(divide="ignore"):
            return np.where(inside, np.log(self._hist[iy, ix]), -np.inf)

    def density(self, xs, ys) -> np.ndarray:
        xs, ys = np.asarray(xs, np.float64).ravel(), np.asarray(ys, np.float64).ravel()
        gx, gy = np.meshgrid(xs, ys)
        return np.exp(self.log_density(np.c_[gx.ravel(), gy.ravel()])).reshape(len(ys), len(xs))

    def level(self, grid: np.ndarray, mass: float) -> float:
        """The density above which the grid holds `mass` of the grid's total."""
        v = np.sort(np.asarray(grid, np.float64).ravel())[::-1]
        c = np.cumsum(v)
        if not len(c) or c[-1] <= 0:
            return 0.0
        return float(v[min(np.searchsorted(c, mass * c[-1]), len(v) - 1)])


def kl_aggregate_prior(mu, logvar, n_samples: int, rng: np.random.Generator,
                       max_components: int = 10_000, prior: Prior | None = None) -> float:
    """Monte Carlo KL(q(z) || p(z)) = E_q[log q(z) − log p(z)] for the aggregate posterior (p: N(0, I)
    or `prior`).

    z is drawn from the mixture (a uniform component, then its Gaussian) and log q(z) is the exact
    mixture log density (log-sum-exp over components, chunked). With more than `max_components`
    components, a seeded subsample q_M of M = max_components of them stands in for q (cost
    n_samples × M). That estimates KL(q_M || p), and since E_M[q_M] = q,
        E_M[KL(q_M || p)] = KL(q || p) + E_M[KL(q_M || q)] ≥ KL(q || p):
    the subsample biases the estimate UP by the expected KL of the subsampled mixture to the full
    one, which shrinks as M grows and is small when components overlap. Works for any latent size.
    """
    mu = np.asarray(mu, np.float64)
    mu = mu.reshape(-1, mu.shape[-1])
    logvar = np.asarray(logvar, np.float64).reshape(mu.shape)
    if len(mu) == 0:
        raise ValueError("kl_aggregate_prior needs at least one component.")
    if len(mu) > max_components:
        keep = rng.choice(len(mu), size=int(max_components), replace=False)
        mu, logvar = mu[keep], logvar[keep]
    comp = rng.integers(0, len(mu), size=int(n_samples))
    z = reparameterize(mu[comp], logvar[comp], rng.standard_normal((int(n_samples), mu.shape[1])))
    log_q = aggregate_log_density_at(z, mu, logvar)
    if prior is None:
        log_p = -0.5 * (mu.shape[1] * LOG_2PI + np.square(z).sum(1))
    else:
        with torch.no_grad():
            log_p = prior.log_prob(torch.from_numpy(z)).double().numpy()
    return float(np.mean(log_q - log_p))


def _normal_pdf_1d(t: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """N(t_j; mu_i, sd_i²) as (len(mu), len(t))."""
    u = (t[None, :] - mu[:, None]) / sd[:, None]
    return torch.exp(-0.5 * u.square()) / (sd[:, None] * math.sqrt(2 * math.pi))

def _cell_means_1d(t: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """Mean of N(·; mu_i, sd_i²) over each cell around t_j (edges halfway between centres)."""
    if len(t) < 2:
        return _normal_pdf_1d(t, mu, sd)
    mid = (t[1:] + t[:-1]) / 2
    edges = torch.cat([t[:1] - (mid[:1] - t[:1]), mid, t[-1:] + (t[-1:] - mid[-1:])])
    u = (edges[None, :] - mu[:, None]) / sd[:, None]
    cdf, sf = torch.special.ndtr(u), torch.special.ndtr(-u)
    # Cells right of a component's mean difference the survival function, so far-tail cells do
    # not cancel to 0 as 1 − 1 would.
    mass = torch.where(u[:, :-1] > 0, sf[:, :-1] - sf[:, 1:], cdf[:, 1:] - cdf[:, :-1])
    return mass / torch.diff(edges)[None, :]


def _pairs(v) -> np.ndarray:
    a = np.asarray(v, np.float64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"expected (N, 2) means / log-variances, got shape {a.shape}.")
    return a
