"""Disentanglement scores against known answers: a perfect code, a 45° rotation (MIG's drop in closed
form), a collapsed dimension, a permutation of the latents, noise; then on real models."""

import math

import numpy as np
import pytest

from latentlab.core.meaning.disentanglement import (
    FactorScores,
    dci_from_importance,
    discretise,
    disentanglement_scores,
    factor_codes,
    model_factor_scores,
)

N_VALUES = 10


def independent_factors(n=20_000, count=3, seed=0):
    rng = np.random.default_rng(seed)
    return {f"f{j}": rng.integers(0, N_VALUES, n).astype(np.float32) for j in range(count)}


def scores_of(z, factors, **kw) -> dict:
    s = disentanglement_scores(z, factors, **kw)
    assert isinstance(s, FactorScores)
    return {"mig": s.mig, **{k: getattr(s, k) for k in ("disentanglement", "completeness", "informativeness", "sap",
                                                           "beta_vae", "factor_vae")}}


@pytest.fixture(scope="module")
def identity():
    factors = independent_factors()
    z = np.stack(list(factors.values()), axis=1).astype(np.float64)
    return z, factors, scores_of(z, factors)


def test_an_identity_encoder_of_independent_factors_scores_about_one(identity):
    _, _, s = identity
    assert s["mig"] > 0.99 and s["disentanglement"] > 0.99 and s["completeness"] > 0.99
    assert s["informativeness"] > 0.95 and s["beta_vae"] > 0.99 and s["factor_vae"] > 0.99
    assert all(0.0 <= v <= 1.0 for v in s.values())


def entropy(p):
    p = np.asarray(p, float)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())


def test_a_45_degree_rotation_of_two_factors_lowers_mig_by_the_closed_form(identity):
    """z1 = (u+v)/√2, z2 = (u−v)/√2 with u, v uniform on 10 values: the 20 equal-width bins of z1's
    range (19 sums, 1 apart, bins 0.9 wide) separate every sum, so I(z1; u) = H(u+v) − H(v), and
    I(z2; u) is the same by symmetry: the gap for u and v is 0, and MIG falls from 1 to 1/3."""
    z, factors, before = identity
    u, v = z[:, 0], z[:, 1]
    rotated = np.c_[(u + v) / math.sqrt(2), (u - v) / math.sqrt(2), z[:, 2]]
    s = disentanglement_scores(rotated, factors)
    triangle = [N_VALUES - abs(k - (N_VALUES - 1)) for k in range(2 * N_VALUES - 1)]
    exact_mi = entropy(triangle) - math.log(N_VALUES)
    assert s.mutual_information[:2, :2] == pytest.approx(np.full((2, 2), exact_mi), abs=0.01)
    expected_drop = 2 / 3
    assert before["mig"] - s.mig == pytest.approx(expected_drop, abs=0.01)
    # The bins do separate the 19 sums (what the closed form assumes).
    assert len(np.unique(discretise(rotated[:, :1]))) == 2 * N_VALUES - 1
    assert s.disentanglement < before["disentanglement"] - 0.2


def test_a_collapsed_dimension_adds_nothing(identity):
    z, factors, before = identity
    collapsed = np.c_[z[:, :1], np.full(len(z), 0.37), z[:, 1:]]
    s = disentanglement_scores(collapsed, factors)
    assert scores_of(collapsed, factors) == before
    assert np.all(s.importance[1] == 0) and np.all(s.mutual_information[1] == 0)
    assert any("never vary" in note for note in s.notes)


def test_a_permutation_of_the_latents_changes_no_score():
    rng = np.random.default_rng(3)
    factors = independent_factors(6000, seed=3)
    f = np.stack(list(factors.values()), axis=1)
    z = np.c_[f @ rng.standard_normal((3, 3)), rng.standard_normal((len(f), 2))] + 0.3 * rng.standard_normal((len(f), 5))
    perm = np.array([3, 0, 4, 2, 1])
    a, b = disentanglement_scores(z, factors), disentanglement_scores(z[:, perm], factors)
    assert {k: getattr(a, k) for k in ("mig", "disentanglement", "completeness", "informativeness", "sap", "beta_vae",
                                       "factor_vae")} == {k: getattr(b, k) for k in ("mig", "disentanglement",
                                                                                      "completeness", "informativeness",
                                                                                      "sap", "beta_vae", "factor_vae")}
    np.testing.assert_array_equal(a.importance[perm], b.importance)


