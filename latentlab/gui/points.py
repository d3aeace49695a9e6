"""Drawing many latent points fast.

pyqtgraph's ScatterPlotItem builds per-point Python state and takes hundreds of milliseconds to
set 70,000 points; QPainter.drawPoints with a wide pen is not much better. This item keeps the
points as numpy arrays and, at paint time, rasterises them straight into a pixel buffer the size
of the device with a few vectorised stores, then draws that buffer as one image. The cost of an
update is a few milliseconds whatever the zoom, and nothing but two arrays is kept per point.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

# Tableau's 10 categorical colours: distinct for the common 10-class datasets.
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
PRIOR_MASS = {r: 1.0 - math.exp(-r * r / 2.0) for r in (1, 2, 3)}  # share of N(0, I) mass inside radius r in 2D


def label_colors(n: int) -> list[QtGui.QColor]:
    if n <= len(TAB10):
        return [QtGui.QColor(c) for c in TAB10[:n]]
    return [pg.intColor(i, hues=n, values=1, maxValue=230) for i in range(n)]


def argb(colors: list[QtGui.QColor]) -> np.ndarray:
    return np.array([c.rgba() for c in colors], dtype=np.uint32)


def colormap_argb(values: np.ndarray, name: str = "viridis") -> tuple[np.ndarray, float, float]:
    """Continuous values -> packed ARGB colours, with the range used (robust 1..99 percentiles)."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    lo, hi = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    if hi <= lo:
        hi = lo + 1.0
    lut = pg.colormap.get(name).getLookupTable(0.0, 1.0, 256, alpha=False).astype(np.uint32)
    idx = np.clip(((v - lo) / (hi - lo) * 255).round(), 0, 255).astype(np.intp)
    rgb = lut[idx]
    return (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32), float(lo), float(hi)


class PointCloudItem(pg.GraphicsObject):
    """Points with one packed ARGB colour each, drawn as small squares of `size` device pixels."""

    def __init__(self, size: int = 3):
        super().__init__()
        self._x = np.zeros(0, np.float64)
        self._y = np.zeros(0, np.float64)
        self._c = np.zeros(0, np.uint32)
        self._order = np.zeros(0, np.intp)
        self._rect = QtCore.QRectF()
        self.size = size
        self._cache_key = None
        self._cache: QtGui.QImage | None = None

    def setData(self, pos: np.ndarray, colors: np.ndarray) -> None:
        pos = np.asarray(pos, dtype=np.float64)
        n = len(pos)
        # A fixed shuffle of drawing order keeps any one class from systematically covering another.
        if len(self._order) != n:
            self._order = np.random.default_rng(n).permutation(n)
        order = self._order
        self._x = np.ascontiguousarray(pos[order, 0])
        self._y = np.ascontiguousarray(pos[order, 1])
        self._c = np.ascontiguousarray(np.asarray(colors, dtype=np.uint32)[order])
        self._cache_key = None
        self.prepareGeometryChange()
        if n:
            x0, x1 = float(self._x.min()), float(self._x.max())
            y0, y1 = float(self._y.min()), float(self._y.max())
            self._rect = QtCore.QRectF(x0, y0, max(x1 - x0, 1e-9), max(y1 - y0, 1e-9))
        else:
            self._rect = QtCore.QRectF()
        self.informViewBoundsChanged()
        self.update()

    def count(self) -> int:
        return len(self._x)

    def boundingRect(self) -> QtCore.QRectF:
        return self._rect

    def dataBounds(self, ax, frac=1.0, orthoRange=None):
        if not len(self._x):
            return None, None
        v = self._x if ax == 0 else self._y
        return float(v.min()), float(v.max())

    def paint(self, painter: QtGui.QPainter, option=None, widget=None) -> None:
        if not len(self._x):
            return
        device = painter.device()
        w, h = device.width(), device.height()
        if w <= 0 or h <= 0:
            return
        t = painter.transform()
        key = (w, h, t.m11(), t.m12(), t.m21(), t.m22(), t.m31(), t.m32(), self.size)
        if key != self._cache_key:
            # Marker moves and hover cards repaint the view without moving it: reuse the raster.
            self._cache = self._rasterise(t, w, h)
            self._cache_key = key
        painter.save()
        painter.resetTransform()
        painter.drawImage(0, 0, self._cache)
        painter.restore()

    def _rasterise(self, t: QtGui.QTransform, w: int, h: int) -> QtGui.QImage:
        px = (t.m11() * self._x + t.m21() * self._y + t.m31()).astype(np.int32)
        py = (t.m12() * self._x + t.m22() * self._y + t.m32()).astype(np.int32)
        s = max(1, int(self.size))
        half = s // 2
        keep = (px >= half) & (py >= half) & (px < w - (s - half)) & (py < h - (s - half))
        flat = py[keep] * w + px[keep]
        col = self._c[keep]
        buf = np.zeros(h * w, dtype=np.uint32)
        for dy in range(-half, s - half):
            for dx in range(-half, s - half):
                buf[flat + (dy * w + dx)] = col
        self._buf = buf  # the image below borrows this memory
        # Opaque colours are the same premultiplied or not, and the premultiplied format draws faster.
        return QtGui.QImage(buf.data, w, h, 4 * w, QtGui.QImage.Format.Format_ARGB32_Premultiplied)

    def nearest(self, x: float, y: float) -> int | None:
        """Index (in setData order) of the point nearest to (x, y), or None when there are none."""
        if not len(self._x):
            return None
        return int(self._order[np.argmin((self._x - x) ** 2 + (self._y - y) ** 2)])


class PriorCircles(pg.GraphicsObject):
    """Circles of radius 1, 2, 3 around the origin, each labelled with the prior mass inside it."""

    def __init__(self):
        super().__init__()
        angles = np.linspace(0.0, 2 * np.pi, 181)
        self._polys = [QtGui.QPolygonF([QtCore.QPointF(r * np.cos(a), r * np.sin(a)) for a in angles])
                       for r in PRIOR_MASS]
        self._labels = []
        for r, mass in PRIOR_MASS.items():
            text = pg.TextItem(f"{100 * mass:.0f}%", color=(90, 90, 90), anchor=(0, 1))
            text.setParentItem(self)
            text.setPos(r / math.sqrt(2), r / math.sqrt(2))
            self._labels.append(text)

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(-3, -3, 6, 6)

    def paint(self, painter: QtGui.QPainter, option=None, widget=None) -> None:
        # Polylines of 180 segments: antialiased dashed ellipses cost ~2 ms each per frame.
        pen = QtGui.QPen(QtGui.QColor(80, 80, 80, 200))
        pen.setCosmetic(True)
        pen.setWidthF(1.2)
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
        painter.setPen(pen)
        for poly in self._polys:
            painter.drawPolyline(poly)
