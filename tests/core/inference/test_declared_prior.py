"""Numbers against a prior the model declares, checked on the linear-Gaussian toy where log p(x) and
the ELBO have closed forms: a diagonal Gaussian prior (closed-form KL) and a VAMP-style mixture
(a torch MixtureSameFamily, whose KL latentlab estimates). A model that declares nothing is
measured against N(0, I) and the reports say it was assumed."""

import math

import numpy as np
import pytest
import torch
from linear_gaussian import (
    LinearGaussianModel,
    X,
    gauss_kl,
    lg_exact,
    lg_expected_log_lik,
    lg_log_lik,
    lg_log_px_gaussian_prior,
    lg_log_px_mixture,
    mixture_prior,
)

from latentlab.core.inference.aggregate import PlanePrior, kl_aggregate_prior
from latentlab.core.inference.analysis import evaluate, log_prior, point_kl
from latentlab.core.inference.objectives import elbo_quadrature, elbo_terms, iwae_log_px
from latentlab.core.inference.posterior import posterior_grid
from latentlab.core.models.priors import DiagonalGaussian, DistributionPrior, declared_prior

Q_MU = np.array([0.35, -0.2])
Q_VAR = np.array([0.3, 0.45])
PRIOR_M = np.array([0.8, -0.5])
PRIOR_V = np.array([0.5, 2.0])
MIX_W = [0.2, 0.5, 0.3]
MIX_M = [[-1.5, 0.5], [0.6, 0.2], [1.0, -1.8]]
MIX_V = [[0.3, 0.6], [0.5, 0.2], [0.8, 0.4]]


def q_tensors():
    return torch.tensor(Q_MU)[None], torch.log(torch.tensor(Q_VAR))[None]


def gaussian_prior():
    return declared_prior(type("M", (), {"prior": torch.distributions.Normal(
        torch.tensor(PRIOR_M), torch.tensor(np.sqrt(PRIOR_V)))})(), (2,))


def test_a_declared_diagonal_gaussian_has_a_closed_form_kl_and_the_exact_elbo():
    prior = gaussian_prior()
    assert isinstance(prior, DiagonalGaussian) and prior.closed_form and prior.declared
    mu, lv = q_tensors()
    elbo, rec, kl = elbo_quadrature(lg_log_lik, mu, lv, prior=prior)
    kl_exact = gauss_kl(Q_MU, np.diag(Q_VAR), PRIOR_M, np.diag(PRIOR_V))
    assert float(kl) == pytest.approx(kl_exact, abs=1e-12)
    assert float(elbo) == pytest.approx(lg_expected_log_lik(Q_MU, Q_VAR) - kl_exact, abs=1e-9)
    g = posterior_grid(lg_log_lik, Q_MU, np.log(Q_VAR), size=200, prior=prior)
    assert g.log_px == pytest.approx(lg_log_px_gaussian_prior(PRIOR_M, PRIOR_V), abs=1e-6)
    assert g.kl_prior == pytest.approx(kl_exact, abs=1e-12)
    assert g.gap == pytest.approx(g.kl_q_posterior, abs=1e-5)


def test_a_mixture_of_identical_components_checks_the_monte_carlo_path_exactly():
    """A mixture whose components are one Gaussian is that Gaussian: its KL has a closed form, yet
    latentlab computes it the way it does for any mixture (E_q[log q − log p])."""
    prior = declared_prior(type("M", (), {"prior": mixture_prior([0.5, 0.5], [PRIOR_M] * 2, [PRIOR_V] * 2)})(), (2,))
    assert isinstance(prior, DistributionPrior) and not prior.closed_form
    mu, lv = q_tensors()
    elbo, _, kl = elbo_quadrature(lg_log_lik, mu, lv, order=24, prior=prior)
    kl_exact = gauss_kl(Q_MU, np.diag(Q_VAR), PRIOR_M, np.diag(PRIOR_V))
    assert float(kl) == pytest.approx(kl_exact, abs=1e-9)   # Gauss–Hermite is exact for the quadratic log p
    assert float(elbo) == pytest.approx(lg_expected_log_lik(Q_MU, Q_VAR) - kl_exact, abs=1e-9)
    gen = torch.Generator().manual_seed(0)
    z = mu + torch.exp(0.5 * lv) * torch.randn((200_000, 1, 2), generator=gen, dtype=torch.float64)
    assert float(prior.kl(mu, lv, z)) == pytest.approx(kl_exact, abs=0.01)


