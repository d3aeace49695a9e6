"""Drawing many latent points fast, with their density visible.

pyqtgraph's ScatterPlotItem builds per-point Python state and takes hundreds of milliseconds to
set 70,000 points; QPainter.drawPoints with a wide pen is not much better. This item keeps the
points as numpy arrays and, at paint time, accumulates them per device pixel (a count and a colour
sum, one vectorised pass), then draws the shaded result as one image. Overplotting therefore shows
as density instead of as the last colour drawn, and the cost stays a few tens of milliseconds for a
million points whatever the zoom.
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
    """Points with one packed ARGB colour each, shaded by how many fall on each pixel.

    Each point is a `size`×`size` square stamp in device pixels. Where stamps overlap, the pixel shows
    the mean colour of the points on it with an opacity (and darkening) that grows with the log of their
    count, so the density of a million points stays visible; a lone point when nothing is denser is
    opaque and crisp. Colours are treated as opaque (their alpha byte is ignored).

    How: one weighted np.bincount over the flattened pixel index of every point, with each point's weight
    packing a count of one and its 5-bit red, green and blue into disjoint bit fields of a float64 (exact
    up to 2**53), gives per-pixel count and colour sums in one pass; a separable box sum then turns the
    points into stamps. Pixels with more than PACKED_MAX stamps would overflow the fields, and then the
    exact per-channel sums are used instead (slower, only for very concentrated views).
    """

    FIELD = 14                      # bits per colour-sum field: 31 * 511 < 2**14
    PACKED_MAX = 511                # stamps per pixel the packed fields hold exactly
    LONE_ALPHA = 0.5                # opacity of a single point when much denser pixels are in view
    DARKEN = 0.4                    # how much the densest pixels darken their colour
    FAR = np.float32(1e30)          # where points with a NaN or infinite coordinate are put

    def __init__(self, size: int = 3):
        super().__init__()
        self._x = np.zeros(0, np.float32)
        self._y = np.zeros(0, np.float32)
        self._c = np.zeros(0, np.uint32)
        self._weights = np.zeros(0, np.float64)
        self._rect = QtCore.QRectF()
        self.size = size
        self._cache_key = None
        self._cache: QtGui.QImage | None = None
        self._scratch = None
        self._grids = None
        self.stats: dict = {}       # of the last raster: counts per pixel (max, reference), exact path used

    def setData(self, pos: np.ndarray, colors: np.ndarray) -> None:
        pos = np.asarray(pos)
        n = len(pos)
        colors = np.asarray(colors, dtype=np.uint32)
        if len(colors) != n:
            raise ValueError(f"{n} positions but {len(colors)} colours")
        self._x = np.array(pos[:, 0], dtype=np.float32)
        self._y = np.array(pos[:, 1], dtype=np.float32)
        finite = np.isfinite(self._x) & np.isfinite(self._y)
        if not finite.all():
            # Parked far beyond any view: drawn nowhere, never the nearest point, not in the bounds.
            self._x[~finite] = self._y[~finite] = self.FAR
        # Live training updates move the points but keep their colours: reuse the packed weights then.
        if len(self._c) != n or not np.array_equal(self._c, colors):
            self._c = colors.copy()
            self._weights = self._pack(colors)
        self._cache_key = None
        self.prepareGeometryChange()
        if finite.any():
            xs, ys = (self._x, self._y) if finite.all() else (self._x[finite], self._y[finite])
            x0, x1 = float(xs.min()), float(xs.max())
            y0, y1 = float(ys.min()), float(ys.max())
            self._rect = QtCore.QRectF(x0, y0, max(x1 - x0, 1e-9), max(y1 - y0, 1e-9))
        else:
            self._rect = QtCore.QRectF()
        self.informViewBoundsChanged()
        self.update()

    @classmethod
    def _pack(cls, colors: np.ndarray) -> np.ndarray:
        f = cls.FIELD
        w = np.full(len(colors), float(1 << (3 * f)))
        for shift, field in ((16, 2 * f), (8, f), (0, 0)):
            channel = ((colors >> shift) & 255).astype(np.float64)
            w += np.rint(channel * (31 / 255)) * float(1 << field)
        return w

    def count(self) -> int:
        return len(self._x)

    def position(self, i: int) -> tuple[float, float]:
        """Where point i (in setData order) is drawn."""
        return float(self._x[i]), float(self._y[i])

    def positions(self, indices: np.ndarray) -> np.ndarray:
        """Where the points `indices` are drawn, (m, 2)."""
        return np.c_[self._x[indices], self._y[indices]]

    def boundingRect(self) -> QtCore.QRectF:
        return self._rect

    def dataBounds(self, ax, frac=1.0, orthoRange=None):
        if self._rect.isNull():
            return None, None
        r = self._rect
        return (r.left(), r.right()) if ax == 0 else (r.top(), r.bottom())

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

    def _pixel_index(self, t: QtGui.QTransform, width: int, height: int, margin: int) -> np.ndarray:
        """Flattened pixel index of each point on a width×height canvas (the view plus `margin` pixels on
        every side) whose outermost rows and columns collect every point beyond them."""
        x, y = self._x, self._y
        # float32 keeps the pass cheap; fall back to float64 where its rounding would reach a tenth of a pixel.
        extent = max(abs(self._rect.left()), abs(self._rect.right()), abs(self._rect.top()), abs(self._rect.bottom()))
        scale = max(abs(t.m11()), abs(t.m12()), abs(t.m21()), abs(t.m22()))
        if scale * extent + abs(t.m31()) + abs(t.m32()) > 1e6:
            x, y = x.astype(np.float64), y.astype(np.float64)
        dtype = x.dtype.type
        if self._scratch is None or self._scratch[0].dtype != x.dtype or len(self._scratch[0]) != len(x):
            # Reused between frames: fresh 8 MB arrays would cost a page fault per 4 kB on every pan.
            self._scratch = (np.empty_like(x), np.empty(len(x), np.int64), np.empty(len(x), np.int64))
        f, index, cell = self._scratch

        def pixel(a, b, c, limit, out):
            # x*a + y*b + c, skipping the term a view without rotation does not have
            np.multiply(x, dtype(a), out=f)
            if b:
                np.add(f, y * dtype(b), out=f)
            np.add(f, dtype(c + margin), out=f)
            np.clip(f, 0, limit - 1, out=f)
            np.copyto(out, f, casting="unsafe")   # truncation: (-1, 0) lands on 0, outside the view anyway

        with np.errstate(over="ignore", invalid="ignore"):   # parked points overflow float32; clipped anyway
            pixel(t.m12(), t.m22(), t.m32(), height, index)
            index *= width
            pixel(t.m11(), t.m21(), t.m31(), width, cell)
        index += cell
        return index

    def _rasterise(self, t: QtGui.QTransform, w: int, h: int) -> QtGui.QImage:
        s = max(1, int(self.size))
        m = s + 1                                # the stamp reach, plus the clipped border
        cw, ch = w + 2 * m, h + 2 * m
        flat = self._pixel_index(t, cw, ch, m)
        packed = self._stamp(np.bincount(flat, weights=self._weights, minlength=cw * ch).reshape(ch, cw), s, m, h, w)
        f = self.FIELD
        nz = np.flatnonzero(packed.ravel() != 0)   # via a bool mask: several times faster on float64
        vi = packed.ravel()[nz].astype(np.int64)
        counts = vi >> (3 * f)
        self.stats = {"max": int(counts.max()) if len(counts) else 0, "exact": False}
        if self.stats["max"] > self.PACKED_MAX:
            self.stats["exact"] = True
            counts = self._stamp(np.bincount(flat, minlength=cw * ch).reshape(ch, cw), s, m, h, w).ravel()[nz].astype(np.int64)
            sums = [self._stamp(np.bincount(flat, weights=((self._c >> shift) & 255).astype(np.float64),
                                            minlength=cw * ch).reshape(ch, cw), s, m, h, w).ravel()[nz]
                    for shift in (16, 8, 0)]
            scale = 1.0
        else:
            mask = (1 << f) - 1
            sums = [(vi >> shift) & mask for shift in (2 * f, f, 0)]
            scale = 255 / 31
        buf = np.zeros(h * w, dtype=np.uint32)
        if len(counts):
            # Log-scaled shading against a high percentile of the counts in view (not the maximum,
            # so one pile of identical points does not wash everything else out).
            sample = counts[:: max(1, len(counts) // 4096)]
            q = int(0.995 * (len(sample) - 1))
            ref = max(1.0, float(np.partition(sample, q)[q]))
            self.stats["reference"] = ref
            c = np.arange(int(self.stats["max"]) + 1, dtype=np.float64)
            # Nothing denser than one point per pixel: every point opaque, in its own colour.
            level = np.minimum(np.log1p(c) / np.log1p(ref), 1.0) if ref > 1 else np.zeros_like(c)
            lone = self.LONE_ALPHA if ref > 1 else 1.0
            alpha = lone + (1.0 - lone) * level
            # per count: premultiplied, darkened colour = channel sum × factor
            factor = (scale * alpha * (1.0 - self.DARKEN * level) / np.maximum(c, 1)).astype(np.float32)
            out = (np.rint(alpha * 255).astype(np.uint32) << 24)[counts]
            fac = factor[counts]
            for total, shift in zip(sums, (16, 8, 0)):
                channel = total.astype(np.float32)
                channel *= fac
                channel += 0.5
                np.minimum(channel, 255, out=channel)
                out |= channel.astype(np.uint32) << shift
            buf[nz] = out
        self._buf = buf  # the image below borrows this memory
        return QtGui.QImage(buf.data, w, h, 4 * w, QtGui.QImage.Format.Format_ARGB32_Premultiplied)

    def _stamp(self, grid: np.ndarray, s: int, m: int, h: int, w: int) -> np.ndarray:
        """Box sum of `grid` over s×s stamps, cropped to the h×w view (grid has margin m). The result
        lives in a buffer reused by the next call: first touches of fresh 5 MB arrays cost more than the sums."""
        lo = m - s // 2                          # a point on pixel p covers p - (s - 1 - s//2) .. p + s//2
        if s == 1:
            return grid[m:m + h, m:m + w]
        ch = grid.shape[0]
        if self._grids is None or self._grids[1].shape != (h, w):
            self._grids = (np.empty((ch, w)), np.empty((h, w)))
        rows, out = self._grids
        np.add(grid[:, lo:lo + w], grid[:, lo + 1:lo + 1 + w], out=rows)
        for d in range(2, s):
            rows += grid[:, lo + d:lo + d + w]
        np.add(rows[lo:lo + h], rows[lo + 1:lo + 1 + h], out=out)
        for d in range(2, s):
            out += rows[lo + d:lo + d + h]
        return out

    def nearest(self, x: float, y: float) -> int | None:
        """Index (in setData order) of the point nearest to (x, y), or None when there are none."""
        if not len(self._x):
            return None
        with np.errstate(over="ignore"):   # parked points (see FAR) square to inf: never the nearest
            return int(np.argmin((self._x - np.float32(x)) ** 2 + (self._y - np.float32(y)) ** 2))


class PriorCircles(pg.GraphicsObject):
    """Circles of radius 1, 2, 3 around the origin, each labelled with the prior mass inside it."""

    Z = 8   # above the points (z 0) and the density/manifold layers, below the path (9) and marker (10)

    def __init__(self):
        super().__init__()
        self.setZValue(self.Z)
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
