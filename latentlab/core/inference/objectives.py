"""The ELBO and its relatives, in nats per example.

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))
    log p(x) = ELBO(x) + KL(q(z|x) || p(z|x))

Everything here takes a `log_lik` callable, z (..., K) -> log p(x|z) (...), so the same code
serves the VAE's decoder and closed-form decoders in tests, and an optional `prior`
(core.models.priors.Prior; None is N(0, I)): the model's declared prior, with its KL in closed
form where there is one and by Monte Carlo over the same z ~ q otherwise.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
import torch

from latentlab.core.models.priors import Prior, standard_normal

LOG_2PI = math.log(2 * math.pi)
LogLik = Callable[[torch.Tensor], torch.Tensor]


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) for each coordinate, closed form."""
    return 0.5 * (torch.exp(logvar) + mu.square() - 1.0 - logvar)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Log density of a diagonal Gaussian, summed over the last axis."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).square() * torch.exp(-logvar)).sum(-1)


def log_std_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last axis."""
    return -0.5 * (LOG_2PI + z.square()).sum(-1)


def reparameterize(mu, logvar, eps):
    """z = mu + σ·ε with σ = exp(logvar / 2); torch tensors or numpy arrays, eps broadcasting
    against mu (extra leading sample axes are fine)."""
    exp = torch.exp if isinstance(logvar, torch.Tensor) else np.exp
    return mu + exp(0.5 * logvar) * eps


class ElboTerms(NamedTuple):
    mu: torch.Tensor
    logvar: torch.Tensor
    rec: torch.Tensor      # reconstruction NLL (B,)
    kl_dim: torch.Tensor   # KL per dimension (B, K), against the prior's factors or N(0, 1) (Prior.kl_dim)
    kl: torch.Tensor       # KL(q(z|x) || p(z)) (B,): the sum of kl_dim when the prior factorises


def elbo_terms(model, x: torch.Tensor, eps: torch.Tensor) -> ElboTerms:
    """The ELBO's two terms for a batch with given noise, through the model protocol only, against
    the model's prior (`latent_prior()`); training, its test records and evaluation all compute the
    ELBO here, so fine-tuning keeps a declared prior."""
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar, eps)
    rec = -model.log_likelihood(x, model.decode(z))
    prior = _prior_of(model)
    kl_dim = prior.kl_dim(mu, logvar)
    kl = kl_dim.sum(-1) if prior.closed_form and prior.factorised else prior.kl(mu, logvar, z)
    return ElboTerms(mu, logvar, rec, kl_dim, kl)


def _prior_of(model) -> Prior:
    get = getattr(model, "latent_prior", None)
    return get() if callable(get) else standard_normal(True)


def beta_at(step: int, beta: float, warmup_steps: int) -> float:
    """Linear KL warm-up: β grows from 0 to its value over `warmup_steps` optimiser steps."""
    if warmup_steps <= 0:
        return float(beta)
    return float(beta) * min(1.0, step / warmup_steps)


def kl_penalty(kl_dim: torch.Tensor, free_bits: float, kl: torch.Tensor | None = None) -> torch.Tensor:
    """Batch KL term with free bits (Kingma et al. 2016): per-dimension batch-mean KL below
    `free_bits` nats costs nothing, so a dimension is not pushed all the way to collapse. With `kl`
    (the total, for a prior that does not factorise) the free nats apply to the total, K at a time."""
    if kl is not None:
        total = kl.mean()
        return total.clamp(min=free_bits * kl_dim.shape[-1]) if free_bits > 0 else total
    per_dim = kl_dim.mean(0)
    if free_bits > 0:
        per_dim = per_dim.clamp(min=free_bits)
    return per_dim.sum()


def model_log_lik(model, x: torch.Tensor) -> LogLik:
    """log p(x|z) for a batch x (B, C, H, W) and z of shape (S, B, K) or (B, K)."""

    def log_lik(z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        params = model.decode(z.reshape(-1, z.shape[-1]))
        xs = x.expand(*lead[:-1], *x.shape).reshape(-1, *x.shape[1:]) if z.dim() > 2 else x
        return model.log_likelihood(xs, params).view(lead)

    return log_lik


def elbo_mc(log_lik: LogLik, mu: torch.Tensor, logvar: torch.Tensor, samples: int = 1, generator=None,
            prior: Prior | None = None):
    """ELBO with a reparameterised Monte Carlo reconstruction term and the KL against `prior`
    (analytic where it has a closed form, else over the same samples).

    Returns (elbo (B,), expected log-likelihood (B,), KL per dimension (B, K), KL (B,))."""
    prior = prior or standard_normal(True)
    eps = torch.randn((samples, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
    z = reparameterize(mu, logvar, eps)
    rec = log_lik(z).mean(0)
    kl_dim = prior.kl_dim(mu, logvar)
    kl = kl_dim.sum(-1) if prior.closed_form and prior.factorised else prior.kl(mu, logvar, z)
    return ElboEstimate(rec - kl, rec, kl_dim, kl)


class ElboEstimate(NamedTuple):
    elbo: torch.Tensor     # (B,)
    rec: torch.Tensor      # E_q[log p(x|z)] (B,)
    kl_dim: torch.Tensor   # (B, K), see ElboTerms
    kl: torch.Tensor       # (B,)


def gauss_hermite(order: int, dim: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes (N, dim) and weights (N,) integrating against N(0, I) in `dim` dimensions (tensor grid)."""
    if dim > 3:
        raise ValueError("Gauss-Hermite tensor grids are only used for latent sizes up to 3.")
    x, w = np.polynomial.hermite_e.hermegauss(order)
    w = w / w.sum()
    grids = np.meshgrid(*([x] * dim), indexing="ij")
    wgrid = np.prod(np.meshgrid(*([w] * dim), indexing="ij"), axis=0)
    nodes = np.stack([g.ravel() for g in grids], axis=-1)
    return torch.as_tensor(nodes, dtype=dtype), torch.as_tensor(wgrid.ravel(), dtype=dtype)


