import numpy as np
import pytest

from latentlab.core.inference.analysis import active_units, interpolate, traversal_codes
from latentlab.core.inference.projection import dims_projection, pca_projection


def test_dims_projection_shows_and_lifts_the_chosen_pair():
    p = dims_projection(4, 2, 0)
    z = np.array([1.0, 2.0, 3.0, 4.0])
    assert np.allclose(p.to2d(z), [3.0, 1.0])
    lifted = p.lift([-1.0, 5.0], anchor=z)
    assert np.allclose(lifted, [5.0, 2.0, -1.0, 4.0])
    assert p.axis_labels == ("z3", "z1")
    with pytest.raises(ValueError):
        dims_projection(3, 1, 1)


def test_pca_projection_is_orthonormal_and_finds_the_spread():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(500, 5)) * np.array([0.1, 3.0, 0.1, 1.0, 0.1])
    p = pca_projection(means)
    assert np.allclose(p.basis.T @ p.basis, np.eye(2), atol=1e-9)
    assert abs(p.basis[1, 0]) > 0.99 and abs(p.basis[3, 1]) > 0.99
    anchor = rng.normal(size=5)
    lifted = p.lift([0.5, -0.5], anchor)
    assert np.allclose(p.to2d(lifted), [0.5, -0.5], atol=1e-5)
    # What the view cannot see comes from the anchor unchanged.
    rest = np.eye(5) - p.basis @ p.basis.T
    assert np.allclose(rest @ lifted, rest @ anchor, atol=1e-5)


def test_one_dimensional_latent_projects_onto_the_x_axis():
    p = dims_projection(1)
    assert np.allclose(p.to2d(np.array([[2.0]])), [[2.0, 0.0]])
    assert np.allclose(p.lift([1.5, 9.0], np.zeros(1)), [1.5])


def test_slerp_keeps_the_norm_profile_and_linear_sags():
    z0 = np.array([2.0, 0.0, 0.0])
    z1 = np.array([0.0, 0.0, -2.0])
    lin = interpolate(z0, z1, 11, "linear")
    sph = interpolate(z0, z1, 11, "slerp")
    assert np.allclose(lin[[0, -1]], [z0, z1]) and np.allclose(sph[[0, -1]], [z0, z1], atol=1e-6)
    assert np.allclose(np.linalg.norm(sph, axis=1), 2.0, atol=1e-5)
    assert np.linalg.norm(lin[5]) == pytest.approx(np.sqrt(2.0), rel=1e-5)
    # Different norms at the ends: slerp interpolates the norm linearly.
    sph2 = interpolate(z0, 3 * z1, 5, "slerp")
    assert np.allclose(np.linalg.norm(sph2, axis=1), np.linspace(2, 6, 5), atol=1e-5)


def test_traversal_codes_sweep_one_coordinate_each():
    anchor = np.array([0.5, -1.0, 2.0], np.float32)
    values = np.linspace(-3, 3, 7)
    codes = traversal_codes(anchor, values)
    assert codes.shape == (3, 7, 3)
    for d in range(3):
        assert np.allclose(codes[d, :, d], values)
        others = [o for o in range(3) if o != d]
        assert np.allclose(codes[d][:, others], anchor[others])


def test_active_units_threshold():
    rng = np.random.default_rng(1)
    mu = np.stack([rng.normal(size=1000), 0.05 * rng.normal(size=1000), np.zeros(1000)], axis=1)
    assert active_units(mu).tolist() == [True, False, False]


def test_traversal_of_the_top_dimensions_by_kl():
    from latentlab.core.inference.analysis import top_dims_by_kl

    kl = np.array([0.1, 3.0, 0.0, 2.0, 3.0])
    assert list(top_dims_by_kl(kl, 3)) == [1, 4, 3]
    codes = traversal_codes(np.zeros(5, np.float32), np.array([-1.0, 1.0], np.float32), dims=[4, 1])
    assert codes.shape == (2, 2, 5)
    assert codes[0, :, 4].tolist() == [-1.0, 1.0] and codes[1, :, 1].tolist() == [-1.0, 1.0]
    assert codes[0, :, :4].sum() == 0 and codes[1, :, [0, 2, 3, 4]].sum() == 0


