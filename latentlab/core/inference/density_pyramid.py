"""Millions of 2-D points, aggregated once so that drawing a frame does not touch each of them.

`build_pyramid(x, y, colors)` lays a square grid of 2**bits cells a side over the points and keeps:

- per level, a shaded picture of the points (premultiplied ARGB words, a square of 2**level pixels
  a side): each pixel the mean colour of the points in a 3×3 block of cells around it, with an
  opacity and darkening that grow with the log of how many there are — what the point cloud draws
  per device pixel, computed once instead of per frame. A frame draws the part of the level whose
  cells are about one device pixel wide, scaled;
- the points sorted by the cell of a coarse index grid (2**INDEX_BITS a side, row-major) and where
  each cell's run starts, so that the points of a small region (a zoomed-in view, the neighbourhood
  of the mouse, a selection rectangle) are found without looking at the others.

The grid covers the points' extent without the farthest ten-thousandth on each side; those few
points are kept apart (`far`) and always drawn one by one. Nothing here imports Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from latentlab.core.errors import Cancelled

from .selection import in_polygon

INDEX_BITS = 8           # the level whose cell runs are kept (the points are sorted by its cells)
COUNT_BITS = 8           # the level whose counts estimate how many points a view holds
TAIL = 1e-4              # the share of points on each side left out of the grid's extent
LONE_ALPHA = 0.5         # as the point cloud: opacity of one point where much denser pixels are in view
DARKEN = 0.4             # how much the densest pixels darken their colour
REFERENCE_QUANTILE = 0.995


@dataclass(eq=False)
class DensityPyramid:
    x0: float                  # the grid's lower-left corner and side, in view coordinates
    y0: float
    span: float
    bits: int
    x: np.ndarray              # (N,) float32 positions in the caller's order (its own arrays: no copy)
    y: np.ndarray
    order: np.ndarray          # (m,) int32: the point (in the caller's order) at each sorted position
    colors: np.ndarray         # (m,) uint32 packed ARGB of the sorted points
    offsets: np.ndarray        # (4**INDEX_BITS + 1,) int64: where each index cell's run starts (row-major)
    counts: np.ndarray         # (2**count_bits, 2**count_bits) uint32 points per cell, row 0 at y0
    far: np.ndarray            # int32 points outside the grid: indexed in its nearest border cell, drawn one by one
    far_xy: np.ndarray         # (f, 2) float32 their positions
    far_colors: np.ndarray
    images: list               # per level: (2**l, 2**l) uint32 premultiplied ARGB, row 0 at the top (y0 + span)
    total: int                 # finite points
    coords: Callable | None = None   # indices (caller's order) -> (m, 2) positions; see point_positions

    def cell(self, bits: int) -> float:
        return self.span / (1 << bits)

    def _cell_range(self, lo: float, hi: float, origin: float, bits: int) -> tuple[int, int]:
        n = 1 << bits
        a = int(np.clip(np.floor((lo - origin) / self.cell(bits)), 0, n - 1))
        b = int(np.clip(np.floor((hi - origin) / self.cell(bits)), 0, n - 1))
        return a, b

    def count_in(self, x_lo: float, x_hi: float, y_lo: float, y_hi: float) -> int:
        """About how many points a rectangle holds (whole cells of the count level, plus the far ones)."""
        bits = min(self.bits, COUNT_BITS)
        if x_hi < self.x0 or y_hi < self.y0 or x_lo > self.x0 + self.span or y_lo > self.y0 + self.span:
            inside = 0
        else:
            c0, c1 = self._cell_range(x_lo, x_hi, self.x0, bits)
            r0, r1 = self._cell_range(y_lo, y_hi, self.y0, bits)
            inside = int(self.counts[r0:r1 + 1, c0:c1 + 1].sum(dtype=np.int64))
        return inside + len(self.far)

    def sorted_in(self, x_lo: float, x_hi: float, y_lo: float, y_hi: float) -> np.ndarray:
        """Sorted positions of the points in the index cells a rectangle touches (a superset of those
        inside it): one run of the sorted points per row of cells."""
        if x_hi < self.x0 or y_hi < self.y0 or x_lo > self.x0 + self.span or y_lo > self.y0 + self.span:
            return np.zeros(0, np.int64)
        q = INDEX_BITS
        c0, c1 = self._cell_range(x_lo, x_hi, self.x0, q)
        r0, r1 = self._cell_range(y_lo, y_hi, self.y0, q)
        first = (np.arange(r0, r1 + 1, dtype=np.int64) << q) + c0
        return _ranges(self.offsets[first], self.offsets[first + (c1 - c0 + 1)])

    def sorted_xy(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the points at sorted positions s."""
        i = self.order[s]
        return self.x[i], self.y[i]

    def select_rectangle(self, corner_a, corner_b) -> np.ndarray:
        """Points (caller's order, ascending) inside the axis-aligned rectangle with these corners."""
        (xa, ya), (xb, yb) = corner_a, corner_b
        x_lo, x_hi, y_lo, y_hi = min(xa, xb), max(xa, xb), min(ya, yb), max(ya, yb)
        s = self.sorted_in(x_lo, x_hi, y_lo, y_hi)
        x, y = self.sorted_xy(s)
        # far points sit in the border cells nearest them, so a rectangle reaching them reaches those cells
        return np.sort(self.order[s[(x >= x_lo) & (x <= x_hi) & (y >= y_lo) & (y <= y_hi)]].astype(np.int64))

    def select_polygon(self, polygon) -> np.ndarray:
        """Points (caller's order, ascending) inside a closed polygon, by the even-odd rule."""
        poly = np.asarray(polygon, np.float64).reshape(-1, 2)
        if len(poly) < 3:
            return np.zeros(0, np.int64)
        box = self.select_rectangle(poly.min(0), poly.max(0))
        return box[in_polygon(self.point_positions(box), poly)]

    def point_positions(self, indices: np.ndarray) -> np.ndarray:
        """(m, 2) positions of points given in the caller's order."""
        return np.asarray(self.coords(np.asarray(indices, np.int64)), np.float64).reshape(-1, 2)

    def nearest(self, x: float, y: float) -> int | None:
        """The point (caller's order) nearest to (x, y); None when there are none."""
        best, best_d = None, np.inf
        if len(self.far):
            d = (self.far_xy[:, 0] - x) ** 2 + (self.far_xy[:, 1] - y) ** 2
            i = int(np.argmin(d))
            best, best_d = int(self.far[i]), float(d[i])
        if not len(self.order):
            return best
        cell = self.cell(INDEX_BITS)
        # the distance from (x, y) to the grid, so that a far-away mouse starts with a ring that reaches it
        gap = max(self.x0 - x, x - self.x0 - self.span, self.y0 - y, y - self.y0 - self.span, 0.0)
        reach = max(1.0, np.ceil(gap / cell) + 1)
        while True:
            half = reach * cell
            s = self.sorted_in(x - half, x + half, y - half, y + half)
            if len(s):
                xs, ys = self.sorted_xy(s)
                d = (xs - np.float32(x)) ** 2 + (ys - np.float32(y)) ** 2
                i = int(np.argmin(d))
                if float(d[i]) < best_d:
                    best, best_d = int(self.order[s[i]]), float(d[i])
            # every point closer than the best so far lies within this square: done
            if best is not None and np.sqrt(best_d) <= half - cell or half > 2 * self.span + gap:
                return best
            reach *= 2


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The concatenation of arange(s, e) for each pair, without a Python loop."""
    lengths = ends - starts
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, np.int64)
    out = np.ones(total, np.int64)
    out[0] = starts[0]
    at = np.cumsum(lengths)[:-1]
    out[at] = starts[1:] - (starts[:-1] + lengths[:-1]) + 1
    return np.cumsum(out)


def grid_extent(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """A square (x0, y0, side) holding all but the farthest TAIL of the (finite) points on each side,
    or all of them when that costs less than half the resolution."""
    step = max(1, len(x) // 2_000_000)
    xv, yv = x[::step], y[::step]
    if not len(xv):
        return -1.0, -1.0, 2.0
    lo = np.array([np.quantile(xv, TAIL), np.quantile(yv, TAIL)], np.float64)
    hi = np.array([np.quantile(xv, 1 - TAIL), np.quantile(yv, 1 - TAIL)], np.float64)
    full_lo = np.array([x.min(), y.min()], np.float64)
    full_hi = np.array([x.max(), y.max()], np.float64)
    if (full_hi - full_lo).max() <= 2 * max((hi - lo).max(), 1e-12):
        lo, hi = full_lo, full_hi
    side = max(float((hi - lo).max()), 1e-6 * max(1.0, float(np.abs(lo).max())), 1e-12) * 1.02
    centre = (lo + hi) / 2
    return float(centre[0] - side / 2), float(centre[1] - side / 2), side


def build_pyramid(x: np.ndarray, y: np.ndarray, colors: np.ndarray, *, bits: int = 11, stamp: int = 3,
                  progress: Callable[[float], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> DensityPyramid:
    """Aggregate points at (x, y) (float32 (N,), any order) with packed ARGB colours (N,) uint32."""
    def step(fraction: float) -> None:
        if should_stop is not None and should_stop():
            raise Cancelled("Aggregating the points was stopped.")
        if progress is not None:
            progress(fraction)

    step(0.0)
    bits = int(np.clip(bits, INDEX_BITS, 12))
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    given = x, y
    finite = np.isfinite(x) & np.isfinite(y)
    keep = None if bool(finite.all()) else np.flatnonzero(finite)   # points with a NaN are never drawn
    if keep is not None:
        x, y, colors = x[keep], y[keep], np.asarray(colors)[keep]
    x0, y0, span = grid_extent(x, y)
    side = 1 << bits
    scale = np.float32(side / span)
    col = (x - np.float32(x0)) * scale
    row = (y - np.float32(y0)) * scale
    far = np.flatnonzero((col < 0) | (col >= side) | (row < 0) | (row >= side))
    # Far points stay in the index in the border cell nearest to them (queries test true positions,
    # so they are found where they are); they are left out of the pictures and drawn one by one.
    np.clip(col, 0, side - 1, out=col)
    np.clip(row, 0, side - 1, out=row)
    col16 = col.astype(np.uint16)
    del col
    row16 = row.astype(np.uint16)
    del row
    step(0.2)
    # Sorted by the index cells only (row-major, 16-bit keys): a stable radix sort, a fraction of the
    # cost of a full one; the finer cells are counted below, run by run.
    down = bits - INDEX_BITS
    cell = ((row16 >> down) << INDEX_BITS) | (col16 >> down)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(cell, minlength=1 << 2 * INDEX_BITS))]).astype(np.int64)
    order = np.argsort(cell, kind="stable").astype(np.int32)
    del cell
    flat = row16.astype(np.int32)
    del row16
    flat *= np.int32(side)
    flat += col16
    del col16
    flat[far] = side * side          # a bin past the picture
    step(0.4)
    flat = flat[order]
    cs = np.asarray(colors, np.uint32)[order]
    step(0.55)
    images, counts = _level_images(flat, cs, bits, stamp, step)
    del flat
    source = order if keep is None else keep[order].astype(np.int32)
    return DensityPyramid(x0=x0, y0=y0, span=span, bits=bits, x=given[0], y=given[1], order=source, colors=cs,
                          offsets=offsets, counts=counts, far=(far if keep is None else keep[far]).astype(np.int32),
                          far_xy=np.c_[x[far], y[far]], far_colors=np.asarray(colors, np.uint32)[far], images=images,
                          total=len(x))


FIELD = 17   # bits per channel sum in a packed float64 weight: 255 × 514 < 2**17, three fields in 53 bits
PACKED_MAX = 514


def _level_images(flat: np.ndarray, colors: np.ndarray, bits: int, stamp: int, step) -> tuple[list, np.ndarray]:
    """Shaded pictures of every level from each point's base cell (row * side + col) and colour; and
    the count level's counts (row 0 at y0). Each coarser level sums blocks of 2 × 2 cells."""
    side = 1 << bits
    cells = side * side + 1   # the last bin holds the far points, left out
    count = np.bincount(flat, minlength=cells)[:-1].astype(np.float32)
    if len(flat) and count.max() > PACKED_MAX:   # a cell too full for the packed fields: one pass per channel
        sums = [np.bincount(flat, weights=(colors >> np.uint32(s)) & np.uint32(255), minlength=cells)[:-1]
                .astype(np.float32) for s in (16, 8, 0)]
    else:   # the three channel sums in one pass, a million points at a time
        total = np.zeros(cells, np.float64)
        for i in range(0, len(flat), 1 << 20):
            c = colors[i:i + (1 << 20)]
            packed = np.zeros(len(c), np.float64)
            for s, field in ((16, 2 * FIELD), (8, FIELD), (0, 0)):
                packed += ((c >> np.uint32(s)) & np.uint32(255)).astype(np.float64) * float(1 << field)
            total += np.bincount(flat[i:i + (1 << 20)], weights=packed, minlength=cells)
        total = total[:-1].astype(np.int64)
        sums = [((total >> field) & ((1 << FIELD) - 1)).astype(np.float32) for field in (2 * FIELD, FIELD, 0)]
        del total
    count, sums = count.reshape(side, side), [v.reshape(side, side) for v in sums]
    step(0.7)
    images: list = [None] * (bits + 1)
    counts = None
    for level in range(bits, -1, -1):
        if level < bits:
            count = _halve(count)
            sums = [_halve(v) for v in sums]
        if level == min(bits, COUNT_BITS):
            counts = count.astype(np.uint32)
        images[level] = _shade(count, sums, stamp)
        step(0.7 + 0.3 * (bits - level + 1) / (bits + 1))
    return images, counts


