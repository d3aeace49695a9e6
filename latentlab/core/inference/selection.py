"""Which 2-D points fall inside a rectangle or a lasso polygon drawn on a view."""

from __future__ import annotations

import numpy as np


def in_rectangle(xy: np.ndarray, corner_a, corner_b) -> np.ndarray:
    """Mask of the points (N, 2) inside the axis-aligned rectangle with these opposite corners."""
    (x0, y0), (x1, y1) = corner_a, corner_b
    x, y = xy[:, 0], xy[:, 1]
    return (x >= min(x0, x1)) & (x <= max(x0, x1)) & (y >= min(y0, y1)) & (y <= max(y0, y1))


def in_polygon(xy: np.ndarray, polygon) -> np.ndarray:
    """Mask of the points (N, 2) inside a closed polygon (M, 2), by the even-odd rule.

    Only the points within the polygon's bounding box are tested edge by edge, so a small lasso over
    a million points costs little."""
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    mask = np.zeros(len(xy), bool)
    if len(poly) < 3:
        return mask
    box = np.flatnonzero(in_rectangle(xy, poly.min(0), poly.max(0)))
    x, y = xy[box, 0].astype(np.float64), xy[box, 1].astype(np.float64)
    inside = np.zeros(len(box), bool)
    for (xa, ya), (xb, yb) in zip(poly, np.roll(poly, -1, axis=0)):
        crosses = (ya > y) != (yb > y)
        if not crosses.any():
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            at = xa + (y - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (x < at)
    mask[box] = inside
    return mask
