"""How a K-dimensional latent space is shown in 2D, and how a 2D click is lifted back to a full z.

A projection is an orthonormal basis B (K x 2): the view shows B^T z. Because B is orthonormal,
the projected prior is again N(0, I) in 2D, so the prior circles stay exact. A click p is lifted
through an anchor a as z = a + B (p - B^T a): the shown coordinates become p, everything the view
cannot see is taken from the anchor.

UMAP and t-SNE maps (further down) are not linear: they come with their own way back from 2D.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from latentlab.core.errors import Cancelled, LatentLabError

from .plane import covariance


@dataclass(frozen=True)
class Projection:
    basis: np.ndarray          # (K, 2), orthonormal columns
    kind: str = "dims"         # "dims" (a pair of coordinates) or "pca"
    dims: tuple[int, int] = (0, 1)

    @property
    def latent_dim(self) -> int:
        return self.basis.shape[0]

    def to2d(self, z: np.ndarray) -> np.ndarray:
        if self.kind == "dims" and self.latent_dim > 1:   # the product's numbers, at a third of the cost
            return np.asarray(z)[..., list(self.dims)].astype(np.float64)
        return np.asarray(z, dtype=np.float64) @ self.basis

    def lift(self, p, anchor: np.ndarray) -> np.ndarray:
        a = np.asarray(anchor, dtype=np.float64)
        return (a + self.basis @ (np.asarray(p, dtype=np.float64) - self.basis.T @ a)).astype(np.float32)

    @property
    def axis_labels(self) -> tuple[str, str]:
        if self.kind == "pca":
            return "PC 1 of the means", "PC 2 of the means"
        return f"z{self.dims[0] + 1}", f"z{self.dims[1] + 1}"


def dims_projection(k: int, i: int = 0, j: int = 1) -> Projection:
    """Show coordinates i and j (for K = 1 the second axis is empty and always zero)."""
    basis = np.zeros((k, 2))
    basis[min(i, k - 1), 0] = 1.0
    if k > 1:
        if i == j:
            raise ValueError("the two shown dimensions must differ")
        basis[j, 1] = 1.0
    return Projection(basis=basis, kind="dims", dims=(min(i, k - 1), j if k > 1 else 0))


# Past this latent size (a diffusers VAE has thousands) a full SVD of the means costs seconds to
# minutes; the two top directions come from a randomized range finder instead (Halko et al. 2011).
EXACT_PCA_MAX_K = 256


def _top2_randomized(centred: np.ndarray, oversample: int = 10, power_iters: int = 4) -> np.ndarray:
    """The two leading right singular vectors of `centred` (N, K), (K, 2); seeded, so repeatable."""
    omega = np.random.default_rng(0).standard_normal((centred.shape[1], 2 + oversample))
    q, _ = np.linalg.qr(centred @ omega)
    for _ in range(power_iters):
        q, _ = np.linalg.qr(centred.T @ q)
        q, _ = np.linalg.qr(centred @ q)
    _, _, vt = np.linalg.svd(q.T @ centred, full_matrices=False)
    return vt[:2].T.copy()


def pca_projection(means: np.ndarray) -> Projection:
    """The first two principal directions of the posterior means (no whitening, so the prior stays N(0, I))."""
    k = np.shape(means)[1]
    if k < 2 or len(means) < 2:
        return dims_projection(k)
    if k > EXACT_PCA_MAX_K:
        means = np.asarray(means, dtype=np.float64)
        basis = _top2_randomized(means - means.mean(0))
    else:   # the covariance's top eigenvectors, summed in float64 chunks: no (N, K) float64 copy of the means
        basis = np.linalg.eigh(covariance(means))[1][:, :-3:-1].copy()
    # Fix the sign so the same model always gives the same picture.
    basis *= np.sign(basis[np.abs(basis).argmax(0), [0, 1]])
    return Projection(basis=basis, kind="pca")


# --- Non-linear maps: UMAP and t-SNE of the latent means ---------------------------------------------
#
# Neither keeps the prior N(0, I) meaningful in 2D, so views draw no prior circles for them. Both are
# fitted on at most a capped random subset (their cost grows faster than linearly) and then place the
# other points: UMAP through its transform, t-SNE at the median of each point's nearest fitted
# neighbours (openTSNE's prepare_partial). A click is lifted back to a latent code by UMAP's inverse
# transform, or, for t-SNE, which has none, by taking the latent mean of the nearest shown point.

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


@dataclass(frozen=True, eq=False)
class Embedding:
    """2-D coordinates of every latent mean from a non-linear map, and how to lift a 2-D point back."""

    kind: str                  # "umap" or "tsne"
    coords: np.ndarray         # (N, 2) float32, in the order of the means
    means: np.ndarray          # (N, K) the latent means it was computed from
    fitted: np.ndarray         # indices of the means the map was fitted on (all when N <= the cap)
    model: object = None       # the fitted umap.UMAP (None for t-SNE)
    _tree: object = field(default=None, init=False, repr=False)

    def __post_init__(self):
        # Built where the map is made (a worker), not on the first click: ~1 s at a million points.
        from scipy.spatial import cKDTree

        object.__setattr__(self, "_tree", cKDTree(self.coords))

    @property
    def latent_dim(self) -> int:
        return self.means.shape[1]

    @property
    def axis_labels(self) -> tuple[str, str]:
        name = "UMAP" if self.kind == "umap" else "t-SNE"
        return f"{name} 1 of the means", f"{name} 2 of the means"

    @property
    def lift_note(self) -> str:
        """How a clicked point becomes a latent code, for the decoded view's caption."""
        if self.kind == "umap":
            return "decoded through UMAP's inverse transform"
        return "decoded from the latent mean of the nearest data point (t-SNE has no inverse)"

    def nearest(self, p, k: int = 1) -> int | np.ndarray:
        """Index of the shown point nearest to the 2-D point p (the k nearest, nearest first, for k > 1)."""
        found = self._tree.query(np.asarray(p, dtype=np.float64).reshape(2), k=min(k, len(self.coords)))[1]
        return int(found) if k == 1 else np.atleast_1d(found)

    def lift(self, p) -> np.ndarray:
        """A latent code (K,) float32 for the 2-D point p."""
        return self.lift_with_note(p)[0]

    def lift_with_note(self, p) -> tuple[np.ndarray, str]:
        """A latent code for p and how it was found (for the decoded view's caption).

        UMAP's inverse transform can miss at the rim of a cluster (it interpolates between fitted
        points); when its answer lies well outside the latent neighbourhood of the points shown around
        p, the nearest shown point's latent mean is used instead, and the note says so."""
        if self.kind == "umap":
            z = np.asarray(self.model.inverse_transform(np.asarray(p, np.float64).reshape(1, 2))[0], dtype=np.float32)
            around = self.means[self.nearest(p, k=10)]
            centre = around.mean(0)
            radius = float(np.linalg.norm(around - centre, axis=1).max())
            if np.isfinite(z).all() and np.linalg.norm(z - centre) <= 2.0 * radius + 1e-6:
                return z, self.lift_note
        return (np.asarray(self.means[self.nearest(p)], dtype=np.float32),
                "decoded from the latent mean of the nearest data point"
                + (" (t-SNE has no inverse)" if self.kind == "tsne" else " (UMAP's inverse fell outside the data here)"))