def test_pca_of_thousands_of_dimensions_finds_the_top_directions():
    from latentlab.core.inference.projection import EXACT_PCA_MAX_K, pca_projection

    rng = np.random.default_rng(1)
    k = 4 * EXACT_PCA_MAX_K
    u = np.linalg.qr(rng.standard_normal((k, 2)))[0]
    means = rng.standard_normal((3000, 2)) * [5.0, 3.0] @ u.T + 0.1 * rng.standard_normal((3000, k))
    basis = pca_projection(means).basis
    assert basis.shape == (k, 2)
    np.testing.assert_allclose(basis.T @ basis, np.eye(2), atol=1e-9)
    exact = np.linalg.svd(means - means.mean(0), full_matrices=False)[2][:2].T
    np.testing.assert_allclose(np.abs(basis.T @ exact), np.eye(2), atol=1e-6)
    assert np.abs(basis.T @ u).diagonal().min() > 0.98


@pytest.mark.parametrize("k, dims", [(1, (0, 1)), (2, (0, 1)), (2, (1, 0)), (5, (3, 1))])
def test_dims_projection_equals_the_product_with_its_basis(k, dims):
    from latentlab.core.inference.projection import dims_projection

    p = dims_projection(k, *dims)
    z = np.random.default_rng(k).normal(size=(50, k)).astype(np.float32)
    expected = z.astype(np.float64) @ p.basis
    assert np.array_equal(p.to2d(z), expected) and np.array_equal(p.to2d(z[0]), expected[0])
    assert p.to2d(z).dtype == np.float64


def test_a_linear_lift_of_many_points_equals_lifting_each():
    rng = np.random.default_rng(3)
    anchor = rng.normal(size=5)
    points = rng.normal(size=(40, 2)) * 3
    for p in (pca_projection(rng.normal(size=(300, 5)) * [3, 2, 1, 1, 1]), dims_projection(5, 3, 1)):
        many = p.lift_many(points, anchor)
        assert many.shape == (40, 5) and many.dtype == np.float32
        np.testing.assert_array_equal(many, np.stack([p.lift(q, anchor) for q in points]))
        np.testing.assert_allclose(p.to2d(many), points, atol=1e-5)     # shown where they were asked for


class _RowwiseInverse:
    """A stand-in for a fitted UMAP whose inverse treats each row on its own (UMAP's does not exactly):
    some answers inside the data, some far outside it, one not finite."""

    def __init__(self):
        self.calls = 0

    def inverse_transform(self, p):
        self.calls += 1
        z = np.c_[p, 0.5 * p[:, :1]]
        z[p[:, 0] > 1.5] *= 100.0
        z[p[:, 1] < -2.5] = np.nan
        return z


@pytest.mark.parametrize("kind", ["umap", "tsne"])
def test_an_embedding_lifts_many_points_with_one_inverse_as_it_lifts_each(kind):
    from latentlab.core.inference.projection import EmbeddedProjection, Embedding

    rng = np.random.default_rng(0)
    means = rng.normal(size=(200, 3)).astype(np.float32)
    inverse = _RowwiseInverse() if kind == "umap" else None
    emb = Embedding(kind, means[:, :2].copy(), means, np.arange(200), inverse)
    points = np.stack(np.meshgrid(np.linspace(-3, 3, 7), np.linspace(-3, 3, 7)), -1).reshape(-1, 2)
    many = EmbeddedProjection(emb, means).lift_many(points)
    if kind == "umap":
        assert inverse.calls == 1
    each = [emb.lift_with_note(p) for p in points]
    np.testing.assert_array_equal(many, np.stack([z for z, _ in each]))
    nearest = means[np.argmin(np.linalg.norm(means[:, :2][None] - points[:, None], axis=2), axis=1)]
    fell_back = np.array([note != emb.lift_note or kind == "tsne" for _, note in each])
    np.testing.assert_array_equal(many[fell_back], nearest[fell_back])
    if kind == "umap":   # both ways were taken
        assert 0 < fell_back.sum() < len(points)