def _halve(a: np.ndarray) -> np.ndarray:
    h, w = a.shape
    return a.reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3))


def _shade(count: np.ndarray, sums: list, stamp: int) -> np.ndarray:
    """The premultiplied ARGB picture (row 0 at the top) of one level's cells (row 0 at the bottom),
    each cell's points spread over a stamp × stamp block as the point cloud spreads a point's pixels."""
    n = _box(count, stamp)
    covered = n > 0
    k = n[covered]
    image = np.zeros(count.shape, np.uint32)
    if not len(k):
        return image
    sample = k[:: max(1, len(k) // 4096)]
    ref = max(1.0, float(np.quantile(sample, REFERENCE_QUANTILE)))
    level = np.minimum(np.log1p(k) / np.log1p(ref), 1.0) if ref > 1 else np.zeros_like(k)
    lone = LONE_ALPHA if ref > 1 else 1.0
    alpha = lone + (1.0 - lone) * level
    factor = alpha * (1.0 - DARKEN * level) / k
    pixel = np.rint(alpha * 255).astype(np.uint32) << np.uint32(24)
    for total, shift in zip(sums, (16, 8, 0)):
        channel = _box(total, stamp)[covered]
        pixel |= np.minimum(np.rint(channel * factor), 255).astype(np.uint32) << np.uint32(shift)
    image[covered] = pixel
    return image[::-1].copy()


def _box(a: np.ndarray, s: int) -> np.ndarray:
    """Sums over s × s blocks centred on each cell (zero beyond the edges)."""
    if s <= 1:
        return a.astype(np.float32)
    lo = (s - 1) // 2
    out = np.zeros(a.shape, np.float32)
    h, w = a.shape
    rows = np.zeros(a.shape, np.float32)
    for d in range(-lo, s - lo):   # separable: along rows, then along columns
        rows[max(0, -d):h - max(0, d)] += a[max(0, d):h - max(0, -d)]
    for d in range(-lo, s - lo):
        out[:, max(0, -d):w - max(0, d)] += rows[:, max(0, d):w - max(0, -d)]
    return out
