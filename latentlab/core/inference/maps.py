"""UMAP and t-SNE maps of the latent means (core.inference.projection.Embedding), from the optional
packages of the `projections` extra, with progress and a stop between steps.

Both are fitted on at most a capped random subset (their cost grows faster than linearly) and then
place the other points: UMAP through its transform, t-SNE at the median of each point's nearest
fitted neighbours (openTSNE's prepare_partial).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from latentlab.core.errors import Cancelled, LatentLabError

from .projection import Embedding

UMAP_FIT_CAP = 20_000
TSNE_FIT_CAP = 10_000
_PLACE_CHUNK = 20_000
INSTALL_HINT = "pip install 'latentlab[projections]'"


_PACKAGES = {"umap": ("umap", "umap-learn", "The UMAP projection"), "tsne": ("openTSNE", "openTSNE", "The t-SNE projection")}


def _missing(what: str, package: str) -> str:
    return f"{what} needs the {package} package, which is not installed: {INSTALL_HINT}."


def _require(module: str, package: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise LatentLabError(_missing(what, package)) from None


def unavailable(method: str) -> str | None:
    """The sentence saying how to install what a "umap" or "tsne" map needs, or None when it is
    installed (found without importing it: umap-learn takes seconds to import)."""
    import importlib.util

    if method not in _PACKAGES:
        return None
    module, package, what = _PACKAGES[method]
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    return None if found else _missing(what, package)


class _Steps:
    """Progress over phases: phase(i) of weights w maps its own 0..1 onto its slice of the total."""

    def __init__(self, progress, should_stop, weights):
        self.progress, self.should_stop = progress, should_stop or (lambda: False)
        self.edges = np.concatenate([[0.0], np.cumsum(weights) / np.sum(weights)])

    def report(self, phase: int, fraction: float) -> None:
        if self.should_stop():
            raise Cancelled("The projection was stopped.")
        if self.progress is not None:
            lo, hi = self.edges[phase], self.edges[phase + 1]
            self.progress(float(lo + (hi - lo) * min(max(fraction, 0.0), 1.0)))


def _plan(means, cap: int, seed: int, progress, should_stop, fit_cost: float):
    """The checked means, the indices to fit on (at most cap, a seeded random subset), the rest, and
    progress over the two phases (a fitted point costs about fit_cost placed ones)."""
    means = _checked_means(means)
    n = len(means)
    fit = np.arange(n) if n <= cap else np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))
    rest = np.setdiff1d(np.arange(n), fit)
    steps = _Steps(progress, should_stop, [len(fit) * fit_cost, len(rest)])
    steps.report(0, 0.0)
    return means, fit, rest, steps


def _checked_means(means) -> np.ndarray:
    means = np.asarray(means, dtype=np.float32)
    if means.ndim != 2 or len(means) < 3:
        raise LatentLabError("A UMAP or t-SNE map needs at least 3 latent means.")
    if not np.isfinite(means).all():
        raise LatentLabError("Some latent means are not finite numbers, so no map can be drawn.")
    return means


def umap_embedding(means, *, seed: int = 0, cap: int = UMAP_FIT_CAP,
                   progress: Callable[[float], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, n_neighbors: int = 15) -> Embedding:
    """UMAP of the latent means (umap-learn), fitted on at most `cap` of them, the rest transformed.

    progress(fraction) is called along the way; should_stop() is polled between epochs of the fit and
    between chunks of the transform, and raises Cancelled when it answers True."""
    umap = _require("umap", "umap-learn", "The UMAP projection")
    means, fit, rest, steps = _plan(means, cap, seed, progress, should_stop, fit_cost=3)
    ticker = _EpochTicker(lambda f: steps.report(0, f))
    model = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, len(fit) - 1), random_state=seed, n_jobs=1,
                      tqdm_kwds={"disable": False, "file": ticker,
                                 "bar_format": "{n} {total}\n", "mininterval": 0.2})
    coords = np.empty((len(means), 2), np.float32)
    try:
        coords[fit] = model.fit_transform(means[fit])
        for i in range(0, len(rest), _PLACE_CHUNK):
            chunk = rest[i:i + _PLACE_CHUNK]
            # transform runs epochs of its own: they count within this chunk's share
            size = len(chunk)
            ticker.report = lambda f, i=i, m=size: steps.report(1, (i + f * m) / len(rest))
            ticker.report(0.0)
            coords[chunk] = model.transform(means[chunk])
    except Cancelled:
        _drop_tqdm_lock()
        raise
    steps.report(1, 1.0)
    return Embedding("umap", coords, means, fit, model)


def _drop_tqdm_lock() -> None:
    """tqdm's refresh acquires its class-wide lock and releases it without try/finally, so the stop
    raised from our file's write leaves it held once by this thread: every later bar on another
    thread (the next map, on another worker) would wait for it forever. Released here, on the thread
    that holds it; when the stop came while tqdm held it in a `with` block, there is nothing to release."""
    from tqdm import auto

    try:
        auto.tqdm.get_lock().release()
    except (RuntimeError, AssertionError):
        pass


class _EpochTicker:
    """A file for umap-learn's tqdm bar over the layout epochs: reads "n total" lines into a fraction.
    Raising from write (on a stop request) ends the fit between two epochs."""

    def __init__(self, report):
        self.report = report

    def write(self, text: str) -> None:
        parts = text.strip().split()
        if len(parts) == 2 and all(p.isdigit() for p in parts) and int(parts[1]) > 0:
            self.report(int(parts[0]) / int(parts[1]))

    def flush(self) -> None:
        pass


def tsne_embedding(means, *, seed: int = 0, cap: int = TSNE_FIT_CAP,
                   progress: Callable[[float], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, perplexity: float = 30.0) -> Embedding:
    """t-SNE of the latent means (openTSNE), fitted on at most `cap` of them; the others are placed at
    the median of their nearest fitted neighbours. should_stop() is polled every 25 iterations."""
    open_tsne = _require("openTSNE", "openTSNE", "The t-SNE projection")
    means, fit, rest, steps = _plan(means, cap, seed, progress, should_stop, fit_cost=4)
    every, total = 25, 250 + 500   # openTSNE's early exaggeration and main phases
    calls = [0]
    stopped = [False]

    def callback(iteration, error, embedding):
        calls[0] += 1
        try:
            steps.report(0, calls[0] * every / total)
        except Cancelled:
            stopped[0] = True
            return True   # openTSNE ends the optimisation when a callback says so
        return False

    tsne = open_tsne.TSNE(n_components=2, perplexity=min(perplexity, (len(fit) - 1) / 3), random_state=seed,
                          callbacks=callback, callbacks_every_iters=every, n_jobs=1, verbose=False)
    embedding = tsne.fit(means[fit])
    if stopped[0]:
        raise Cancelled("The projection was stopped.")
    coords = np.empty((len(means), 2), np.float32)
    coords[fit] = np.asarray(embedding)
    for i in range(0, len(rest), _PLACE_CHUNK):
        steps.report(1, i / len(rest))
        chunk = rest[i:i + _PLACE_CHUNK]
        coords[chunk] = np.asarray(embedding.prepare_partial(means[chunk], initialization="median",
                                                             k=min(25, len(fit))))
    steps.report(1, 1.0)
    return Embedding("tsne", coords, means, fit)


class EmbeddingCache:
    """The last few maps, keyed by (method, weights version, seed, number of points): switching between
    projections, or back to a weights version already seen, reuses the map instead of refitting it."""

    def __init__(self, size: int = 4):
        self.size = size
        self._items: dict = {}

    def get(self, key):
        item = self._items.pop(key, None)
        if item is not None:
            self._items[key] = item   # most recently used last
        return item

    def put(self, key, embedding: Embedding) -> None:
        self._items.pop(key, None)
        self._items[key] = embedding
        while len(self._items) > self.size:
            self._items.pop(next(iter(self._items)))