class EmbeddedProjection:
    """A UMAP or t-SNE map (core.inference.projection.Embedding) behind the face of a linear Projection.

    The means it was computed from are shown at their map coordinates. A code lifted from a click is
    shown where it was clicked; any other code (a path, an endpoint) at the place of its nearest fitted
    mean, since neither map can place a new code cheaply."""

    dims = (0, 1)
    PLACED_MAX = 256

    def __init__(self, embedding, points: np.ndarray):
        self.embedding = embedding
        self.kind = embedding.kind
        self.points = points
        self._placed: dict[bytes, tuple[float, float]] = {}

    @property
    def latent_dim(self) -> int:
        return self.embedding.latent_dim

    @property
    def axis_labels(self) -> tuple[str, str]:
        return self.embedding.axis_labels

    def covers(self, points) -> bool:
        return points is not None and (points is self.points or points is self.embedding.means)

    def to2d(self, z) -> np.ndarray:
        if self.covers(z):
            return self.embedding.coords
        z = np.asarray(z, dtype=np.float32)
        rows = z.reshape(-1, z.shape[-1])
        out = np.empty((len(rows), 2))
        fitted = self.embedding.fitted
        ref = self.embedding.means[fitted]
        for i, row in enumerate(rows):
            placed = self._placed.get(row.tobytes())
            if placed is None:
                placed = self.embedding.coords[fitted[int(np.argmin(((ref - row) ** 2).sum(1)))]]
            out[i] = placed
        return out[0] if z.ndim == 1 else out

    def lift(self, p, anchor=None) -> np.ndarray:
        return self.embedding.lift(p)

    def lift_with_note(self, p, anchor=None) -> tuple[np.ndarray, str]:
        return self.embedding.lift_with_note(p)

    def place(self, z: np.ndarray, p) -> None:
        """Remember that z was lifted from the view position p (GUI thread only)."""
        if len(self._placed) >= self.PLACED_MAX:
            self._placed.pop(next(iter(self._placed)))
        self._placed[np.asarray(z, np.float32).tobytes()] = (float(p[0]), float(p[1]))


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
