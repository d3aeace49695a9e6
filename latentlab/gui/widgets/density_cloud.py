"""The point cloud for millions of points: each frame drawn from their density pyramid
(core.inference.density_pyramid), not from every point.

`DensityCloudItem` is the point cloud (point_cloud.PointCloudItem) with one more source: given a
pyramid it draws, at each frame, the part of the level whose cells are about one device pixel wide,
scaled onto the view (one drawImage, whatever the number of points); once the view holds fewer than
POINTS_MAX points it draws them one by one, found through the pyramid's index of cell runs. Without
a pyramid it is the point cloud itself. `DensityLayer` asks the session for the pyramid of the shown
points whenever the latent view would have drawn them all, and hands it to the item when it arrives.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore, QtGui

from .palette import argb, colormap_argb, label_colors
from .point_cloud import PointCloudItem

POINTS_MAX = 400_000   # a view holding fewer points draws them one by one (~10 ms per 100,000 here)


class DensityCloudItem(PointCloudItem):
    def __init__(self, size: int = 3):
        super().__init__(size)
        self.pyramid = None
        self.mode = ""                          # of the last frame: "points", "level N", or "" (the plain cloud)
        self.drawn_points = 0                   # points the last frame drew one by one
        self._levels: list[QtGui.QImage] = []
        self._visible = PointCloudItem(size)    # the points in view, at deep zoom (never in a scene)
        self._far = PointCloudItem(size)        # the pyramid's few points outside its grid
        self._held = None                       # the region whose points _visible holds

    def setData(self, pos: np.ndarray, colors: np.ndarray) -> None:
        self.pyramid, self._levels, self._held = None, [], None
        super().setData(pos, colors)

    def set_pyramid(self, pyramid) -> None:
        """Draw from `pyramid` (core.inference.density_pyramid.DensityPyramid) from now on."""
        super().setData(np.zeros((0, 2), np.float32), np.zeros(0, np.uint32))
        self.pyramid, self._held = pyramid, None
        fmt = QtGui.QImage.Format.Format_ARGB32_Premultiplied
        # each QImage borrows its picture's memory, which the pyramid keeps alive
        self._levels = [QtGui.QImage(a.data, a.shape[1], a.shape[0], 4 * a.shape[1], fmt) for a in pyramid.images]
        self._far.setData(pyramid.far_xy, pyramid.far_colors)
        self.prepareGeometryChange()
        r = QtCore.QRectF(pyramid.x0, pyramid.y0, pyramid.span, pyramid.span)
        self._rect = r.united(self._far.boundingRect()) if self._far.count() else r
        self.informViewBoundsChanged()
        self.update()

    def count(self) -> int:
        return self.pyramid.total if self.pyramid is not None else super().count()

    def nearest(self, x: float, y: float) -> int | None:
        return self.pyramid.nearest(x, y) if self.pyramid is not None else super().nearest(x, y)

    def position(self, i: int) -> tuple[float, float]:
        if self.pyramid is None:
            return super().position(i)
        x, y = self.pyramid.point_positions(np.array([i]))[0]
        return float(x), float(y)

    def positions(self, indices: np.ndarray) -> np.ndarray:
        return self.pyramid.point_positions(indices) if self.pyramid is not None else super().positions(indices)

    def extent(self) -> tuple[float, float] | None:
        """The span of the pyramid's grid (all points but the farthest few), for fitting the view."""
        p = self.pyramid
        return None if p is None else (min(p.x0, p.y0), max(p.x0, p.y0) + p.span)

    def paint(self, painter: QtGui.QPainter, option=None, widget=None) -> None:
        p = self.pyramid
        if p is None:
            self.mode = ""
            return super().paint(painter, option, widget)
        device = painter.device()
        w, h = device.width(), device.height()
        t = painter.transform()
        if w <= 0 or h <= 0 or t.m12() or t.m21() or not t.m11() or not t.m22():
            return   # the latent view is never rotated
        view = t.inverted()[0].mapRect(QtCore.QRectF(0, 0, w, h))
        margin = (self.size + 2) / abs(t.m11())
        x_lo, x_hi, y_lo, y_hi = view.left() - margin, view.right() + margin, view.top() - margin, view.bottom() + margin
        painter.save()
        painter.resetTransform()
        if p.count_in(x_lo, x_hi, y_lo, y_hi) <= POINTS_MAX:
            held = self._held
            if held is None or not (held[0] <= x_lo and x_hi <= held[1] and held[2] <= y_lo and y_hi <= held[3]):
                # the points of a region an eighth wider on each side: the next frames of a pan reuse them
                gx, gy = (x_hi - x_lo) / 8, (y_hi - y_lo) / 8
                held = self._held = (x_lo - gx, x_hi + gx, y_lo - gy, y_hi + gy)
                s = p.sorted_in(*held)
                xs, ys = p.sorted_xy(s)
                self._visible.setData(np.c_[xs, ys], p.colors[s])
            image, at = self._visible.raster(t, w, h)
            self.mode, self.drawn_points = "points", self._visible.count()
        else:
            self._draw_level(painter, t, view)
            image, at = self._far.raster(t, w, h) if self._far.count() else (None, None)
        if image is not None:
            painter.drawImage(at, image)
        painter.restore()

    def _draw_level(self, painter: QtGui.QPainter, t: QtGui.QTransform, view: QtCore.QRectF) -> None:
        """The level whose cells are nearest one device pixel wide, the part of it in view, scaled."""
        p = self.pyramid
        level = int(np.clip(round(math.log2(max(abs(t.m11()) * p.span, 1.0))), 0, p.bits))
        self.mode = f"level {level}"
        n = 1 << level
        cell = p.span / n

        def cells(lo: float, hi: float) -> tuple[int, int]:
            return (int(np.clip(math.floor(lo / cell) - 1, 0, n)), int(np.clip(math.ceil(hi / cell) + 1, 0, n)))

        c0, c1 = cells(view.left() - p.x0, view.right() - p.x0)
        r0, r1 = cells(p.y0 + p.span - view.bottom(), p.y0 + p.span - view.top())   # image rows run downwards
        if c1 <= c0 or r1 <= r0:
            return
        target = t.mapRect(QtCore.QRectF(p.x0 + c0 * cell, p.y0 + p.span - r1 * cell, (c1 - c0) * cell, (r1 - r0) * cell))
        image = self._levels[level]
        if t.m22() > 0:   # y grows downwards on screen: the picture (top row = largest y) upside down
            image, (r0, r1) = image.mirrored(False, True), (n - r1, n - r0)
        painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawImage(target, image, QtCore.QRectF(c0, r0, c1 - c0, r1 - r0))


