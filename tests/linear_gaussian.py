"""The 2-D linear-Gaussian model x | z ~ N(W z + b, σ² I), z ~ N(0, I): exact log p(x), a Gaussian
posterior with correlation and a closed-form ELBO for a diagonal q, so every number the inspector
reports can be checked against it."""

import math

import numpy as np
import torch

from latentlab.core.models.adapters import LatentModel

W = np.array([[1.1, 0.6], [0.4, 0.9], [0.7, -0.2]])   # 3×2, columns neither orthogonal nor unit
B = np.array([0.2, -0.3, 0.1])
SIGMA = 0.5
X = np.array([1.3, -0.2, 0.9])


def lg_log_lik(z):
    """log N(X; W z + b, σ² I) for z (..., 2)."""
    w = torch.as_tensor(W, dtype=z.dtype)
    mean = z @ w.T + torch.as_tensor(B, dtype=z.dtype)
    r = torch.as_tensor(X, dtype=z.dtype) - mean
    return -0.5 * (len(X) * math.log(2 * math.pi * SIGMA ** 2) + r.square().sum(-1) / SIGMA ** 2)


def lg_exact():
    cov_x = W @ W.T + SIGMA ** 2 * np.eye(3)
    d = X - B
    log_px = -0.5 * (3 * math.log(2 * math.pi) + np.linalg.slogdet(cov_x)[1] + d @ np.linalg.solve(cov_x, d))
    post_cov = np.linalg.inv(np.eye(2) + W.T @ W / SIGMA ** 2)
    post_mean = post_cov @ W.T @ d / SIGMA ** 2
    return log_px, post_mean, post_cov


def gauss_kl(m0, s0, m1, s1):
    """KL(N(m0, s0) || N(m1, s1)) for full covariances."""
    inv1 = np.linalg.inv(s1)
    dm = m1 - m0
    return 0.5 * (np.trace(inv1 @ s0) + dm @ inv1 @ dm - len(m0) + np.linalg.slogdet(s1)[1] - np.linalg.slogdet(s0)[1])


def lg_elbo(q_mu, q_var):
    """E_q[log N(X; W z + b, σ² I)] − KL(q || N(0, I)) for q = N(q_mu, diag(q_var))."""
    r = X - W @ q_mu - B
    rec = -0.5 * (3 * math.log(2 * math.pi * SIGMA ** 2) + (r @ r + np.trace(W @ np.diag(q_var) @ W.T)) / SIGMA ** 2)
    kl = 0.5 * np.sum(q_var + q_mu ** 2 - 1 - np.log(q_var))
    return rec - kl


# --------------------------------------------------------------------------------------------
# the same decoder under other priors: a declared diagonal Gaussian and a VAMP-style mixture

def lg_log_px_gaussian_prior(m, s_var):
    """log p(X) when z ~ N(m, diag(s_var)): X ~ N(W m + b, W S Wᵀ + σ² I)."""
    cov_x = W @ np.diag(s_var) @ W.T + SIGMA ** 2 * np.eye(3)
    d = X - B - W @ m
    return -0.5 * (3 * math.log(2 * math.pi) + np.linalg.slogdet(cov_x)[1] + d @ np.linalg.solve(cov_x, d))


def lg_log_px_mixture(weights, means, variances):
    """log p(X) under the mixture prior Σ_c π_c N(m_c, diag(v_c))."""
    parts = [math.log(w) + lg_log_px_gaussian_prior(m, v) for w, m, v in zip(weights, means, variances)]
    top = max(parts)
    return top + math.log(sum(math.exp(p - top) for p in parts))


def lg_expected_log_lik(q_mu, q_var):
    """E_q[log N(X; W z + b, σ² I)] for q = N(q_mu, diag(q_var))."""
    r = X - W @ q_mu - B
    return -0.5 * (3 * math.log(2 * math.pi * SIGMA ** 2) + (r @ r + np.trace(W @ np.diag(q_var) @ W.T)) / SIGMA ** 2)


def mixture_prior(weights, means, variances, dtype=torch.float64):
    """A VAMP-style prior: a torch MixtureSameFamily of diagonal Gaussians over a 2-D latent."""
    d = torch.distributions
    comps = d.Independent(d.Normal(torch.tensor(np.asarray(means), dtype=dtype),
                                   torch.tensor(np.sqrt(np.asarray(variances)), dtype=dtype)), 1)
    return d.MixtureSameFamily(d.Categorical(torch.tensor(np.asarray(weights), dtype=dtype)), comps)


class LinearGaussianModel(LatentModel):
    """The linear-Gaussian decoder as a LatentModel whose encoder answers q = N(q_mu, diag(q_var)) for
    every image; `prior` (optional) is declared the way a user's model declares it."""

    def __init__(self, q_mu, q_var, prior=None):
        super().__init__()
        self.latent_shape, self.image_shape = (2,), (1, 1, 3)
        self.w = torch.nn.Parameter(torch.tensor(W, dtype=torch.float64))
        self.q_mu = torch.tensor(np.asarray(q_mu), dtype=torch.float64)
        self.q_lv = torch.log(torch.tensor(np.asarray(q_var), dtype=torch.float64))
        if prior is not None:
            self.prior = prior

    def encode(self, x):
        n = x.shape[0]
        return self.q_mu.expand(n, 2).clone(), self.q_lv.expand(n, 2).clone()

    def decode(self, z):
        return (z.double() @ self.w.T + torch.as_tensor(B)).view(-1, 1, 1, 3)

    def log_likelihood(self, x, params):
        r = (x.double() - params).flatten(1)
        return -0.5 * (3 * math.log(2 * math.pi * SIGMA ** 2) + r.square().sum(1) / SIGMA ** 2)

    def mean_image(self, params):
        return params.float().clamp(0, 1)
