"""Millions of shown points, aggregated off the GUI thread into a density pyramid
(core.inference.density_pyramid) that the latent view draws each frame from, and that answers the
nearest point and the points inside a selection without a pass over all of them.

A state part like those in parts.py: it holds the pyramid of the shown points in the shown plane
with the colours the view asked for, and says when a new one is ready. Below DENSITY_MIN_POINTS
nothing is aggregated: the point cloud draws every point each frame faster than a pyramid is built.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6 import QtCore

from .jobs import JobRunner
from .latent_points import LatentPoints

# From here on the per-frame pass over every point (~30 ms per million here) is what a frame costs;
# the pyramid draws any view in a few milliseconds after a build of about a second per three million.
DENSITY_MIN_POINTS = 2_000_000


# q(z) is the mean of the points' Gaussians: past this many points, an evenly strided sample of them
# estimates it, at a cost (the grid, the holes, the prior samples) that does not grow with the table.
AGGREGATE_COMPONENTS = 500_000


def sampled_plane(latent: LatentPoints):
    """(means, log-variances) in the shown plane and in full, as LatentPoints.plane() and its points and
    log-variances, of every k-th point when there are more than AGGREGATE_COMPONENTS (taken on the GUI
    thread in a few milliseconds, where a random sample of ten million costs half a second); None
    without a plane."""
    if not latent.has_plane:
        return None
    n = len(latent.points)
    if n <= AGGREGATE_COMPONENTS:
        return (*latent.plane(), latent.points, latent.logvars)
    step = -(-n // AGGREGATE_COMPONENTS)
    mu, logvar = np.ascontiguousarray(latent.points[::step]), np.ascontiguousarray(latent.logvars[::step])
    dims = list(latent.projection.dims) if mu.shape[1] > 1 else [0, 0]
    mu2, logvar2 = mu[:, dims], logvar[:, dims]
    if mu.shape[1] == 1:
        mu2[:, 1] = logvar2[:, 1] = 0.0
    return mu2, logvar2, mu, logvar


def build_density(points: np.ndarray, projection, colors: Callable, bits: int, progress=None, should_stop=None):
    """The pyramid of `points` in `projection`'s plane, coloured by colors() -> (packed ARGB (N,), lo, hi)."""
    from latentlab.core.inference.density_pyramid import build_pyramid
    from latentlab.core.inference.plane import plane_coords
    from latentlab.core.memory import trim_heap

    packed, lo, hi = colors()
    x, y = plane_coords(projection, points)
    pyramid = build_pyramid(x, y, packed, bits=bits, progress=progress, should_stop=should_stop)
    del packed, x, y
    trim_heap()

    def coords(indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, np.int64)
        if not hasattr(projection, "basis"):
            return np.asarray(projection.to2d(points))[indices].astype(np.float64)
        return np.asarray(projection.to2d(points[indices]), np.float64).reshape(-1, 2)

    pyramid.coords = coords
    pyramid.color_range = (lo, hi)
    return pyramid


class PointDensity(QtCore.QObject):
    """The density pyramid of the shown points, when there are DENSITY_MIN_POINTS of them or more."""

    ready = QtCore.Signal()   # a pyramid for the shown points, plane and colours has arrived

    def __init__(self, jobs: JobRunner, latent: LatentPoints, parent=None):
        super().__init__(parent)
        self.jobs, self.latent = jobs, latent
        self.pyramid = None
        self.bits = 11            # the finest level: 2048 cells a side (about 22 MB of pictures)
        self._asked = None        # (points, projection, colour key) of the newest request
        # connected before any view: the old pyramid is gone before a view asks for the new one
        latent.changed.connect(self._drop)
        latent.projectionChanged.connect(self._drop)

    def wanted(self) -> bool:
        lp = self.latent
        return lp.points is not None and lp.projection is not None and len(lp.points) >= DENSITY_MIN_POINTS

    def request(self, color_key, colors: Callable) -> None:
        """Aggregate the shown points with these colours unless that is done or under way."""
        lp = self.latent
        asked = (lp.points, lp.projection, color_key)
        if self._asked is not None and all(a is b or a == b for a, b in zip(asked, self._asked)):
            return
        self._asked = asked
        points, projection = lp.points, lp.projection

        def done(pyramid) -> None:
            if self._asked is asked:
                self.pyramid = lp.density = pyramid
                self.ready.emit()

        self.jobs.submit_tracked("density", f"Aggregating {len(points):,} points", build_density, points, projection,
                                 colors, self.bits, on_result=done)

    def _drop(self) -> None:
        lp = self.latent
        if self._asked is not None and (self._asked[0] is not lp.points or self._asked[1] is not lp.projection):
            self._asked = None
            self.jobs.cancel("density")
        if self._asked is None:
            self.pyramid = lp.density = None
