"""How a K-dimensional latent space is shown in 2D, and how a 2D click is lifted back to a full z.

A projection is an orthonormal basis B (K x 2): the view shows B^T z. Because B is orthonormal,
the projected prior is again N(0, I) in 2D, so the prior circles stay exact. A click p is lifted
through an anchor a as z = a + B (p - B^T a): the shown coordinates become p, everything the view
cannot see is taken from the anchor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Projection:
    basis: np.ndarray          # (K, 2), orthonormal columns
    kind: str = "dims"         # "dims" (a pair of coordinates) or "pca"
    dims: tuple[int, int] = (0, 1)

    @property
    def latent_dim(self) -> int:
        return self.basis.shape[0]

    def to2d(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) @ self.basis

    def lift(self, p, anchor: np.ndarray) -> np.ndarray:
        a = np.asarray(anchor, dtype=np.float64)
        return (a + self.basis @ (np.asarray(p, dtype=np.float64) - self.basis.T @ a)).astype(np.float32)

    @property
    def axis_labels(self) -> tuple[str, str]:
        if self.kind == "pca":
            return "PC 1 of the means", "PC 2 of the means"
        return f"z{self.dims[0] + 1}", f"z{self.dims[1] + 1}"


def dims_projection(k: int, i: int = 0, j: int = 1) -> Projection:
    """Show coordinates i and j (for K = 1 the second axis is empty and always zero)."""
    basis = np.zeros((k, 2))
    basis[min(i, k - 1), 0] = 1.0
    if k > 1:
        if i == j:
            raise ValueError("the two shown dimensions must differ")
        basis[j, 1] = 1.0
    return Projection(basis=basis, kind="dims", dims=(min(i, k - 1), j if k > 1 else 0))


# Past this latent size (a diffusers VAE has thousands) a full SVD of the means costs seconds to
# minutes; the two top directions come from a randomized range finder instead (Halko et al. 2011).
EXACT_PCA_MAX_K = 256


def _top2_randomized(centred: np.ndarray, oversample: int = 10, power_iters: int = 4) -> np.ndarray:
    """The two leading right singular vectors of `centred` (N, K), (K, 2); seeded, so repeatable."""
    omega = np.random.default_rng(0).standard_normal((centred.shape[1], 2 + oversample))
    q, _ = np.linalg.qr(centred @ omega)
    for _ in range(power_iters):
        q, _ = np.linalg.qr(centred.T @ q)
        q, _ = np.linalg.qr(centred @ q)
    _, _, vt = np.linalg.svd(q.T @ centred, full_matrices=False)
    return vt[:2].T.copy()


def pca_projection(means: np.ndarray) -> Projection:
    """The first two principal directions of the posterior means (no whitening, so the prior stays N(0, I))."""
    means = np.asarray(means, dtype=np.float64)
    k = means.shape[1]
    if k < 2 or len(means) < 2:
        return dims_projection(k)
    centred = means - means.mean(0)
    if k > EXACT_PCA_MAX_K:
        basis = _top2_randomized(centred)
    else:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        basis = vt[:2].T.copy()
    # Fix the sign so the same model always gives the same picture.
    basis *= np.sign(basis[np.abs(basis).argmax(0), [0, 1]])
    return Projection(basis=basis, kind="pca")
