"""The inference inspector's math against closed forms.

The 2-D linear-Gaussian model x | z ~ N(W z + b, σ² I), z ~ N(0, I) has an exact p(x), a Gaussian
posterior with correlation, and a closed-form ELBO for a diagonal q, so every number the posterior
grid reports can be checked. The bundled digits model checks the grid against IWAE."""

import math

import numpy as np
import pytest
import torch

from linear_gaussian import SIGMA, B, W, X, gauss_kl, lg_elbo, lg_exact, lg_log_lik  # noqa: F401

from latentlab.core.inference.aggregate import (
    aggregate_density, aggregate_log_density_at, holes, kl_aggregate_prior, prior_density, prior_samples_in_holes,
)
from latentlab.core.inference.posterior import iwae_curve, posterior_for_image, posterior_grid

@pytest.fixture(scope="module")
def lg_q():
    """A diagonal q that is neither the posterior's mean nor its marginal variances."""
    _, post_mean, post_cov = lg_exact()
    q_mu = post_mean + np.array([0.12, -0.08])
    q_var = np.diag(post_cov) * np.array([0.6, 1.4])
    return q_mu, np.log(q_var)


def test_linear_gaussian_posterior_has_correlation_and_q_differs():
    _, post_mean, post_cov = lg_exact()
    corr = post_cov[0, 1] / math.sqrt(post_cov[0, 0] * post_cov[1, 1])
    assert abs(corr) > 0.2


def test_grid_matches_linear_gaussian_closed_forms(lg_q):
    q_mu, q_logvar = lg_q
    log_px, post_mean, post_cov = lg_exact()
    g = posterior_grid(lg_log_lik, q_mu, q_logvar, size=200)
    assert g.density.shape == g.log_joint.shape == (len(g.ys), len(g.xs)) == (200, 200)
    assert g.density.sum() * g.cell_area == pytest.approx(1.0, abs=1e-12)
    assert g.q_density.sum() * g.cell_area == pytest.approx(1.0, abs=1e-12)
    assert g.edge_mass < 1e-6
    # the midpoint rule on a smooth integrand is spectrally accurate: errors here are ~1e-8
    assert g.log_px == pytest.approx(log_px, abs=1e-6)
    np.testing.assert_allclose(g.mean, post_mean, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g.cov, post_cov, rtol=1e-6, atol=1e-8)
    kl_exact = gauss_kl(q_mu, np.diag(np.exp(q_logvar)), post_mean, post_cov)
    assert kl_exact > 0.1  # q is visibly off, so the check means something
    assert g.kl_q_posterior == pytest.approx(kl_exact, abs=1e-6)
    elbo = lg_elbo(q_mu, np.exp(q_logvar))
    assert g.elbo == pytest.approx(elbo, abs=1e-9)  # Gauss-Hermite is exact for a quadratic log-lik
    assert g.recon - g.kl_prior == pytest.approx(g.elbo, abs=1e-9)
    # log p(x) = ELBO + KL(q || p(z|x)), from two independent computations
    assert g.gap == pytest.approx(g.log_px - g.elbo, abs=1e-12)
    assert g.gap == pytest.approx(g.kl_q_posterior, abs=1e-6)
    assert not g.density.flags.writeable


def test_grid_finds_the_posterior_when_q_is_far_off():
    """The coarse pass must widen the box to the posterior even when q points elsewhere."""
    log_px, post_mean, post_cov = lg_exact()
    g = posterior_grid(lg_log_lik, np.array([-2.5, 2.0]), np.log([0.01, 0.02]), size=200)
    assert g.edge_mass < 1e-6
    assert g.log_px == pytest.approx(log_px, abs=1e-3)
    np.testing.assert_allclose(g.mean, post_mean, atol=2e-3)