def test_a_vamp_style_mixture_prior_gives_the_exact_log_px_on_the_grid_and_by_iwae():
    prior = declared_prior(type("M", (), {"prior": mixture_prior(MIX_W, MIX_M, MIX_V)})(), (2,))
    exact = lg_log_px_mixture(MIX_W, MIX_M, MIX_V)
    assert abs(exact - lg_exact()[0]) > 0.3   # the prior matters here: N(0, I) gives another number
    g = posterior_grid(lg_log_lik, Q_MU, np.log(Q_VAR), size=200, prior=prior)
    assert g.log_px == pytest.approx(exact, abs=1e-6)
    assert g.edge_mass < 1e-6
    assert g.gap == pytest.approx(g.kl_q_posterior, abs=1e-4)   # log p(x) = ELBO + KL(q || p(z|x)) under this prior
    mu, lv = q_tensors()
    gen = torch.Generator().manual_seed(1)
    iw = float(iwae_log_px(lg_log_lik, mu, lv, 20_000, generator=gen, prior=prior)[0])
    assert iw == pytest.approx(exact, abs=0.02)


def test_evaluate_uses_the_declared_prior():
    prior = mixture_prior(MIX_W, MIX_M, MIX_V)
    model = LinearGaussianModel(Q_MU, Q_VAR, prior=prior).eval()
    x = np.broadcast_to(X.astype(np.float32), (4000, 1, 1, 3)).copy()
    stats = evaluate(model, x, iw_samples=50)
    reference = elbo_quadrature(lg_log_lik, *q_tensors(), order=48, prior=model.latent_prior())
    assert stats["elbo"] == pytest.approx(float(reference[0]), abs=0.05)
    assert stats["kl"] == pytest.approx(float(reference[2]), abs=0.05)
    assert stats["log_px_iw"] == pytest.approx(lg_log_px_mixture(MIX_W, MIX_M, MIX_V), abs=0.05)
    assert stats["kl_method"] == "Monte Carlo" and stats["prior_declared"]
    assert any("Monte Carlo" in n for n in stats["notes"])
    # Against N(0, I) the same model's KL is another number: the declaration is what changed it.
    plain = evaluate(LinearGaussianModel(Q_MU, Q_VAR).eval(), x)
    assert abs(plain["kl"] - stats["kl"]) > 0.2
    assert not plain["prior_declared"] and any("N(0, I) is assumed" in n for n in plain["notes"])


def test_training_terms_and_per_point_numbers_follow_the_prior():
    model = LinearGaussianModel(Q_MU, Q_VAR, prior=mixture_prior(MIX_W, MIX_M, MIX_V)).eval()
    x = torch.as_tensor(np.broadcast_to(X, (3, 1, 1, 3)).copy())
    eps = torch.randn((3, 2), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    terms = elbo_terms(model, x, eps)
    z = model.q_mu + torch.exp(0.5 * model.q_lv) * eps
    expected = (-0.5 * (math.log(2 * math.pi) * 2 + model.q_lv.sum() + eps.square().sum(1))
                - model.latent_prior().log_prob(z))
    torch.testing.assert_close(terms.kl, expected)
    reference = float(elbo_quadrature(lg_log_lik, *q_tensors(), order=48, prior=model.latent_prior())[2])
    per_point = point_kl(np.tile(Q_MU, (2000, 1)), np.tile(np.log(Q_VAR), (2000, 1)), model.latent_prior())
    assert per_point.mean() == pytest.approx(reference, abs=0.05)
    lp = log_prior(np.array([[0.6, 0.2]]), model.latent_prior())
    assert float(lp[0]) == pytest.approx(float(mixture_prior(MIX_W, MIX_M, MIX_V).log_prob(torch.tensor([0.6, 0.2]))))


def test_the_aggregate_view_draws_the_declared_prior():
    prior = declared_prior(type("M", (), {"prior": mixture_prior(MIX_W, MIX_M, MIX_V)})(), (2,))
    plane = PlanePrior(prior, 2)
    xs = ys = np.linspace(-5, 5, 201)
    grid = plane.density(xs, ys)
    assert grid.sum() * (xs[1] - xs[0]) ** 2 == pytest.approx(1.0, abs=1e-3)
    draws = plane.sample(50_000, np.random.default_rng(0))
    np.testing.assert_allclose(draws.mean(0), np.average(MIX_M, axis=0, weights=MIX_W), atol=0.03)
    # KL of an aggregate equal to the prior itself is ~0; against N(0, I) it is not.
    rng = np.random.default_rng(0)
    comps = rng.choice(3, size=3000, p=MIX_W)
    mu, lv = np.asarray(MIX_M)[comps], np.log(np.asarray(MIX_V))[comps]
    assert abs(kl_aggregate_prior(mu, lv, 4000, rng, prior=prior)) < 0.02
    assert kl_aggregate_prior(mu, lv, 4000, rng) > 0.3


def test_declarations_that_do_not_fit_are_refused_and_scalars_broadcast():
    obj = type("M", (), {"prior": torch.distributions.Normal(torch.zeros(3), torch.ones(3))})()
    with pytest.raises(ValueError, match="3"):
        declared_prior(obj, (2,))
    scalar = type("M", (), {"prior": torch.distributions.Normal(0.0, 1.0)})()
    assert declared_prior(scalar, (4,)).declared and declared_prior(scalar, (4,)).closed_form
    assert declared_prior(object(), (2,)) is None
