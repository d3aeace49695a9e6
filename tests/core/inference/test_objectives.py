"""The objective code against closed forms: the linear-Gaussian model has an exact log p(x),
an exact posterior and an exact ELBO gap."""

import math

import pytest
import torch

from latentlab.core.inference.objectives import (
    beta_at, elbo_mc, elbo_quadrature, iwae_log_px, kl_penalty, kl_per_dim, log_normal, log_std_normal,
)

X, W, B, SX = 1.5, 1.2, -0.1, 0.3
Q_MU, Q_LOGVAR = 0.3, -0.7


def linear_gaussian_log_lik(z):
    """log N(x; w z + b, σx²) for the 1-D decoder of the reference example."""
    return -0.5 * (math.log(2 * math.pi * SX ** 2) + (X - (W * z[..., 0] + B)) ** 2 / SX ** 2)


def q():
    return torch.tensor([[Q_MU]], dtype=torch.float64), torch.tensor([[Q_LOGVAR]], dtype=torch.float64)


def test_linear_gaussian_reference_numbers():
    mu, logvar = q()
    elbo, rec, kl = elbo_quadrature(linear_gaussian_log_lik, mu, logvar)
    assert float(elbo) == pytest.approx(-12.373, abs=1e-3)
    log_px = -0.5 * (math.log(2 * math.pi * (W ** 2 + SX ** 2)) + (X - B) ** 2 / (W ** 2 + SX ** 2))
    assert log_px == pytest.approx(-1.968, abs=1e-3)
    # The gap is KL(q || exact posterior): the posterior of this model is Gaussian in closed form.
    post_var = 1.0 / (1.0 + W ** 2 / SX ** 2)
    post_mu = post_var * W * (X - B) / SX ** 2
    q_var = math.exp(Q_LOGVAR)
    kl_q_post = 0.5 * (math.log(post_var / q_var) + (q_var + (Q_MU - post_mu) ** 2) / post_var - 1)
    assert log_px - float(elbo) == pytest.approx(10.405, abs=1e-3)
    assert kl_q_post == pytest.approx(log_px - float(elbo), abs=1e-9)


def test_monte_carlo_elbo_converges_to_the_quadrature_value():
    mu, logvar = q()
    gen = torch.Generator().manual_seed(0)
    elbo = elbo_mc(linear_gaussian_log_lik, mu, logvar, samples=400_000, generator=gen).elbo
    assert float(elbo) == pytest.approx(-12.373, abs=0.05)


def test_iwae_approaches_log_px_from_below_as_k_grows():
    mu, logvar = q()
    log_px = -0.5 * (math.log(2 * math.pi * (W ** 2 + SX ** 2)) + (X - B) ** 2 / (W ** 2 + SX ** 2))
    gen = torch.Generator().manual_seed(1)
    # Many independent copies of the one data point average out the estimator's own noise.
    reps = {1: 200_000, 100: 2000, 20000: 10}
    est = {k: float(iwae_log_px(linear_gaussian_log_lik, mu.expand(n, 1), logvar.expand(n, 1), k,
                                generator=gen).mean()) for k, n in reps.items()}
    assert est[1] == pytest.approx(-12.373, abs=0.1)  # with one sample the bound is the ELBO
    assert est[1] < est[100] < log_px + 0.01
    assert est[20000] == pytest.approx(log_px, abs=0.05)


def test_kl_closed_form_matches_monte_carlo():
    gen = torch.Generator().manual_seed(2)
    mu = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[-1.0, 0.3, 0.0]], dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * torch.randn((200_000, 1, 3), generator=gen, dtype=torch.float64)
    mc = (log_normal(z, mu, logvar) - log_std_normal(z)).mean()
    assert float(mc) == pytest.approx(float(kl_per_dim(mu, logvar).sum()), abs=0.02)


def test_reparameterised_gradient_matches_finite_differences():
    """d/dμ of the ELBO with fixed noise is the pathwise gradient; compare with central differences."""
    gen = torch.Generator().manual_seed(3)
    eps = torch.randn((64, 1, 1), generator=gen, dtype=torch.float64)

    def elbo_fixed_noise(mu, logvar):
        z = mu + torch.exp(0.5 * logvar) * eps
        return linear_gaussian_log_lik(z).mean() - kl_per_dim(mu, logvar).sum()

    mu = torch.tensor([[Q_MU]], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([[Q_LOGVAR]], dtype=torch.float64, requires_grad=True)
    elbo_fixed_noise(mu, logvar).backward()
    h = 1e-6
    for param, grad in ((mu, mu.grad), (logvar, logvar.grad)):
        with torch.no_grad():
            param += h
            up = elbo_fixed_noise(mu, logvar)
            param -= 2 * h
            down = elbo_fixed_noise(mu, logvar)
            param += h
        assert float(grad) == pytest.approx(float((up - down) / (2 * h)), rel=1e-5)


def test_beta_warmup_and_free_bits():
    assert beta_at(0, 4.0, 100) == 0.0
    assert beta_at(50, 4.0, 100) == pytest.approx(2.0)
    assert beta_at(500, 4.0, 100) == 4.0
    assert beta_at(0, 4.0, 0) == 4.0
    kl = torch.tensor([[0.1, 2.0], [0.3, 4.0]])
    assert float(kl_penalty(kl, 0.0)) == pytest.approx(0.2 + 3.0)
    assert float(kl_penalty(kl, 0.5)) == pytest.approx(0.5 + 3.0)
