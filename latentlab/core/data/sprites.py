"""Procedural 2D sprites with known generative factors (in the spirit of dSprites).

Every image is one white shape on black, drawn from five independent factors on fixed grids:

    shape     0 square, 1 ellipse, 2 triangle     (the class label)
    scale     SCALES, relative size 0.5 .. 1
    rotation  ROTATIONS, radians in [0, 2π); the same grid for every shape, although the
              square repeats every π/2 and the ellipse every π
    x, y      POSITIONS in [0, 1], left→right and top→bottom (y grows downwards like image rows)

Shapes are drawn by evaluating a signed distance on the pixel grid for all images at once, with a
one-pixel linear ramp at the edge as cheap antialiasing, so generation stays well under a second.
"""

from __future__ import annotations

import numpy as np

SIZE = 32
SHAPES = ("square", "ellipse", "triangle")
SCALES = np.linspace(0.5, 1.0, 6, dtype=np.float32)
ROTATIONS = (np.arange(16, dtype=np.float32) * np.float32(2 * np.pi / 16)).astype(np.float32)
POSITIONS = np.linspace(0.0, 1.0, 12, dtype=np.float32)
FACTOR_NAMES = ("shape", "scale", "rotation", "x", "y")

# Half-size of the largest square as a fraction of the image. Centres span [0.25, 0.75], and the
# largest extent of any shape (the rotated square's half-diagonal, 0.15·√2 ≈ 0.21) keeps every
# sprite fully inside the frame.
_HALF = 0.15
_CENTRE_LO, _CENTRE_SPAN = 0.25, 0.5
_ELLIPSE_AXES = (1.0, 0.6)  # elongated so that rotation is visible
_TRIANGLE_RADIUS = 1.3  # circumradius relative to the square's half-size: similar area


def render(shape, scale, rotation, x, y, size: int = SIZE) -> np.ndarray:
    """Draw sprites from factor values (1-D arrays of equal length); returns float32 (N, size, size)."""
    shape = np.asarray(shape, dtype=np.int64)
    out = np.empty((len(shape), size, size), dtype=np.float32)
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    for k in range(len(SHAPES)):
        idx = np.flatnonzero(shape == k)
        if len(idx):
            s, r, cx, cy = (np.asarray(a, dtype=np.float32)[idx, None, None] for a in (scale, rotation, x, y))
            out[idx] = _draw(k, s, r, cx, cy, grid)
    return out


def _draw(k: int, scale, rotation, x, y, grid) -> np.ndarray:
    """Sprites of one shape; factor arrays are (n, 1, 1) so that they broadcast over pixels."""
    half = _HALF * scale
    dx = (grid[None, None, :] - (_CENTRE_LO + _CENTRE_SPAN * x)) / half
    dy = (grid[None, :, None] - (_CENTRE_LO + _CENTRE_SPAN * y)) / half
    # Coordinates in the shape's own frame, in units of its half-size.
    cos, sin = np.cos(rotation), np.sin(rotation)
    u = cos * dx + sin * dy
    v = cos * dy - sin * dx
    # dist: signed distance in units of half-size, negative inside.
    if SHAPES[k] == "square":
        dist = np.maximum(np.abs(u), np.abs(v))
        dist -= 1.0
    elif SHAPES[k] == "ellipse":
        # Quílez's ellipse distance approximation: exact on the boundary, good near it.
        a, b = _ELLIPSE_AXES
        k0 = np.hypot(u / a, v / b)
        k1 = np.hypot(u / (a * a), v / (b * b))
        k1 += 1e-6
        dist = k0 * (k0 - 1.0)
        dist /= k1
    else:
        # Equilateral triangle, apex up before rotation: the intersection of three half-planes.
        s3 = np.float32(0.8660254)
        dist = np.maximum(v, np.maximum(-s3 * u - 0.5 * v, s3 * u - 0.5 * v))
        dist -= _TRIANGLE_RADIUS / 2
    # One-pixel linear ramp across the edge: 0.5 - distance in pixels, clipped to [0, 1].
    dist *= -(half * len(grid))
    dist += 0.5
    np.maximum(dist, 0.0, out=dist)
    np.minimum(dist, 1.0, out=dist)
    return dist


def generate(n: int, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """n distinct factor combinations drawn uniformly from the grid; images float32 (n, size, size).

    Sampling without replacement means no image appears twice, so a train/test split of the
    result never leaks a test image into training.
    """
    dims = (len(SHAPES), len(SCALES), len(ROTATIONS), len(POSITIONS), len(POSITIONS))
    total = int(np.prod(dims))
    if not 0 < n <= total:
        raise ValueError(f"n must be in 1..{total}, got {n}")
    flat = np.random.default_rng(seed).choice(total, size=n, replace=False)
    i_shape, i_scale, i_rot, i_x, i_y = np.unravel_index(flat, dims)
    factors = {
        "shape": i_shape.astype(np.float32),
        "scale": SCALES[i_scale],
        "rotation": ROTATIONS[i_rot],
        "x": POSITIONS[i_x],
        "y": POSITIONS[i_y],
    }
    images = render(i_shape, factors["scale"], factors["rotation"], factors["x"], factors["y"])
    return images, factors