class DensityLayer:
    """Asks for the density pyramid of the shown points when there are millions of them, and puts
    it on the cloud (the colour range on the colour bar through `show_colorbar(lo, hi)`, then `arrived()`,
    where the view fits itself to new points)."""

    def __init__(self, cloud: DensityCloudItem, session, show_colorbar, arrived=lambda: None):
        self.cloud, self.session, self.show_colorbar, self.arrived = cloud, session, show_colorbar, arrived
        self.density = session.density
        self.density.ready.connect(self._on_ready)

    def wanted(self) -> bool:
        return self.density.wanted()

    def refresh(self, color_by: str) -> None:
        """Ask for the shown points coloured by `color_by`; until it arrives the cloud keeps a pyramid of
        the same points in the same plane (other colours), or shows nothing."""
        lp, data = self.session.latent, self.session.model_data.data
        values = lp.values(color_by, data) if color_by != "label" and data is not None else None
        if values is None and lp.missing_stat(color_by):
            self.session.analyses.request_stat(color_by)   # label colours until it arrives
        if values is not None:
            key, colors = ("values", color_by, id(values)), lambda: colormap_argb(values)
        else:
            labels = lp.labels(data)
            palette = argb(label_colors(len(data.label_names) if data is not None else 1))
            key, colors = ("label", len(palette)), lambda: (palette[labels] if labels is not None
                                                            else np.full(len(lp.points), palette[0], np.uint32), None, None)
        self.density.request(key, colors)
        if self.density.pyramid is None and self.cloud.pyramid is not None:
            self.cloud.setData(np.zeros((0, 2), np.float32), np.zeros(0, np.uint32))
        elif self.density.pyramid is not None and self.cloud.pyramid is not self.density.pyramid:
            self._on_ready()

    def _on_ready(self) -> None:
        pyramid = self.density.pyramid
        if pyramid is not None and self.wanted():
            self.cloud.set_pyramid(pyramid)
            self.show_colorbar(*pyramid.color_range)
            self.arrived()
