"""LatentPoints: the encoded means the latent view shows, how they are projected to 2-D, their
statistics and the aggregate posterior q(z) over the shown plane; a state part like those in parts.py."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore

from latentlab.core.inference.projection import EmbeddedProjection

from .parts import MANY_DIMS

NONLINEAR = ("umap", "tsne")
METHODS = ("pair", "pca", *NONLINEAR, "vector")   # "vector": the plane of an attribute vector (attribute_vectors.py)
# Per-point values to colour by that cost a pass of the decoder (or a sweep over every point): computed
# the first time a view asks for them, not on every load.
LAZY_STATS = ("reconstruction error", "KL per point")


class LatentPoints(QtCore.QObject):
    """The encoded points the latent view shows, how they are projected to 2D, their statistics and
    the aggregate posterior q(z) over the shown plane."""

    changed = QtCore.Signal()
    projectionChanged = QtCore.Signal()
    aggregateChanged = QtCore.Signal()    # the q(z) summary, the overlay switch or prior samples
    aggregateWanted = QtCore.Signal()     # the overlay or the summary started or stopped being shown
    statsChanged = QtCore.Signal()        # a per-point statistic arrived (see LAZY_STATS)
    priorChanged = QtCore.Signal()        # the declared prior's contours on the shown pair (prior_contours)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.points: np.ndarray | None = None    # (n, K) posterior means
        self.rows: np.ndarray | None = None      # their rows in data.x_train; None: all rows, in order
        self.logvars: np.ndarray | None = None   # (n, K), after a full encode only
        self.stats: dict[str, np.ndarray] = {}   # per-point values to colour by, after a full encode
        self.dim_stats: tuple | None = None      # (KL per dimension, active mask) of that encode
        self.projection = None                   # core.inference.projection.Projection or an EmbeddedProjection
        self.method = "pair"                     # one of METHODS: what the view shows for K > 2
        self.prior_contours: dict | None = None
        self.no_kl = False   # a deterministic autoencoder's points have no KL to colour by
        self.aggregate: dict | None = None       # q(z) density, holes and summary over the shown plane
        self.show_overlay = False                # draw that density on the latent view
        self.summary_shown = False               # a view shows the q(z) summary numbers
        self.prior_samples: dict | None = None   # prior draws, which fall in holes, their decodes
        self.preview = None                      # core.files.preview.Preview: shown until the model's own points arrive
        self.density = None                      # the points' DensityPyramid in the shown plane (millions of them)
        self.known_pca = None                    # (points, their PCA Projection) worked out off the GUI thread
        self.colour_hint = ""                    # what a newly opened model's points are best coloured by, once
        self.vector_projection = None            # core.inference.attributes.VectorProjection, for method "vector"

    @property
    def full(self) -> bool:
        """Every training image is encoded, with log-variances (not a live training frame)."""
        return self.points is not None and self.logvars is not None and self.rows is None

    @property
    def use_pca(self) -> bool:
        return self.method == "pca"

    @property
    def nonlinear(self) -> bool:
        """A UMAP or t-SNE map is asked for (it may still be on its way)."""
        return self.method in NONLINEAR

    def set_points(self, mu: np.ndarray, rows: np.ndarray | None, logvars=None, stats=None, dim_stats=None) -> None:
        k_changed = self.projection is None or self.projection.latent_dim != mu.shape[1]
        stale_map = isinstance(self.projection, EmbeddedProjection)
        self.points, self.rows, self.logvars = mu, rows, logvars
        self.preview = None
        self.stats = stats or {}
        self.dim_stats = dim_stats
        self._drop_derived()
        if k_changed or stale_map or (self.method != "pair" and rows is None):
            self.set_projection()
        self.changed.emit()

    def _drop_derived(self) -> None:
        """q(z) and the prior samples were made from the points and plane shown until now: drawn
        over new ones they would be stale, so they go (q(z) is recomputed while it is wanted)."""
        if self.aggregate is not None or self.prior_samples is not None:
            self.aggregate = self.prior_samples = None
            self.aggregateChanged.emit()

    def clear(self) -> None:
        """No points: the model is open without data."""
        self.points = self.rows = self.logvars = self.dim_stats = self.preview = None
        self.stats = {}
        self._drop_derived()
        self.changed.emit()

    def set_preview(self, preview) -> None:
        """A checkpoint's stored means (core.files.preview.Preview), shown while its model loads, in the plane
        its own points will open on."""
        from latentlab.core.inference.projection import dims_projection, pca_projection

        self.preview, k = preview, preview.means.shape[1]
        self.projection = pca_projection(preview.means) if k > MANY_DIMS else dims_projection(k, 0, 1 if k > 1 else 0)
        self.projectionChanged.emit()

    def set_projection(self, pair: tuple[int, int] | None = None, pca: bool | None = None) -> None:
        """Show a pair of coordinates or the PCA plane; for a UMAP or t-SNE method, its map once it
        covers these points (set_embedding) and the PCA plane meanwhile."""
        from latentlab.core.inference.projection import dims_projection, pca_projection

        if self.points is None:
            return
        k = self.points.shape[1]
        if pca is not None:
            self.method = "pca" if pca else "pair"
        if isinstance(self.projection, EmbeddedProjection) and self.nonlinear and \
                self.projection.kind == self.method and self.projection.covers(self.points):
            return
        vector = self.vector_projection
        if self.method == "vector" and vector is not None and vector.latent_dim == k:
            self.projection = vector
        elif self.method != "pair" and k > 2:
            known = self.known_pca   # computed off the GUI thread for these points, when there are millions
            self.projection = known[1] if known is not None and known[0] is self.points and known[1] is not None \
                else pca_projection(self.points)
        else:
            keep = self.projection is not None and self.projection.latent_dim == k and self.projection.kind == "dims"
            i, j = pair if pair is not None else (self.projection.dims if keep else (0, 1))
            self.projection = dims_projection(k, i, j if k > 1 else 0)
        self._drop_derived()
        self.projectionChanged.emit()

    def set_method(self, method: str) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown projection {method!r}")
        self.method = method
        self.set_projection()

    def set_vector_projection(self, projection) -> None:
        """The plane of the current attribute vector (None: there is none); shown when the method is "vector"."""
        self.vector_projection = projection
        if self.method == "vector":
            self.set_projection()

    def set_embedding(self, embedding) -> bool:
        """Show a UMAP or t-SNE map of the current points; False (and nothing changes) if it is of
        other points or another method than the one asked for."""
        if self.points is None or embedding.kind != self.method or embedding.means.shape != self.points.shape:
            return False
        self.projection = EmbeddedProjection(embedding, self.points)
        self._drop_derived()
        self.projectionChanged.emit()
        return True

    @property
    def shows_map(self) -> bool:
        return isinstance(self.projection, EmbeddedProjection)

    @property
    def has_plane(self) -> bool:
        """plane() is not None, without making its arrays."""
        return self.full and self.projection is not None and self.projection.kind == "dims"

    def plane(self):
        """Means and log-variances in the shown plane; None unless it is a pair of coordinates of a full encode."""
        if not self.has_plane:
            return None
        if self.points.shape[1] == 1:
            zeros = np.zeros(len(self.points))
            return np.c_[self.points[:, 0], zeros], np.c_[self.logvars[:, 0], zeros]
        i, j = self.projection.dims
        return self.points[:, [i, j]], self.logvars[:, [i, j]]

    def set_prior_contours(self, contours: dict | None) -> None:
        """None: N(0, I), drawn as circles; else {"lines": [(n, 2) arrays], "masses": [...]} of a declared prior."""
        self.prior_contours = contours
        self.priorChanged.emit()

    def set_aggregate(self, aggregate: dict | None) -> None:
        self.aggregate = aggregate
        self.aggregateChanged.emit()

    @property
    def wants_aggregate(self) -> bool:
        """q(z) is shown somewhere: it is kept current (and costs nothing while it is not)."""
        return self.show_overlay or self.summary_shown

    def set_show_overlay(self, on: bool) -> None:
        self.show_overlay = on
        self.aggregateChanged.emit()
        self.aggregateWanted.emit()

    def set_summary_shown(self, shown: bool) -> None:
        if shown != self.summary_shown:
            self.summary_shown = shown
            self.aggregateWanted.emit()

    def set_prior_samples(self, samples: dict | None) -> None:
        self.prior_samples = samples
        self.aggregateChanged.emit()

    def row(self, i: int) -> int:
        """The training-set row of shown point i."""
        return i if self.rows is None else int(self.rows[i])

    def rows_of(self, shown: np.ndarray) -> np.ndarray:
        """The training-set rows of shown points (indices into points)."""
        return shown if self.rows is None else np.asarray(self.rows)[shown]

    def shown_of(self, rows: np.ndarray) -> np.ndarray:
        """Indices into points of those training-set rows that are shown (ascending rows in, ascending out)."""
        return rows[rows < len(self.points)] if self.rows is None else np.flatnonzero(np.isin(self.rows, rows))

    def nearest(self, u: float, v: float) -> int | None:
        if self.points is None or self.projection is None or not len(self.points):
            return None
        if self.density is not None:
            return self.density.nearest(u, v)
        pos = self.projection.to2d(self.points)
        return int(np.argmin((pos[:, 0] - u) ** 2 + (pos[:, 1] - v) ** 2))

    def labels(self, data) -> np.ndarray | None:
        if data is None or self.points is None:
            return None
        return data.y_train if self.rows is None else data.y_train[self.rows]

    def image(self, i: int, data) -> np.ndarray | None:
        return None if data is None or not getattr(data, "has_images", True) else data.x_train[self.row(i)]

    def color_options(self, data) -> list[str]:
        """What points can be coloured by besides their label."""
        factors = [n for n in (data.factors_train or {}) if n != "shape"] if data is not None else []
        lazy = [n for n in LAZY_STATS if self.full and n not in self.stats and not (self.no_kl and n == "KL per point")
                and (n != "reconstruction error" or getattr(data, "has_images", True))]   # it decodes the images
        return factors + list(self.stats) + lazy

    def missing_stat(self, name: str) -> bool:
        """`name` is a per-point statistic that is not computed yet for these points."""
        return name in LAZY_STATS and self.full and name not in self.stats

    def set_stat(self, name: str, values: np.ndarray, points: np.ndarray) -> None:
        """A per-point statistic computed for `points` (dropped if the points changed meanwhile)."""
        if points is self.points and len(values) == len(points):
            self.stats[name] = values
            self.statsChanged.emit()

    def values(self, name: str, data) -> np.ndarray | None:
        """A continuous per-point value (a ground-truth factor, or a statistic of the full encode)."""
        if self.points is None or data is None:
            return None
        if name in self.stats:
            return self.stats[name]
        factors = data.factors_train or {}
        if name not in factors:
            return None
        return factors[name] if self.rows is None else factors[name][self.rows]

    def dimension_stats(self, k: int, history: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        """KL per dimension (nats, averaged over the data) and which dimensions are active, from the
        newest full encode, falling back to the training history while a run is going."""
        from latentlab.core.inference.analysis import ACTIVE_THRESHOLD, active_units

        if self.dim_stats is not None and len(self.dim_stats[0]) == k:
            return self.dim_stats
        kl = np.zeros(k)
        if history and len(history[-1].get("kl_per_dim", [])) == k:
            kl = np.asarray(history[-1]["kl_per_dim"], dtype=float)
        pts = self.points
        # Live frames come many times a second: a strided 5,000 points estimate the variance well enough.
        live = pts[:: max(1, len(pts) // 5000)] if pts is not None and pts.shape[1] == k else None
        active = active_units(live) if live is not None else kl > ACTIVE_THRESHOLD
        return kl, active
