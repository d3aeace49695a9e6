"""Attribute vectors against known answers: two Gaussian groups (AUC in closed form), a factor that
is one coordinate, the vector's plane, analogies; then on latentlab's model and a user's model."""

import math
from statistics import NormalDist

import numpy as np
import pytest

from latentlab.core.errors import Cancelled, LatentLabError
from latentlab.core.meaning.attributes import VectorProjection, auc, label_index, vector_between, vector_for_factor, vector_projection


def two_groups(n=4000, gap=1.5, k=6, seed=0):
    rng = np.random.default_rng(seed)
    shift = np.zeros(k)
    shift[2] = gap
    return rng.standard_normal((n, k)), rng.standard_normal((n, k)) + shift


def test_two_gaussian_groups_give_their_mean_difference_and_the_closed_form_auc():
    za, zb = two_groups()
    v = vector_between(za, zb, names=("a", "b"))
    assert abs(v.direction[2]) == pytest.approx(1.0, abs=0.01) and v.direction[2] > 0
    assert v.length == pytest.approx(1.5, abs=0.06)
    # Unit-variance groups 1.5 apart along the direction: AUC = Φ(1.5 / √2).
    assert v.auc == pytest.approx(NormalDist().cdf(1.5 / math.sqrt(2)), abs=0.02)
    assert v.cosine > 0.99 and v.held_out == round(0.3 * 4000) * 2 and v.bootstraps == 50
    assert v.summary()["auc"] == v.auc and "r2" not in v.summary()


def test_groups_that_do_not_differ_give_chance_auc_and_a_scattered_direction():
    rng = np.random.default_rng(1)
    v = vector_between(rng.standard_normal((300, 8)), rng.standard_normal((300, 8)))
    assert abs(v.auc - 0.5) < 0.1 and v.cosine < 0.7


def test_auc_is_the_mann_whitney_statistic():
    assert auc([3, 4], [1, 2]) == 1.0 and auc([1, 2], [3, 4]) == 0.0 and auc([1, 2], [1, 2]) == 0.5


def test_a_factor_that_is_one_coordinate_gives_that_axis_and_its_r2():
    rng = np.random.default_rng(2)
    y = rng.uniform(0, 1, 5000)
    noise = 0.05
    z = np.c_[rng.standard_normal((5000, 2)), 2.0 * y + noise * rng.standard_normal(5000), rng.standard_normal(5000)]
    v = vector_for_factor(z, y, "x")
    assert v.direction[2] == pytest.approx(1.0, abs=1e-3)
    # R² of y from z3 = 2y + ε: var(2y) / (var(2y) + σ²) with var(2y) = 4/12.
    assert v.r2 == pytest.approx((4 / 12) / (4 / 12 + noise ** 2), abs=0.005)
    assert v.auc > 0.99 and v.cosine > 0.999 and v.source == "x low" and v.target == "x high"
    # α = 1 moves from the lower half's mean to the upper half's: 2 × (3/4 − 1/4) = 1 along z3.
    assert v.length == pytest.approx(1.0, abs=0.03)


def test_the_plane_of_a_vector_is_orthonormal_and_lifts_clicks_exactly():
    za, zb = two_groups(k=5)
    means = np.r_[za, zb]
    means[:, 4] *= 3.0   # the largest spread off the vector is along z5
    v = vector_between(za, zb)
    p = vector_projection(v, means)
    assert isinstance(p, VectorProjection) and p.kind == "vector"
    np.testing.assert_allclose(p.basis.T @ p.basis, np.eye(2), atol=1e-9)
    assert abs(p.basis[4, 1]) > 0.99 and p.basis[:, 0] @ v.direction == pytest.approx(1.0)
    anchor = np.arange(5, dtype=np.float32)
    z = p.lift((0.7, -1.2), anchor)
    np.testing.assert_allclose(p.to2d(z), (0.7, -1.2), atol=1e-5)
    # What the plane cannot show comes from the anchor.
    np.testing.assert_allclose(z - p.basis @ p.to2d(z), anchor - p.basis @ p.to2d(anchor), atol=1e-5)
    assert "→" in p.axis_labels[0] and "⟂" in p.axis_labels[1]


def test_analogy_codes_step_along_the_vector():
    za, zb = two_groups(k=3)
    v = vector_between(za, zb)
    z = np.array([0.1, 0.2, 0.3])
    codes = v.codes(z, [-1, 0, 1, 2])
    np.testing.assert_allclose(codes[1], z, atol=1e-6)
    np.testing.assert_allclose(codes[2] - codes[1], v.length * v.direction, atol=1e-5)
    assert v.grid_codes(np.stack([z, -z]), [0, 1]).shape == (2, 2, 3)


def test_bad_groups_are_one_sentence():
    za, _ = two_groups(n=10)
    with pytest.raises(LatentLabError, match="at least 2"):
        vector_between(za[:1], za)
    with pytest.raises(LatentLabError, match="same mean"):
        vector_between(za, za.copy())
    with pytest.raises(LatentLabError, match="does not vary"):
        vector_for_factor(za, np.ones(10), "flat")
    with pytest.raises(LatentLabError, match="finite"):
        vector_between(np.full((3, 2), np.nan), za[:, :2])


def test_progress_and_stop():
    za, zb = two_groups(n=500)
    seen = []
    vector_between(za, zb, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0
    with pytest.raises(Cancelled):
        vector_between(za, zb, should_stop=lambda: True)


def test_labels_by_name_or_number():
    assert label_index(("cat", "dog"), "dog") == 1 and label_index(("cat", "dog"), "0") == 0
    with pytest.raises(LatentLabError, match="No label"):
        label_index(("cat", "dog"), "7")


@pytest.mark.parametrize("which", ["bundled", "adapter"])
def test_a_digits_vector_on_latentlab_and_a_user_model(which, tmp_path):
    """From 0s to 1s on the digits: held out, the projection separates them far better than chance,
    and walking α from 0 to 1 moves the decoded image of a 0 towards the 1s' mean code."""
    from model_specs import open_spec

    from latentlab.core.data.specs import load_dataset
    from latentlab.core.inference.analysis import decode, encode

    data = load_dataset("digits")
    model = open_spec(which, data, tmp_path)
    mu, _ = encode(model, data.x_train)
    y = data.y_train
    v = vector_between(mu[y == 0], mu[y == 1], names=("0", "1"), kind="labels")
    assert v.auc > 0.9 and v.cosine > 0.9 and v.latent_dim == model.latent_dim
    zero = mu[np.flatnonzero(y == 0)[0]]
    images = decode(model, v.codes(zero, [0.0, 1.0]))
    ones = data.x_train[y == 1].mean(0)
    assert np.abs(images[1] - ones).mean() < np.abs(images[0] - ones).mean()