def test_explicit_span_and_torch_inputs(lg_q):
    q_mu, q_logvar = lg_q
    log_px, _, _ = lg_exact()
    g = posterior_grid(lg_log_lik, torch.tensor(q_mu)[None], torch.tensor(q_logvar)[None], size=150, span=5.0)
    assert g.extent == (-5.0, 5.0, -5.0, 5.0)
    assert g.xs[0] == pytest.approx(-5.0 + 10.0 / 300)
    assert g.log_px == pytest.approx(log_px, abs=1e-3)
    with pytest.raises(ValueError):
        posterior_grid(lg_log_lik, np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        posterior_grid(lambda z: z[..., 0] * np.nan, q_mu, q_logvar)


def test_iwae_curve_on_linear_gaussian(lg_q):
    q_mu, q_logvar = lg_q
    log_px, _, _ = lg_exact()
    curve = iwae_curve(lg_log_lik, q_mu, q_logvar, generator=torch.Generator().manual_seed(0))
    assert [k for k, _ in curve] == [1, 10, 100, 1000, 5000]
    est = dict(curve)
    assert est[1] == pytest.approx(lg_elbo(q_mu, np.exp(q_logvar)), abs=0.05)  # k = 1 averages log-weights
    assert est[1] < est[10] < est[100] < log_px + 0.01
    assert est[5000] == pytest.approx(log_px, abs=0.05)


# --- the bundled model ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_model():
    from latentlab.core.files.bundled import default_checkpoint
    from latentlab.core.files.checkpoint import load_checkpoint
    from latentlab.core.data.specs import load_dataset

    model = load_checkpoint(default_checkpoint()).model
    return model, load_dataset("digits").x_test


def test_bundled_model_grid_agrees_with_iwae(digits_model):
    from latentlab.core.inference.objectives import model_log_lik

    model, x_test = digits_model
    gen = torch.Generator().manual_seed(0)
    for i in (0, 7, 31):
        g = posterior_for_image(model, x_test[i])
        x = torch.from_numpy(x_test[i:i + 1])
        with torch.no_grad():
            mu, logvar = model.encode(x)
        iw = dict(iwae_curve(model_log_lik(model, x), mu, logvar, ks=(5000,), generator=gen))[5000]
        assert g.edge_mass < 1e-4
        assert g.log_px == pytest.approx(iw, abs=0.5)
        assert g.elbo < iw and g.elbo < g.log_px
        assert g.gap == pytest.approx(g.kl_q_posterior, abs=0.02)
        np.testing.assert_allclose(g.q_mu, mu[0].double().numpy(), rtol=1e-6)


def test_posterior_for_image_rejects_other_latent_sizes():
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.models.vae import build_model

    model = build_model(ModelConfig(image_shape=(1, 4, 4), latent_dim=3, hidden=(8,)))
    with pytest.raises(ValueError, match="2-D"):
        posterior_for_image(model, np.zeros((1, 4, 4), np.float32))


# --- aggregate posterior ----------------------------------------------------------------------

def brute_mixture(mu, logvar, xs, ys):
    zx, zy = np.meshgrid(xs, ys)
    z = np.stack([zx, zy], -1)[:, :, None, :]                     # (ny, nx, 1, 2)
    var = np.exp(logvar)
    dens = np.exp(-0.5 * ((z - mu) ** 2 / var).sum(-1)) / (2 * math.pi * np.sqrt(var.prod(-1)))
    return dens.mean(-1)


def test_aggregate_density_matches_brute_force_and_integrates_to_one():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(37, 2))
    logvar = rng.uniform(-2.0, 0.5, size=(37, 2))
    xs, ys = np.linspace(-3, 3, 23), np.linspace(-2.5, 2.0, 17)
    np.testing.assert_allclose(aggregate_density(mu, logvar, xs, ys, chunk=5), brute_mixture(mu, logvar, xs, ys),
                               rtol=1e-12, atol=1e-15)
    xs, ys = np.linspace(-9, 9, 401), np.linspace(-8, 8, 351)
    area = (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert aggregate_density(mu, logvar, xs, ys).sum() * area == pytest.approx(1.0, abs=1e-6)
    # cell averages keep the mass of components narrower than a cell
    narrow = np.full((37, 2), -12.0)
    coarse_x, coarse_y = np.linspace(-6, 6, 61), np.linspace(-6, 6, 61)
    cell = aggregate_density(mu, narrow, coarse_x, coarse_y, cell_average=True)
    assert cell.sum() * 0.2 * 0.2 == pytest.approx(1.0, abs=1e-9)


def test_aggregate_point_density_matches_brute_force():
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(50, 2))
    logvar = rng.uniform(-1.5, 0.5, size=(50, 2))
    z = rng.normal(size=(13, 2)) * 1.5
    brute = np.array([brute_mixture(mu, logvar, p[:1], p[1:])[0, 0] for p in z])
    np.testing.assert_allclose(np.exp(aggregate_log_density_at(z, mu, logvar, chunk_pairs=26)), brute, rtol=1e-10)


def ring(n=400, radius=2.0, logvar=-4.0):
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([radius * np.cos(t), radius * np.sin(t)], 1), np.full((n, 2), logvar)


def test_holes_empty_when_aggregate_is_the_prior_and_found_for_a_ring():
    xs = ys = np.linspace(-4, 4, 81)
    prior = prior_density(xs, ys)
    mu0, lv0 = np.zeros((100, 2)), np.zeros((100, 2))
    agg = aggregate_density(mu0, lv0, xs, ys)
    np.testing.assert_allclose(agg, prior, rtol=1e-12)
    assert not holes(agg, prior).any()
    mu, lv = ring()
    mask = holes(aggregate_density(mu, lv, xs, ys), prior)
    assert mask.any()
    assert mask[40, 40]                       # the ring's centre, the prior's mode, is a hole
    r2 = xs[None, :] ** 2 + ys[:, None] ** 2
    assert not mask[r2 > -2 * math.log(0.05) + 1e-9].any()   # only inside the prior's 95% region
    assert not holes(agg, prior, ratio=0.0).any()


def test_prior_samples_in_holes():
    rng = np.random.default_rng(2)
    z, in_hole = prior_samples_in_holes(np.zeros((50, 2)), np.zeros((50, 2)), 2000, rng)
    assert z.shape == (2000, 2) and in_hole.shape == (2000,) and in_hole.dtype == bool
    assert in_hole.mean() == 0.0
    mu, lv = ring()
    _, in_hole = prior_samples_in_holes(mu, lv, 2000, rng)
    assert 0.3 < in_hole.mean() < 1.0


def test_kl_aggregate_prior():
    rng = np.random.default_rng(3)
    assert kl_aggregate_prior(np.zeros((20, 2)), np.zeros((20, 2)), 1000, rng) == pytest.approx(0.0, abs=1e-12)
    m, s2 = np.array([0.8, -1.2]), np.array([0.3, 0.5])
    closed = 0.5 * np.sum(s2 + m ** 2 - 1 - np.log(s2))
    est = kl_aggregate_prior(m[None], np.log(s2)[None], 40000, rng)
    assert est == pytest.approx(closed, abs=0.02)
    # subsampling components: same answer for identical components, any size of latent
    many = kl_aggregate_prior(np.tile(m, (50, 1)), np.tile(np.log(s2), (50, 1)), 40000, rng, max_components=10)
    assert many == pytest.approx(closed, abs=0.02)
