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


# --- UMAP and t-SNE ---------------------------------------------------------------------------------

def _blobs(n=700, k=6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (5, k))
    labels = rng.integers(0, 5, n)
    return (centres[labels] + rng.normal(0, 0.5, (n, k))).astype(np.float32), labels


@pytest.fixture(scope="module")
def umap_map():
    pytest.importorskip("umap")
    from latentlab.core.inference.projection import umap_embedding

    means, labels = _blobs()
    seen = []
    emb = umap_embedding(means, seed=0, cap=500, progress=seen.append)   # 200 of the 700 transformed
    return emb, means, labels, seen


def test_umap_maps_every_point_and_reports_progress(umap_map):
    emb, means, _, seen = umap_map
    assert emb.coords.shape == (len(means), 2) and np.isfinite(emb.coords).all()
    assert len(emb.fitted) == 500
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 3
    assert emb.axis_labels[0].startswith("UMAP") and "inverse transform" in emb.lift_note


@pytest.mark.parametrize("which", ["fitted", "transformed"])
def test_umap_inverse_of_a_clicked_point_lands_among_its_latent_neighbours(umap_map, which):
    emb, means, labels, _ = umap_map
    pool = emb.fitted if which == "fitted" else np.setdiff1d(np.arange(len(means)), emb.fitted)
    spread = np.linalg.norm(means - means.mean(0), axis=1).mean()
    inverted = 0
    for i in pool[:10]:
        z, note = emb.lift_with_note(emb.coords[i])
        inverted += note == emb.lift_note
        assert z.shape == (means.shape[1],) and z.dtype == np.float32
        shown = np.argsort(np.linalg.norm(emb.coords - emb.coords[i], axis=1))[:10]   # neighbours on screen
        cluster = np.bincount(labels[shown]).argmax()
        near = np.argsort(np.linalg.norm(means - z, axis=1))[:10]                      # neighbours of z
        assert (labels[near] == cluster).sum() >= 8
        assert np.linalg.norm(means[shown] - z, axis=1).min() < 0.25 * spread
    assert inverted >= 7    # mostly the inverse transform itself, not the nearest-point fallback


def test_umap_stops_between_epochs_when_asked(umap_map):
    from latentlab.core.errors import Cancelled
    from latentlab.core.inference.projection import umap_embedding

    means, _ = _blobs(seed=1)
    seen = []
    with pytest.raises(Cancelled):
        umap_embedding(means, progress=seen.append, should_stop=lambda: bool(seen) and seen[-1] > 0.05)
    assert 0.05 < seen[-1] < 0.75     # stopped inside the fit, not after it


def test_a_map_on_another_thread_after_a_stopped_one_still_finishes(umap_map):
    """A stop raised inside umap's tqdm bar used to leave tqdm's class-wide lock held by the stopping
    thread, so the next map on any other thread (the window's next worker) waited forever."""
    import threading

    from latentlab.core.errors import Cancelled
    from latentlab.core.inference.projection import umap_embedding

    means, _ = _blobs(seed=1)
    seen = []
    with pytest.raises(Cancelled):
        umap_embedding(means, progress=seen.append, should_stop=lambda: bool(seen) and seen[-1] > 0.05)
    assert 0.05 < seen[-1] < 0.75     # stopped inside the fit, in tqdm's bar
    done = []
    worker = threading.Thread(target=lambda: done.append(umap_embedding(means)), daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert done and done[0].coords.shape == (len(means), 2), "the second map never finished"


def test_tsne_lookup_returns_the_nearest_points_latent_and_stops_when_asked():
    pytest.importorskip("openTSNE")
    from latentlab.core.errors import Cancelled
    from latentlab.core.inference.projection import tsne_embedding

    means, labels = _blobs(n=400)
    seen = []
    emb = tsne_embedding(means, seed=0, cap=300, progress=seen.append)
    assert emb.coords.shape == (400, 2) and len(emb.fitted) == 300 and seen[-1] == 1.0
    for i in (0, 5, 399):
        p = emb.coords[i] + 1e-4
        j = int(np.argmin(np.linalg.norm(emb.coords - p, axis=1)))
        assert emb.nearest(p) == j
        np.testing.assert_array_equal(emb.lift(p), means[j])
    assert "nearest data point" in emb.lift_note
    # the placed (not fitted) points land beside their own cluster
    placed = np.setdiff1d(np.arange(400), emb.fitted)
    for i in placed[:10]:
        near = np.argsort(np.linalg.norm(emb.coords[emb.fitted] - emb.coords[i], axis=1))[:5]
        assert (labels[emb.fitted[near]] == labels[i]).all()
    calls = []
    with pytest.raises(Cancelled):
        tsne_embedding(means, progress=calls.append, should_stop=lambda: len(calls) >= 3)
    assert len(calls) == 3


@pytest.mark.parametrize("module, method, package", [("umap", "umap_embedding", "umap-learn"),
                                                     ("openTSNE", "tsne_embedding", "openTSNE")])
def test_a_missing_package_says_how_to_install_it(monkeypatch, module, method, package):
    import builtins

    from latentlab.core.errors import LatentLabError
    from latentlab.core.inference import projection

    real_import = builtins.__import__

    def no_such(name, *args, **kwargs):
        if name == module or name.startswith(module + "."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, module, raising=False)
    monkeypatch.setattr(builtins, "__import__", no_such)
    monkeypatch.setattr("importlib.import_module", lambda name: no_such(name))
    with pytest.raises(LatentLabError) as err:
        getattr(projection, method)(_blobs(n=20)[0])
    message = str(err.value)
    assert package in message and "pip install 'latentlab[projections]'" in message
    assert message.count(".") <= 2 and "\n" not in message


def test_embedding_cache_keeps_the_most_recent_maps():
    from latentlab.core.inference.projection import EmbeddingCache

    cache = EmbeddingCache(size=2)
    cache.put(("umap", 1), "a")
    cache.put(("tsne", 1), "b")
    assert cache.get(("umap", 1)) == "a"      # now the most recent
    cache.put(("umap", 2), "c")               # evicts ("tsne", 1)
    assert cache.get(("tsne", 1)) is None and cache.get(("umap", 1)) == "a" and cache.get(("umap", 2)) == "c"


def test_non_finite_or_too_few_means_are_one_sentence():
    from latentlab.core.errors import LatentLabError
    from latentlab.core.inference.projection import tsne_embedding

    with pytest.raises(LatentLabError, match="at least 3"):
        tsne_embedding(np.zeros((2, 4)))
    bad = _blobs(n=50)[0]
    bad[3, 1] = np.nan
    with pytest.raises(LatentLabError, match="not finite"):
        tsne_embedding(bad)


@pytest.mark.parametrize("k, dims", [(1, (0, 1)), (2, (0, 1)), (2, (1, 0)), (5, (3, 1))])
def test_dims_projection_equals_the_product_with_its_basis(k, dims):
    from latentlab.core.inference.projection import dims_projection

    p = dims_projection(k, *dims)
    z = np.random.default_rng(k).normal(size=(50, k)).astype(np.float32)
    expected = z.astype(np.float64) @ p.basis
    assert np.array_equal(p.to2d(z), expected) and np.array_equal(p.to2d(z[0]), expected[0])
    assert p.to2d(z).dtype == np.float64
