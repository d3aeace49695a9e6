"""Views of a spatial latent, C×h×w (every latent-diffusion autoencoder), that keep its layout: the
means as C channel maps, KL per channel and per position, traversals of one channel at one
position, and PCA over the C channels (every position of every image a sample), shown as RGB.

Latents arrive flat (N, K) as everywhere in latentlab, K = C·h·w in the model's own (C, h, w) order.
"""

from __future__ import annotations

import math

import numpy as np


def is_spatial(latent_shape) -> bool:
    return len(tuple(latent_shape)) == 3 and math.prod(latent_shape) > 0


def channel_maps(mu_row: np.ndarray, shape) -> np.ndarray:
    """One image's posterior mean as C maps (C, h, w)."""
    return np.asarray(mu_row, np.float32).reshape(tuple(shape))


def kl_maps(kl_per_dim: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """Mean KL per dimension (K,) as (per channel (C,) summed over positions, per position (h, w)
    summed over channels): the two add up to the same total."""
    kl = np.asarray(kl_per_dim, np.float64).reshape(tuple(shape))
    return kl.sum((1, 2)), kl.sum(0)


def position_traversal(anchor: np.ndarray, shape, channel: int, row: int, col: int, values) -> np.ndarray:
    """Codes (len(values), K): the anchor with channel `channel` at position (row, col) swept through `values`."""
    c, h, w = tuple(shape)
    if not (0 <= channel < c and 0 <= row < h and 0 <= col < w):
        raise ValueError(f"channel {channel} at ({row}, {col}) is outside a {c}×{h}×{w} latent")
    codes = np.repeat(np.asarray(anchor, np.float32).reshape(1, -1), len(values), 0)
    codes[:, (channel * h + row) * w + col] = np.asarray(values, np.float32)
    return codes


def channel_traversal(anchor: np.ndarray, shape, channel: int, values) -> np.ndarray:
    """Codes (len(values), K): the whole channel map shifted by each value (a global change of one channel)."""
    c, h, w = tuple(shape)
    codes = np.repeat(np.asarray(anchor, np.float32).reshape(1, c, h, w), len(values), 0)
    codes[:, channel] += np.asarray(values, np.float32)[:, None, None]
    return codes.reshape(len(values), -1)


MAX_PCA_ROWS = 200_000


def channel_pca(mu: np.ndarray, shape, n: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA over channels: each position of each image is one C-vector. Returns (mean (C,), components
    (n, C), explained variance ratio (n,)), fitted on at most MAX_PCA_ROWS seeded vectors."""
    c = tuple(shape)[0]
    vec = np.asarray(mu, np.float32).reshape(len(mu), c, -1).transpose(0, 2, 1).reshape(-1, c)
    if len(vec) > MAX_PCA_ROWS:
        vec = vec[np.random.default_rng(seed).choice(len(vec), MAX_PCA_ROWS, replace=False)]
    vec = vec.astype(np.float64)
    mean = vec.mean(0)
    _, s, vt = np.linalg.svd(vec - mean, full_matrices=False)
    var = s ** 2
    ratio = var / var.sum() if var.sum() > 0 else np.zeros_like(var)
    k = min(n, c)
    comps = np.zeros((n, c))
    comps[:k] = vt[:k]
    out_ratio = np.zeros(n)
    out_ratio[:k] = ratio[:k]
    return mean, comps, out_ratio


def pca_image(mu_row: np.ndarray, shape, mean: np.ndarray, comps: np.ndarray) -> np.ndarray:
    """One image's latent projected on the channel components as an RGB image (3, h, w) in [0, 1]
    (each component scaled to its own range over the image)."""
    c, h, w = tuple(shape)
    vec = np.asarray(mu_row, np.float64).reshape(c, h * w).T - mean
    proj = (vec @ comps[:3].T).T.reshape(3, h, w)
    lo = proj.min((1, 2), keepdims=True)
    hi = proj.max((1, 2), keepdims=True)
    return ((proj - lo) / np.where(hi > lo, hi - lo, 1.0)).astype(np.float32)
