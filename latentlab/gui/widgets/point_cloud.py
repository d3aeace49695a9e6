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
import sys

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui


class _Scratch:
    """Named arrays reused from one raster to the next. A fresh array of a few megabytes costs a page fault
    per 4 kB on its first touch, which is more than the arithmetic done in it."""

    def __init__(self):
        self._arrays: dict[tuple[str, np.dtype], np.ndarray] = {}

    def __call__(self, name: str, n: int, dtype) -> np.ndarray:
        key = (name, np.dtype(dtype))
        a = self._arrays.get(key)
        if a is None or len(a) < n:
            # headroom: the number of pixels covered changes a little from frame to frame
            a = self._arrays[key] = np.empty(n + n // 8 + 64, dtype)
        return a[:n]


# Byte offsets of the red, green and blue bytes inside a native uint32 ARGB pixel.
_R, _G, _B = (2, 1, 0) if sys.byteorder == "little" else (1, 2, 3)


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
    exact per-channel sums are used instead (slower, only for very concentrated views). All of it runs
    on the part of the view the points' bounding box reaches, and the shading only on covered pixels.
    """

    FIELD = 14                      # bits per colour-sum field: 31 * 511 < 2**14
    PACKED_MAX = 511                # stamps per pixel the packed fields hold exactly
    LONE_ALPHA = 0.5                # opacity of a single point when much denser pixels are in view
    DARKEN = 0.4                    # how much the densest pixels darken their colour
    FAR = np.float32(1e30)          # where points with a NaN or infinite coordinate are put
    MAGIC = float(1 << 52)          # added to a packed sum, leaves the sum itself as the float's low bits
    BAND = 16384                    # canvas pixels box-summed at a time

    def __init__(self, size: int = 3):
        super().__init__()
        self._x = np.zeros(0, np.float32)
        self._y = np.zeros(0, np.float32)
        self._c = np.zeros(0, np.uint32)
        self._weights = np.zeros(0, np.float64)
        self._rect = QtCore.QRectF()
        self.size = size
        self._cache_key = None
        self._cache: QtGui.QImage | None = None   # the raster of the covered part of the view
        self._cache_at = QtCore.QPoint()          # where it goes, in device pixels
        self._scratch = _Scratch()
        self.stats: dict = {}       # of the last raster: counts per pixel (max, reference), exact path used

    def setData(self, pos: np.ndarray, colors: np.ndarray) -> None:
        pos = np.asarray(pos)
        n = len(pos)
        colors = np.asarray(colors, dtype=np.uint32)
        if len(colors) != n:
            raise ValueError(f"{n} positions but {len(colors)} colours")
        if len(self._x) != n:
            self._x, self._y = np.empty(n, np.float32), np.empty(n, np.float32)
        # Into the same arrays as last time: live updates keep the count, and fresh ones would fault pages in.
        np.copyto(self._x, pos[:, 0], casting="unsafe")
        np.copyto(self._y, pos[:, 1], casting="unsafe")
        # Live training updates move the points but keep their colours: reuse the packed weights then.
        if len(self._c) != n or not np.array_equal(self._c, colors):
            self._c = colors.copy()
            self._weights = self._pack(colors)
        self._cache_key = None
        self.prepareGeometryChange()
        self._rect = self._bounds()
        self.informViewBoundsChanged()
        self.update()

    def _bounds(self) -> QtCore.QRectF:
        """The finite points' bounding rectangle, after parking the others (NaN or infinite) where they are
        drawn nowhere, are never the nearest point and do not widen the bounds."""
        x, y = self._x, self._y
        if not len(x):
            return QtCore.QRectF()
        bounds = [float(x.min()), float(x.max()), float(y.min()), float(y.max())]
        if not all(map(math.isfinite, bounds)):   # min and max carry any NaN or inf: the common case needs no mask
            finite = np.isfinite(x) & np.isfinite(y)
            x[~finite] = y[~finite] = self.FAR
            if not finite.any():
                return QtCore.QRectF()
            xs, ys = x[finite], y[finite]
            bounds = [float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())]
        x0, x1, y0, y1 = bounds
        return QtCore.QRectF(x0, y0, max(x1 - x0, 1e-9), max(y1 - y0, 1e-9))

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
        image, at = self.raster(painter.transform(), w, h)
        if image is None:
            return
        painter.save()
        painter.resetTransform()
        painter.drawImage(at, image)
        painter.restore()

    def raster(self, t: QtGui.QTransform, w: int, h: int) -> tuple[QtGui.QImage | None, QtCore.QPoint]:
        """The shaded points on a w×h device under transform t, and where its top-left corner goes."""
        key = (w, h, t.m11(), t.m12(), t.m21(), t.m22(), t.m31(), t.m32(), self.size)
        if key != self._cache_key:
            # Marker moves and hover cards repaint the view without moving it: reuse the raster.
            self._cache, self._cache_at = self._rasterise(t, w, h)
            self._cache_key = key
        return self._cache, self._cache_at

    def _region(self, t: QtGui.QTransform, w: int, h: int, s: int) -> QtCore.QRect:
        """The part of the w×h view the points' s×s stamps can reach (their bounding box in device pixels,
        with room for the stamps and for float32 rounding); empty when they reach none of it."""
        if self._rect.isNull():
            return QtCore.QRect()
        r = t.mapRect(self._rect)
        reach = s + 2

        def clamp(v: float, size: int) -> float:   # before rounding: far points' pixels are beyond a QRect's ints
            return min(max(v, 0.0), float(size))

        left, top = math.floor(clamp(r.left() - reach, w)), math.floor(clamp(r.top() - reach, h))
        right, bottom = math.ceil(clamp(r.right() + reach, w)), math.ceil(clamp(r.bottom() + reach, h))
        return QtCore.QRect(left, top, max(0, right - left), max(0, bottom - top))

    def _pixel_index(self, t: QtGui.QTransform, left: int, top: int, width: int, height: int) -> np.ndarray:
        """Flattened pixel index of each point on the width×height canvas whose top-left corner is device
        pixel (left, top); the outermost rows and columns collect every point beyond them."""
        x, y = self._x, self._y
        # float32 keeps the pass cheap; fall back to float64 where its rounding would reach a tenth of a pixel.
        extent = max(abs(self._rect.left()), abs(self._rect.right()), abs(self._rect.top()), abs(self._rect.bottom()))
        scale = max(abs(t.m11()), abs(t.m12()), abs(t.m21()), abs(t.m22()))
        dtype = np.float32
        if scale * extent + abs(t.m31()) + abs(t.m32()) > 1e6:
            x, y, dtype = x.astype(np.float64), y.astype(np.float64), np.float64
        n = len(x)
        f, g = self._scratch("f", n, dtype), self._scratch("g", n, dtype)
        row, col = self._scratch("row", n, np.int32), self._scratch("col", n, np.int32)

        def pixel(a, b, c, limit, out):
            # x*a + y*b + c, skipping the term a view without rotation does not have
            u, k = (x, a) if a or not b else (y, b)
            np.multiply(u, dtype(k), out=f)
            if a and b:
                np.multiply(y, dtype(b), out=g)
                np.add(f, g, out=f)
            np.add(f, dtype(c), out=f)
            if a and b:   # parked points' inf terms may cancel to NaN: fmax and fmin send it to a border too
                np.fmax(f, 0, out=f)
                np.fmin(f, limit - 1, out=f)
            else:
                np.clip(f, 0, limit - 1, out=f)
            np.copyto(out, f, casting="unsafe")   # truncation: (-1, 0) lands on 0, outside the view anyway

        with np.errstate(over="ignore", invalid="ignore"):   # parked points overflow float32; clipped anyway
            pixel(t.m12(), t.m22(), t.m32() - top, height, row)
            pixel(t.m11(), t.m21(), t.m31() - left, width, col)
        # int32 arithmetic moves half the bytes; bincount wants the platform's index type
        np.multiply(row, np.int32(width), out=row)
        np.add(row, col, out=row)
        index = self._scratch("index", n, np.intp)
        np.copyto(index, row)
        return index

    def _rasterise(self, t: QtGui.QTransform, w: int, h: int) -> tuple[QtGui.QImage | None, QtCore.QPoint]:
        s = max(1, int(self.size))
        m = s + 1                                # the stamp reach, plus the clipped border
        self.stats = {"max": 0, "exact": False}
        region = self._region(t, w, h, s)
        if region.isEmpty():
            return None, QtCore.QPoint()
        rw, rh = region.width(), region.height()
        cw, ch = rw + 2 * m, rh + 2 * m          # the canvas: the region plus a margin on every side
        flat = self._pixel_index(t, region.left() - m, region.top() - m, cw, ch)
        nz, packed = self._stamped(np.bincount(flat, weights=self._weights, minlength=cw * ch), s, m, cw, rw, rh)
        k = len(nz)
        if not k:
            return None, QtCore.QPoint()
        f = self.FIELD
        # Below 2**52 the packed sums are integers that adding 2**52 puts, as they are, in the float's mantissa
        # bits, under the exponent bits of 2**52: a cheap exact conversion. Larger ones (over a thousand
        # stamps) come out above PACKED_MAX, as they should.
        packed += self.MAGIC
        bits = packed.view(np.int64)
        counts = self._scratch("counts", k, np.int64)
        np.right_shift(bits, 3 * f, out=counts)
        counts -= int(np.float64(self.MAGIC).view(np.int64)) >> (3 * f)
        top = int(counts.max())
        self.stats["max"] = top
        if top > self.PACKED_MAX:
            self.stats["exact"] = True
            _, counts = self._stamped(np.bincount(flat, minlength=cw * ch), s, m, cw, rw, rh, at=nz)
            top = self.stats["max"] = int(counts.max())
            scale = 1.0
        else:
            scale = 255 / 31
        # Log-scaled shading against a high percentile of the counts in view (not the maximum,
        # so one pile of identical points does not wash everything else out).
        sample = counts[:: max(1, k // 4096)]
        q = int(0.995 * (len(sample) - 1))
        ref = max(1.0, float(np.partition(sample, q)[q]))
        self.stats["reference"] = ref
        c = np.arange(top + 1, dtype=np.float64)
        # Nothing denser than one point per pixel: every point opaque, in its own colour.
        level = np.minimum(np.log1p(c) / np.log1p(ref), 1.0) if ref > 1 else np.zeros_like(c)
        lone = self.LONE_ALPHA if ref > 1 else 1.0
        alpha = lone + (1.0 - lone) * level
        # per count: premultiplied, darkened colour = channel sum × factor. A sum is at most 255 (or 31 packed) per
        # stamp, so the product stays within 255 × alpha and, rounded, fits its byte without clipping.
        factor = (scale * alpha * (1.0 - self.DARKEN * level) / np.maximum(c, 1)).astype(np.float32)
        # Every take below has its indices in range by construction: mode="clip" never clips, it only skips
        # the bounds check that makes the default mode twice as slow.
        shaded = self._scratch("shaded", k, np.uint32)   # alpha first, as whole pixels; then the colour bytes
        np.take(np.rint(alpha * 255).astype(np.uint32) << 24, counts, out=shaded, mode="clip")
        pixels = shaded.view(np.uint8).reshape(k, 4)
        fac = np.take(factor, counts, out=self._scratch("factor", k, np.float32), mode="clip")
        channel = self._scratch("channel", k, np.float32)
        for shift, field, byte in ((16, 2 * f, _R), (8, f, _G), (0, 0, _B)):
            if self.stats["exact"]:
                channel_sums = np.bincount(flat, weights=((self._c >> shift) & 255).astype(np.float64), minlength=cw * ch)
                total = self._stamped(channel_sums, s, m, cw, rw, rh, at=nz)[1]
            else:
                total = np.right_shift(bits, field, out=self._scratch("total", k, np.int64))
                np.bitwise_and(total, (1 << f) - 1, out=total)
            np.multiply(total, fac, out=channel, dtype=np.float32, casting="unsafe")
            channel += 0.5
            np.copyto(pixels[:, byte], channel, casting="unsafe")
        # rows of cw pixels, of which the image shows rw from column m on; the image borrows this memory
        self._buf = buf = self._scratch("image", rh * cw + m, np.uint32)
        buf.fill(0)
        buf[nz] = shaded   # not np.put: three times slower here
        image = QtGui.QImage(buf[m:m + rh * cw].data, rw, rh, 4 * cw, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        return image, region.topLeft()

    def _stamped(self, grid: np.ndarray, s: int, m: int, cw: int, rw: int, rh: int,
                 at: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Box sums over s×s stamps of the flat canvas `grid` (rows of cw pixels, a margin of m around the
        rw×rh region): the index (in rows of cw pixels) and sum of every pixel of the region with a non-zero
        sum, or given the sorted indices `at`, the sums there. Both results live in buffers the next call reuses.

        Band by band of rows, so that the scratch for the sums stays a few hundred kB whatever the view's size,
        and along the flattened rows, so that each pass is one contiguous loop (what leaks across row ends
        lands in the margin columns, which are zeroed along with the clipped points there)."""
        band = max(1, self.BAND // cw)
        lo = m - s // 2                          # a point on pixel p covers p - (s - 1 - s//2) .. p + s//2
        rows = self._scratch("rows", band * cw, grid.dtype)
        out = self._scratch("stamped", band * cw, grid.dtype)
        covered = self._scratch("covered", band * cw, np.bool_)
        if at is None:
            index = self._scratch("index_covered", rh * cw, np.intp)
            found = 0
        else:
            index = at
            ends = np.searchsorted(at, np.arange(1, (rh + band - 1) // band + 1) * band * cw)
        sums = self._scratch(f"sums_{grid.dtype}", rh * cw if at is None else len(at), grid.dtype)
        for r0 in range(0, rh, band):
            n = min(band, rh - r0) * cw
            first = (r0 + lo) * cw
            v = grid[first:first + n]
            if s > 1:
                v = np.add(v, grid[first + cw:first + cw + n], out=rows[:n])
                for d in range(2, s):
                    v += grid[first + d * cw:first + d * cw + n]
                o = out[:n]
                inner = o[s // 2:n - (s - 1 - s // 2)]   # the ends left unset are margin
                np.add(v[:n - s + 1], v[1:n - s + 2], out=inner)
                for d in range(2, s):
                    inner += v[d:n - s + 1 + d]
                v = o
            by_row = v.reshape(-1, cw)
            by_row[:, :m] = 0
            by_row[:, m + rw:] = 0
            if at is None:
                np.not_equal(v, 0, out=covered[:n])   # via a bool mask: several times faster than flatnonzero on float64
                i = np.flatnonzero(covered[:n])
                np.take(v, i, out=sums[found:found + len(i)], mode="clip")   # in range: see _rasterise
                np.add(i, r0 * cw, out=index[found:found + len(i)])
                found += len(i)
            else:
                start = ends[r0 // band - 1] if r0 else 0
                np.take(v, at[start:ends[r0 // band]] - r0 * cw, out=sums[start:ends[r0 // band]], mode="clip")
        if at is None:
            return index[:found], sums[:found]
        return at, sums

    def nearest(self, x: float, y: float) -> int | None:
        """Index (in setData order) of the point nearest to (x, y), or None when there are none."""
        if not len(self._x):
            return None
        with np.errstate(over="ignore"):   # parked points (see FAR) square to inf: never the nearest
            return int(np.argmin((self._x - np.float32(x)) ** 2 + (self._y - np.float32(y)) ** 2))
