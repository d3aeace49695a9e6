"""How a K-dimensional latent space is shown in 2D, and how a 2D click is lifted back to a full z.

A projection is an orthonormal basis B (K x 2): the view shows B^T z. Because B is orthonormal,
the projected prior is again N(0, I) in 2D, so the prior circles stay exact. A click p is lifted
through an anchor a as z = a + B (p - B^T a): the shown coordinates become p, everything the view
cannot see is taken from the anchor.

UMAP and t-SNE maps (further down; core.inference.maps fits them) are not linear: they come with their
own way back from 2D.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
        if self.kind == "dims" and self.latent_dim > 1:   # the product's numbers, at a third of the cost
            return np.asarray(z)[..., list(self.dims)].astype(np.float64)
        return np.asarray(z, dtype=np.float64) @ self.basis

    def lift(self, p, anchor: np.ndarray) -> np.ndarray:
        return self.lift_many(np.reshape(p, (1, 2)), anchor)[0]

    def lift_many(self, points, anchor: np.ndarray) -> np.ndarray:
        """Each 2-D point (M, 2) lifted through the same anchor: (M, K) float32."""
        a = np.asarray(anchor, dtype=np.float64)
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return (a + (p - self.basis.T @ a) @ self.basis.T).astype(np.float32)

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


# --- Non-linear maps: UMAP and t-SNE of the latent means (fitted in core.inference.maps) -------------
#
# Neither keeps the prior N(0, I) meaningful in 2D, so views draw no prior circles for them. A click is
# lifted back to a latent code by UMAP's inverse transform, or, for t-SNE, which has none, by taking
# the latent mean of the nearest shown point.

@dataclass(frozen=True, eq=False)
class Embedding:
    """2-D coordinates of every latent mean from a non-linear map, and how to lift a 2-D point back."""

    kind: str                  # "umap" or "tsne"
    coords: np.ndarray         # (N, 2) float32, in the order of the means
    means: np.ndarray          # (N, K) the latent means it was computed from
    fitted: np.ndarray         # indices of the means the map was fitted on (all when N <= the cap)
    model: object = None       # the fitted umap.UMAP (None for t-SNE)
    _tree: object = field(default=None, init=False, repr=False)

    def __post_init__(self):
        # Built where the map is made (a worker), not on the first click: ~1 s at a million points.
        from scipy.spatial import cKDTree

        object.__setattr__(self, "_tree", cKDTree(self.coords))

    @property
    def latent_dim(self) -> int:
        return self.means.shape[1]

    @property
    def axis_labels(self) -> tuple[str, str]:
        name = "UMAP" if self.kind == "umap" else "t-SNE"
        return f"{name} 1 of the means", f"{name} 2 of the means"

    @property
    def lift_note(self) -> str:
        """How a clicked point becomes a latent code, for the decoded view's caption."""
        if self.kind == "umap":
            return "decoded through UMAP's inverse transform"
        return "decoded from the latent mean of the nearest data point (t-SNE has no inverse)"

    def nearest(self, p, k: int = 1) -> int | np.ndarray:
        """Index of the shown point nearest to the 2-D point p (the k nearest, nearest first, for k > 1)."""
        found = self._tree.query(np.asarray(p, dtype=np.float64).reshape(2), k=min(k, len(self.coords)))[1]
        return int(found) if k == 1 else np.atleast_1d(found)

    def lift(self, p) -> np.ndarray:
        """A latent code (K,) float32 for the 2-D point p."""
        return self.lift_many(np.reshape(p, (1, 2)))[0]

    def lift_many(self, points) -> np.ndarray:
        """Latent codes (M, K) float32 for 2-D points (M, 2), each as lift gives it, with one inverse
        transform for them all: UMAP's triangulates the whole map on every call (seconds)."""
        return self._lifted(points)[0]

    def lift_with_note(self, p) -> tuple[np.ndarray, str]:
        """A latent code for p and how it was found (for the decoded view's caption).

        UMAP's inverse transform can miss at the rim of a cluster (it interpolates between fitted
        points); when its answer lies well outside the latent neighbourhood of the points shown around
        p, the nearest shown point's latent mean is used instead, and the note says so."""
        codes, inverted = self._lifted(np.reshape(p, (1, 2)))
        return codes[0], (self.lift_note if inverted[0] else "decoded from the latent mean of the nearest data point"
                          + (" (t-SNE has no inverse)" if self.kind == "tsne" else " (UMAP's inverse fell outside the data here)"))

    def _lifted(self, points) -> tuple[np.ndarray, np.ndarray]:
        """Codes for 2-D points (M, 2), and which of them UMAP's inverse gave (the others: the latent
        mean of the nearest shown point)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        codes = np.asarray(self.means[self._tree.query(p)[1]], dtype=np.float32)
        inverted = np.zeros(len(p), dtype=bool)
        if self.kind == "umap" and len(p):
            z = np.asarray(self.model.inverse_transform(p), dtype=np.float32)
            k = min(10, len(self.coords))
            around = self.means[self._tree.query(p, k=k)[1].reshape(len(p), k)]   # (M, k, K)
            centre = around.mean(1)
            radius = np.linalg.norm(around - centre[:, None], axis=2).max(1)
            inverted = np.isfinite(z).all(1) & (np.linalg.norm(z - centre, axis=1) <= 2.0 * radius + 1e-6)
            codes[inverted] = z[inverted]
        return codes, inverted


class EmbeddedProjection:
    """A UMAP or t-SNE map (core.inference.projection.Embedding) behind the face of a linear Projection.

    The means it was computed from are shown at their map coordinates. A code lifted from a click is
    shown where it was clicked; any other code (a path, an endpoint) at the place of its nearest fitted
    mean, since neither map can place a new code cheaply."""

    dims = (0, 1)
    PLACED_MAX = 256

    def __init__(self, embedding, points: np.ndarray):
        self.embedding = embedding
        self.kind = embedding.kind
        self.points = points
        self._placed: dict[bytes, tuple[float, float]] = {}

    @property
    def latent_dim(self) -> int:
        return self.embedding.latent_dim

    @property
    def axis_labels(self) -> tuple[str, str]:
        return self.embedding.axis_labels

    def covers(self, points) -> bool:
        return points is not None and (points is self.points or points is self.embedding.means)

    def to2d(self, z) -> np.ndarray:
        if self.covers(z):
            return self.embedding.coords
        z = np.asarray(z, dtype=np.float32)
        rows = z.reshape(-1, z.shape[-1])
        out = np.empty((len(rows), 2))
        fitted = self.embedding.fitted
        ref = self.embedding.means[fitted]
        for i, row in enumerate(rows):
            placed = self._placed.get(row.tobytes())
            if placed is None:
                placed = self.embedding.coords[fitted[int(np.argmin(((ref - row) ** 2).sum(1)))]]
            out[i] = placed
        return out[0] if z.ndim == 1 else out

    def lift(self, p, anchor=None) -> np.ndarray:
        return self.embedding.lift(p)

    def lift_many(self, points, anchor=None) -> np.ndarray:
        return self.embedding.lift_many(points)

    def lift_with_note(self, p, anchor=None) -> tuple[np.ndarray, str]:
        return self.embedding.lift_with_note(p)

    def place(self, z: np.ndarray, p) -> None:
        """Remember that z was lifted from the view position p (GUI thread only)."""
        if len(self._placed) >= self.PLACED_MAX:
            self._placed.pop(next(iter(self._placed)))
        self._placed[np.asarray(z, np.float32).tobytes()] = (float(p[0]), float(p[1]))