def elbo_quadrature(log_lik: LogLik, mu: torch.Tensor, logvar: torch.Tensor, order: int = 24,
                    prior: Prior | None = None):
    """ELBO with E_q[log p(x|z)] by Gauss-Hermite quadrature: deterministic, and exact when
    log p(x|z) is a polynomial of degree < 2*order in z (the linear-Gaussian decoder is quadratic).
    A prior without a closed-form KL gets E_q[log q − log p] on the same nodes.

    Returns (elbo (B,), expected log-likelihood (B,), KL (B,))."""
    prior = prior or standard_normal(True)
    nodes, weights = gauss_hermite(order, mu.shape[-1], dtype=mu.dtype)
    nodes, weights = nodes.to(mu.device), weights.to(mu.device)
    z = reparameterize(mu, logvar, nodes.unsqueeze(1))  # (N, B, K)
    rec = (weights.unsqueeze(1) * log_lik(z)).sum(0)
    if prior.closed_form:
        kl = prior.kl_dim(mu, logvar).sum(-1)
    else:
        kl = (weights.unsqueeze(1) * (log_normal(z, mu, logvar) - prior.log_prob(z))).sum(0)
    return rec - kl, rec, kl


def iwae_log_px(log_lik: LogLik, mu: torch.Tensor, logvar: torch.Tensor, k: int,
                chunk: int = 1000, generator=None, prior: Prior | None = None) -> torch.Tensor:
    """Importance-weighted estimate of log p(x) with k samples from q (Burda et al. 2016), (B,).

    A lower bound in expectation that tightens as k grows; computed in chunks of samples so
    large k fits in memory, combined with a running log-sum-exp."""
    log_p = (prior or standard_normal(True)).log_prob
    total = None
    done = 0
    while done < k:
        n = min(chunk, k - done)
        eps = torch.randn((n, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z = reparameterize(mu, logvar, eps)
        logw = log_lik(z) + log_p(z) - log_normal(z, mu, logvar)
        part = torch.logsumexp(logw, dim=0)
        total = part if total is None else torch.logaddexp(total, part)
        done += n
    return total - math.log(k)
