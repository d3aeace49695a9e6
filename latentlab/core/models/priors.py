"""The prior p(z) a model is measured against: N(0, I), or the one the model declares.

A model declares its prior with a `prior` attribute that is a torch distribution over its latent
(event and batch shapes together holding K values, flat or in the model's own latent shape), or
with a `log_prior(z)` method (z in the model's latent shape, one log density per code, nats). A
model that declares neither is measured against N(0, I), and every report says that it was
assumed (`Prior.note`).

Every method takes flat latents (..., K), as the rest of latentlab does. KL(q(z|x) || p(z)) is in
closed form for N(0, I) and for a diagonal Gaussian prior; for any other prior it is a Monte Carlo
estimate over the same z ~ q that the reconstruction term uses (`closed_form` says which). KL per
dimension is the prior's own decomposition when the prior factorises; otherwise it is measured
against N(0, 1) for each coordinate, which is what `per_dim_reference` names.
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)
ASSUMED_NOTE = "N(0, I) is assumed as the prior (the model declares no `prior` or `log_prior(z)`)"


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (LOG_2PI + logvar + (z - mu).square() * torch.exp(-logvar)).sum(-1)


class Prior:
    """p(z) over flat latents. Subclasses fill in log_prob, and sample where they can."""

    name = "N(0, I)"
    declared = True       # False: nothing was declared and N(0, I) stands in
    closed_form = True    # KL(q || p) exactly; False: Monte Carlo over z ~ q
    factorised = True     # KL per dimension is the prior's own decomposition
    can_sample = True

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, n: int, k: int, generator=None, device=None, dtype=torch.float32) -> torch.Tensor:
        raise NotImplementedError

    def kl_dim(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL per coordinate (..., K): against the prior's own factors, else against N(0, 1)."""
        return 0.5 * (torch.exp(logvar) + mu.square() - 1.0 - logvar)

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per example (B,). Without a closed form it needs z ~ q, (B, K) or
        (S, B, K), and averages log q(z|x) − log p(z) over the S samples."""
        if self.closed_form:
            return self.kl_dim(mu, logvar).sum(-1)
        if z is None:
            raise ValueError("a Monte Carlo KL needs samples z from q")
        terms = _log_normal(z, mu, logvar) - self.log_prob(z)
        return terms if z.dim() == mu.dim() else terms.mean(0)

    @property
    def per_dim_reference(self) -> str:
        return "the prior" if self.factorised else "N(0, 1)"

    @property
    def kl_method(self) -> str:
        return "closed form" if self.closed_form else "Monte Carlo"

    def note(self) -> str:
        """One sentence for reports and the window when the prior needs saying, else ''."""
        if not self.declared:
            return ASSUMED_NOTE
        if not self.closed_form:
            return (f"The model declares its prior ({self.name}); KL(q(z|x) || p(z)) is a Monte Carlo estimate"
                    + ("" if self.factorised else ", and KL per dimension is measured against N(0, 1)"))
        return ""

    def describe(self) -> str:
        return f"{self.name}{'' if self.declared else ' (assumed)'}"


class StandardNormal(Prior):
    def __init__(self, declared: bool = True):
        self.declared = declared

    def log_prob(self, z):
        return -0.5 * (LOG_2PI + z.square()).sum(-1)

    def sample(self, n, k, generator=None, device=None, dtype=torch.float32):
        return torch.randn((int(n), int(k)), generator=generator, device=device, dtype=dtype)


class DiagonalGaussian(Prior):
    """N(loc, diag(scale²)), declared as a torch Normal or Independent(Normal)."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor):
        self.loc, self.scale = loc.detach().reshape(-1), scale.detach().reshape(-1)
        self.name = "a diagonal Gaussian"

    def _params(self, like: torch.Tensor):
        return self.loc.to(like), (2 * torch.log(self.scale)).to(like)

    def log_prob(self, z):
        loc, lv = self._params(z)
        return _log_normal(z, loc, lv)

    def kl_dim(self, mu, logvar):
        loc, lv = self._params(mu)
        return 0.5 * (lv - logvar + (torch.exp(logvar) + (mu - loc).square()) * torch.exp(-lv) - 1.0)

    def sample(self, n, k, generator=None, device=None, dtype=torch.float32):
        eps = torch.randn((int(n), int(k)), generator=generator, device=device, dtype=dtype)
        loc, lv = self._params(eps)
        return loc + torch.exp(0.5 * lv) * eps


