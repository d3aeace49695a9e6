"""UMAP and t-SNE maps of the latent means: fitted with progress, stoppable, lifted back to latent codes."""

import numpy as np
import pytest

pytestmark = pytest.mark.slow   # seconds each; `-m "not slow"` skips them locally


def _blobs(n=700, k=6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (5, k))
    labels = rng.integers(0, 5, n)
    return (centres[labels] + rng.normal(0, 0.5, (n, k))).astype(np.float32), labels


@pytest.fixture(scope="module")
def umap_map():
    pytest.importorskip("umap")
    from latentlab.core.inference.maps import umap_embedding

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
    from latentlab.core.inference.maps import umap_embedding

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
    from latentlab.core.inference.maps import umap_embedding

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
    from latentlab.core.inference.maps import tsne_embedding

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
    from latentlab.core.inference import maps

    real_import = builtins.__import__

    def no_such(name, *args, **kwargs):
        if name == module or name.startswith(module + "."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, module, raising=False)
    monkeypatch.setattr(builtins, "__import__", no_such)
    monkeypatch.setattr("importlib.import_module", lambda name: no_such(name))
    with pytest.raises(LatentLabError) as err:
        getattr(maps, method)(_blobs(n=20)[0])
    message = str(err.value)
    assert package in message and "pip install 'latentlab[projections]'" in message
    assert message.count(".") <= 2 and "\n" not in message


def test_embedding_cache_keeps_the_most_recent_maps():
    from latentlab.core.inference.maps import EmbeddingCache

    cache = EmbeddingCache(size=2)
    cache.put(("umap", 1), "a")
    cache.put(("tsne", 1), "b")
    assert cache.get(("umap", 1)) == "a"      # now the most recent
    cache.put(("umap", 2), "c")               # evicts ("tsne", 1)
    assert cache.get(("tsne", 1)) is None and cache.get(("umap", 1)) == "a" and cache.get(("umap", 2)) == "c"


def test_non_finite_or_too_few_means_are_one_sentence():
    from latentlab.core.errors import LatentLabError
    from latentlab.core.inference.maps import tsne_embedding

    with pytest.raises(LatentLabError, match="at least 3"):
        tsne_embedding(np.zeros((2, 4)))
    bad = _blobs(n=50)[0]
    bad[3, 1] = np.nan
    with pytest.raises(LatentLabError, match="not finite"):
        tsne_embedding(bad)


def test_umap_lifts_many_points_in_one_call_close_to_lifting_each(umap_map):
    """One inverse transform for all the points. UMAP's inverse is a seeded stochastic optimisation over
    all points given at once, so a batch samples other negatives than one point alone: close, not equal."""
    emb, means, _, _ = umap_map
    spread = np.linalg.norm(means - means.mean(0), axis=1).mean()
    points = emb.coords[[3, 250, 480, 650]] + 0.1
    many = emb.lift_many(points)
    assert many.shape == (4, means.shape[1]) and many.dtype == np.float32
    each = np.stack([emb.lift(p) for p in points])
    assert np.linalg.norm(many - each, axis=1).max() < 0.1 * spread
