"""Millions of latent means in the shown plane without a float64 copy of them: their covariance
summed over chunks (for the PCA plane) and their 2-D coordinates as two float32 columns."""

from __future__ import annotations

import numpy as np

CHUNK = 1 << 16   # rows per pass: a few MB of float64 at a time, whatever the number of means


def covariance(means: np.ndarray) -> np.ndarray:
    """The (K, K) covariance of the rows of `means` (N, K), accumulated in float64 chunk by chunk."""
    means = np.asarray(means)
    n, k = means.shape
    mean = np.zeros(k)
    for i in range(0, n, CHUNK):
        mean += means[i:i + CHUNK].sum(0, dtype=np.float64)
    mean /= max(n, 1)
    cov = np.zeros((k, k))
    for i in range(0, n, CHUNK):
        c = means[i:i + CHUNK].astype(np.float64) - mean
        cov += c.T @ c
    return cov / max(n - 1, 1)


def plane_coords(projection, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The shown x and y of every point as float32 (N,) arrays: views into `points` for a pair of
    coordinates, the map's own columns for UMAP or t-SNE, a chunked product with the basis otherwise."""
    points = np.asarray(points)
    if getattr(projection, "kind", "") == "dims" and points.shape[1] > 1:
        i, j = projection.dims
        return points[:, i], points[:, j]
    if not hasattr(projection, "basis"):   # a UMAP or t-SNE map of these points
        xy = np.asarray(projection.to2d(points), np.float32)
        return xy[:, 0], xy[:, 1]
    basis = np.asarray(projection.basis, np.float32)
    out = np.empty((2, len(points)), np.float32)
    for i in range(0, len(points), CHUNK):
        out[:, i:i + CHUNK] = (points[i:i + CHUNK].astype(np.float32, copy=False) @ basis).T
    return out[0], out[1]