class DistributionPrior(Prior):
    """Any torch distribution whose batch and event shapes together hold the K latent values."""

    closed_form = factorised = False

    def __init__(self, dist, latent_shape: tuple[int, ...]):
        self.dist = dist
        self.shape = tuple(dist.batch_shape) + tuple(dist.event_shape)
        self.batch_dims = len(dist.batch_shape)
        self.name = type(dist).__name__
        self.dtype = _dtype_of(dist)
        self.can_sample = bool(getattr(dist, "has_rsample", False) or _can_sample(dist))

    def log_prob(self, z):
        lead = z.shape[:-1]
        lp = self.dist.log_prob(z.reshape(*lead, *self.shape).to(self.dtype)).to(z.dtype)
        if self.batch_dims:
            lp = lp.flatten(len(lead)).sum(-1)
        return lp

    def sample(self, n, k, generator=None, device=None, dtype=torch.float32):
        if generator is not None:  # torch distributions draw from the global generator only
            seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                z = self.dist.sample((int(n),))
        else:
            z = self.dist.sample((int(n),))
        return z.reshape(int(n), -1).to(device=device, dtype=dtype)


class CallablePrior(Prior):
    """`log_prior(z)` in the model's own latent shape; sampled only through an optional sampler."""

    closed_form = factorised = False

    def __init__(self, fn, latent_shape: tuple[int, ...], *, name: str = "log_prior(z)", sampler=None,
                 constant: float = 0.0, dtype: torch.dtype | None = None):
        self.fn, self.latent_shape, self.sampler, self.constant = fn, tuple(latent_shape), sampler, constant
        self.dtype = dtype   # what the model's own code computes in (its weights' dtype)
        self.name = name
        self.can_sample = sampler is not None

    def log_prob(self, z):
        lead = z.shape[:-1]
        zz = z.reshape(-1, *self.latent_shape)
        out = self.fn(zz if self.dtype is None else zz.to(self.dtype)) + self.constant
        return out.reshape(lead).to(z.dtype)

    def sample(self, n, k, generator=None, device=None, dtype=torch.float32):
        if self.sampler is None:
            raise ValueError(f"the prior {self.name} cannot be sampled")
        return self.sampler(int(n), generator).reshape(int(n), -1).to(device=device, dtype=dtype)


def _dtype_of(dist) -> torch.dtype:
    """The floating dtype a distribution computes in (its mean's, else a sample's, else float32)."""
    for get in (lambda: dist.mean, lambda: dist.sample((1,))):
        try:
            t = get()
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            return t.dtype
    return torch.float32


def _can_sample(dist) -> bool:
    try:
        dist.sample((1,))
    except NotImplementedError:
        return False
    return True


_STANDARD = StandardNormal(declared=True)
_ASSUMED = StandardNormal(declared=False)


def standard_normal(declared: bool = True) -> StandardNormal:
    return _STANDARD if declared else _ASSUMED


def declared_prior(obj, latent_shape: tuple[int, ...], dtype: torch.dtype | None = None) -> Prior | None:
    """The prior `obj` declares (a `prior` torch distribution or a `log_prior(z)` method), or None.
    Raises ValueError (one sentence) when the declaration does not fit the latent."""
    k = math.prod(latent_shape) if latent_shape else None
    dist = getattr(obj, "prior", None)
    if isinstance(dist, torch.distributions.Distribution):
        shape = tuple(dist.batch_shape) + tuple(dist.event_shape)
        if shape == () and k is not None:   # one scalar distribution for every coordinate
            dist = dist.expand((k,))
            shape = (k,)
        if k is not None and math.prod(shape) != k:
            raise ValueError(f"the model's prior has shape {shape}, but its latent holds {k} values")
        gauss = _diagonal_gaussian(dist)
        if gauss is not None:
            loc, scale = gauss
            if k is not None:
                loc, scale = loc.expand(shape).reshape(-1), scale.expand(shape).reshape(-1)
            if bool((loc == 0).all()) and bool((scale == 1).all()):
                return standard_normal(True)
            return DiagonalGaussian(loc, scale)
        return DistributionPrior(dist, latent_shape)
    fn = getattr(obj, "log_prior", None)
    if callable(fn):
        sampler = getattr(obj, "sample_prior", None)
        return CallablePrior(fn, latent_shape, sampler=sampler if callable(sampler) else None, dtype=dtype)
    return None


def _diagonal_gaussian(dist):
    base = dist
    if isinstance(base, torch.distributions.Independent):
        base = base.base_dist
    if isinstance(base, torch.distributions.Normal):
        return base.loc, base.scale
    return None