def test_noise_scores_near_chance():
    factors = independent_factors(8000, seed=5)
    z = np.random.default_rng(5).standard_normal((8000, 4))
    s = scores_of(z, factors)
    assert s["mig"] < 0.02 and s["sap"] < 0.05 and s["informativeness"] < 0.05
    assert s["beta_vae"] < 1 / 3 + 0.1 and s["factor_vae"] < 1 / 3 + 0.1


def test_dci_of_known_importance_matrices():
    assert dci_from_importance(np.eye(3)) == pytest.approx((1.0, 1.0))
    assert dci_from_importance(np.ones((3, 3))) == pytest.approx((0.0, 0.0), abs=1e-9)
    # One code for two factors: disentanglement 0 for it; completeness perfect for both.
    d, c = dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert d == pytest.approx(0.0, abs=1e-9) and c == pytest.approx(1.0)


def test_many_valued_factors_are_binned_and_constant_ones_left_out():
    rng = np.random.default_rng(0)
    codes, names, notes = factor_codes({"smooth": rng.random(500), "fixed": np.ones(500), "few": rng.integers(0, 3, 500)})
    assert names == ("smooth", "few") and codes[:, 0].max() < 20 and len(np.unique(codes[:, 1])) == 3
    assert any("binned" in n for n in notes) and any("one value" in n for n in notes)


def test_gbt_estimator_agrees_on_a_perfect_code():
    factors = independent_factors(1500, count=2, seed=1)
    z = np.stack(list(factors.values()), axis=1) + 0.0
    s = disentanglement_scores(z, factors, estimator="gbt")
    assert s.disentanglement > 0.95 and s.informativeness > 0.95 and s.estimator == "gbt"


def test_progress_and_stop():
    from latentlab.core.errors import Cancelled

    factors = independent_factors(3000, seed=2)
    z = np.stack(list(factors.values()), axis=1) + 0.0
    seen = []
    disentanglement_scores(z, factors, progress=lambda f, phase=None: seen.append((f, phase)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert {"Disentanglement: MIG", "Disentanglement: DCI", "Disentanglement: FactorVAE"} <= {p for _, p in seen}
    with pytest.raises(Cancelled):
        disentanglement_scores(z, factors, should_stop=lambda: len(seen) > 0)


def test_scores_of_real_models_on_sprites():
    """The bundled β-VAE (three active dimensions, one each for x, y and size) against the untrained
    conv VAE a user brings through its SPEC: every score in [0, 1], the β-VAE's clearly higher."""
    from model_specs import open_spec

    from latentlab.core.data.specs import load_dataset

    data = load_dataset("sprites")
    scores = {}
    for spec in ("bundled", "conv"):
        model = open_spec(spec, data)
        s = model_factor_scores(model, data)
        values = [s.mig, s.disentanglement, s.completeness, s.informativeness, s.sap, s.beta_vae, s.factor_vae]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert s.importance.shape == (model.latent_dim, 5) and s.factors == ("shape", "scale", "rotation", "x", "y")
        scores[spec] = s
    good, bad = scores["bundled"], scores["conv"]
    # y and x each have one latent that holds most of their information (MI > 0.75 nats of ln 12).
    assert good.mutual_information[:, 4].max() > 0.75 and good.mutual_information[:, 3].max() > 0.75
    for name in ("mig", "informativeness", "beta_vae", "factor_vae"):
        assert getattr(good, name) > getattr(bad, name) + 0.05, name


def test_mutual_information_is_scikit_learns():
    from sklearn.metrics import mutual_info_score

    from latentlab.core.meaning.disentanglement import mutual_information

    rng = np.random.default_rng(4)
    codes = rng.integers(0, 7, (3000, 2))
    zd = np.c_[codes[:, 0] * 3 + rng.integers(0, 2, 3000), rng.integers(5, 25, 3000)]
    expected = [[mutual_info_score(codes[:, f], zd[:, k]) for f in range(2)] for k in range(2)]
    np.testing.assert_allclose(mutual_information(zd, codes), expected, atol=1e-12)
