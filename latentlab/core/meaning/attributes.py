"""Attribute vectors: a direction in the latent space that means something, and how far to trust it.

A vector comes from two groups of points (two selections, two labels): the difference of their mean
codes, from group A to group B; or from a known factor: the direction of the linear regression of the
factor's value on the codes (the direction along which the factor, as predicted, grows fastest).

How much it can be trusted is measured twice:
- held out: the direction is fitted on a seeded 70% of each group, and the other 30% are projected on
  it; the AUC of that projection as a classifier of the two groups (1: it separates them perfectly,
  0.5: chance). For a factor, the held-out R² of the regression, and the AUC of the projection
  separating the factor's upper half from its lower half (above and below its median).
- bootstrap: the direction fitted again on resamples (with replacement) of the points; the mean cosine
  of those directions to the one from all the points (1: every resample points the same way).

α = 1 moves a code by the vector's `length`: from group A's mean to group B's along the direction (for
a factor, from the mean of its lower half to the mean of its upper half).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from latentlab.core.errors import Cancelled, LatentLabError
from latentlab.core.inference.projection import Projection, pca_projection
from latentlab.core.text import quote, short

HELD_OUT = 0.3
BOOTSTRAPS = 50
# Points kept per group (or per factor) when there are more: a seeded subset, so a vector over ten
# million points costs what one over a hundred thousand does.
MAX_POINTS = 100_000
PCA_POINTS = 200_000


@dataclass(frozen=True, eq=False)
class AttributeVector:
    direction: np.ndarray        # (K,) float64, unit length, pointing from A to B (or up the factor)
    length: float                # the latent distance α = 1 moves along it
    kind: str                    # "groups", "labels" or "factor"
    source: str                  # what A is (a label, "selection A", "x below its median")
    target: str                  # what B is
    auc: float                   # held-out AUC of the projection as a classifier of A and B
    cosine: float                # mean cosine of the bootstrap directions to this one
    r2: float | None = None      # held-out R² of the factor's regression (factor vectors only)
    n_source: int = 0
    n_target: int = 0
    held_out: int = 0            # points in the held-out part, both groups together
    bootstraps: int = 0

    @property
    def latent_dim(self) -> int:
        return len(self.direction)

    @property
    def title(self) -> str:
        return f"{self.source} → {self.target}"

    def codes(self, z: np.ndarray, alphas) -> np.ndarray:
        """z + α·v for each α, (len(alphas), K) float32; v = length × direction."""
        alphas = np.asarray(alphas, dtype=np.float64).reshape(-1, 1)
        return (np.asarray(z, np.float64)[None, :] + alphas * (self.length * self.direction)[None, :]).astype(np.float32)

    def grid_codes(self, zs: np.ndarray, alphas) -> np.ndarray:
        """One row per code of zs (n, K), one column per α: (n, len(alphas), K) float32."""
        return np.stack([self.codes(z, alphas) for z in np.asarray(zs)]) if len(zs) else \
            np.zeros((0, len(np.atleast_1d(alphas)), self.latent_dim), np.float32)

    def summary(self) -> dict:
        """The numbers `latentlab vector --json` prints."""
        out = {"kind": self.kind, "from": self.source, "to": self.target, "latent_dim": self.latent_dim,
               "auc": _num(self.auc), "cosine": _num(self.cosine), "length": _num(self.length),
               "n_from": self.n_source, "n_to": self.n_target, "held_out": self.held_out,
               "held_out_fraction": HELD_OUT, "bootstraps": self.bootstraps}
        if self.r2 is not None:
            out["r2"] = _num(self.r2)
            out["auc_of"] = "the factor's upper half against its lower half (above and below its median)"
        return out


def _num(v) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


@dataclass(frozen=True)
class VectorProjection(Projection):
    """The plane of an attribute vector: x along the vector, y along the first principal direction of
    the means orthogonal to it. Orthonormal, so the prior circles stay exact and clicks lift like PCA's."""

    names: tuple[str, str] = ("A", "B")

    @property
    def axis_labels(self) -> tuple[str, str]:
        return f"along the vector, {self.names[0]} → {self.names[1]}", "PC 1 of the means ⟂ the vector"


def vector_projection(vector: AttributeVector, means: np.ndarray, seed: int = 0) -> VectorProjection:
    """The vector's plane for these means (N, K): its direction, then the top principal direction of
    the means once their component along it is removed (at most PCA_POINTS seeded rows)."""
    d = np.asarray(vector.direction, np.float64)
    means = np.asarray(means)
    if means.ndim != 2 or means.shape[1] != len(d):
        raise LatentLabError(f"The vector has {len(d)} dimensions but the latent space has "
                             f"{means.shape[1] if means.ndim == 2 else '?'}.")
    if len(means) > PCA_POINTS:
        means = means[np.sort(np.random.default_rng(seed).choice(len(means), PCA_POINTS, replace=False))]
    second = np.zeros_like(d)
    if len(d) > 1:
        m = np.asarray(means, np.float64)
        rest = m - np.outer(m @ d, d)
        if len(rest) >= 2 and np.ptp(rest, axis=0).max() > 0:
            second = pca_projection(rest).basis[:, 0]
        else:   # no spread off the vector: any direction orthogonal to it
            second = np.eye(len(d))[int(np.argmin(np.abs(d)))]
        second = second - (second @ d) * d
        second /= np.linalg.norm(second)
    return VectorProjection(basis=np.stack([d, second], axis=1), kind="vector", names=(vector.source, vector.target))


def alpha_values(lo: float, hi: float, n: int) -> np.ndarray:
    return np.linspace(float(lo), float(hi), max(2, int(n)))


# ----- building a vector ------------------------------------------------------------------------------
class _Ticks:
    def __init__(self, progress, should_stop, total: int):
        self.progress, self.should_stop, self.total = progress, should_stop or (lambda: False), max(1, total)

    def __call__(self, done: int) -> None:
        if self.should_stop():
            raise Cancelled("Building the vector was stopped.")
        if self.progress is not None:
            self.progress(min(1.0, done / self.total))


def _capped(z: np.ndarray, rng) -> np.ndarray:
    z = np.asarray(z)
    if len(z) > MAX_POINTS:
        z = z[np.sort(rng.choice(len(z), MAX_POINTS, replace=False))]
    return np.asarray(z, np.float64)


def _split(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    held = min(n - 1, max(1, round(n * HELD_OUT)))
    return order[held:], order[:held]


def _unit(v: np.ndarray) -> np.ndarray | None:
    norm = float(np.linalg.norm(v))
    return v / norm if np.isfinite(norm) and norm > 1e-12 else None


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half (the Mann–Whitney U over n⁺n⁻)."""
    from scipy.stats import rankdata

    pos, neg = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    if not len(pos) or not len(neg):
        return float("nan")
    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _check_codes(z, what: str) -> None:
    if z.ndim != 2 or not np.isfinite(z).all():
        raise LatentLabError(f"The codes of {what} are not a finite (N, K) array.")


def vector_between(za, zb, *, names=("A", "B"), kind: str = "groups", seed: int = 0, bootstraps: int = BOOTSTRAPS,
                   progress: Callable[[float], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> AttributeVector:
    """The vector from group A's mean code to group B's (codes (n_a, K) and (n_b, K))."""
    rng = np.random.default_rng(seed)
    za, zb = _capped(za, rng), _capped(zb, rng)
    for z, name in ((za, names[0]), (zb, names[1])):
        _check_codes(z, name)
        if len(z) < 2:
            raise LatentLabError(f"{name} holds {len(z)} point(s); a vector needs at least 2 in each group.")
    if za.shape[1] != zb.shape[1]:
        raise LatentLabError("The two groups' codes have different latent sizes.")
    diff = zb.mean(0) - za.mean(0)
    direction = _unit(diff)
    if direction is None:
        raise LatentLabError(f"{names[0]} and {names[1]} have the same mean code, so they define no direction.")
    tick = _Ticks(progress, should_stop, bootstraps + 1)
    (ta, ha), (tb, hb) = _split(len(za), rng), _split(len(zb), rng)
    fitted = _unit(zb[tb].mean(0) - za[ta].mean(0))
    held_auc = auc(zb[hb] @ fitted, za[ha] @ fitted) if fitted is not None else 0.5
    tick(1)
    cosines = []
    for i in range(bootstraps):
        d = _unit(zb[rng.integers(0, len(zb), len(zb))].mean(0) - za[rng.integers(0, len(za), len(za))].mean(0))
        cosines.append(0.0 if d is None else float(d @ direction))
        tick(i + 2)
    return AttributeVector(direction=direction, length=float(np.linalg.norm(diff)), kind=kind, source=names[0],
                           target=names[1], auc=held_auc, cosine=float(np.mean(cosines)) if cosines else float("nan"),
                           n_source=len(za), n_target=len(zb), held_out=len(ha) + len(hb), bootstraps=bootstraps)


def _regress(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares weights w (K,) of y ≈ w·z + b (the minimum-norm solution when dimensions are collapsed)."""
    x = np.c_[z - z.mean(0), np.ones(len(z))]
    coef, *_ = np.linalg.lstsq(x, y - y.mean(), rcond=None)
    return coef[:-1]


def vector_for_factor(z, values, name: str, *, seed: int = 0, bootstraps: int = BOOTSTRAPS,
                      progress: Callable[[float], None] | None = None,
                      should_stop: Callable[[], bool] | None = None) -> AttributeVector:
    """The direction of the linear regression of a factor's values (N,) on the codes (N, K)."""
    rng = np.random.default_rng(seed)
    z, y = np.asarray(z), np.asarray(values, np.float64)
    if len(z) != len(y):
        raise LatentLabError(f"The factor {name} has {len(y):,} values for {len(z):,} codes.")
    if len(z) > MAX_POINTS:
        keep = np.sort(rng.choice(len(z), MAX_POINTS, replace=False))
        z, y = z[keep], y[keep]
    z = np.asarray(z, np.float64)
    _check_codes(z, f"the factor {name}")
    if len(z) < 4 or not np.isfinite(y).all() or np.ptp(y) == 0:
        raise LatentLabError(f"The factor {name} does not vary over at least 4 points, so it defines no direction.")
    direction = _unit(_regress(z, y))
    if direction is None:
        raise LatentLabError(f"The codes do not predict the factor {name} at all, so it defines no direction.")
    tick = _Ticks(progress, should_stop, bootstraps + 1)
    train, held = _split(len(z), rng)
    w = _regress(z[train], y[train])
    pred = (z[held] - z[train].mean(0)) @ w + y[train].mean()
    total = float(((y[held] - y[held].mean()) ** 2).sum())
    r2 = 1.0 - float(((y[held] - pred) ** 2).sum()) / total if total > 0 else float("nan")
    lower, upper = _halves(y)
    fitted = _unit(w)
    hl, hu = held[lower[held]], held[upper[held]]
    held_auc = auc(z[hu] @ fitted, z[hl] @ fitted) if fitted is not None else 0.5
    tick(1)
    cosines = []
    for i in range(bootstraps):
        rows = rng.integers(0, len(z), len(z))
        d = _unit(_regress(z[rows], y[rows])) if np.ptp(y[rows]) > 0 else None
        cosines.append(0.0 if d is None else float(d @ direction))
        tick(i + 2)
    length = abs(float((z[upper].mean(0) - z[lower].mean(0)) @ direction))
    return AttributeVector(direction=direction, length=length if length > 1e-12 else 1.0, kind="factor",
                           source=f"{name} low", target=f"{name} high", auc=held_auc,
                           cosine=float(np.mean(cosines)) if cosines else float("nan"), r2=r2,
                           n_source=int(lower.sum()), n_target=int(upper.sum()), held_out=len(held),
                           bootstraps=bootstraps)


def _halves(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the values below and above the median (at or above it when nothing lies above)."""
    m = float(np.median(y))
    upper, lower = y > m, y < m
    if not upper.any():
        upper = y >= m
    if not lower.any():
        lower = ~upper
    return lower, upper


def label_index(label_names, text: str) -> int:
    """The class a `--from label:NAME` names: its name, else its number."""
    names = [str(n) for n in label_names]
    if text in names:
        return names.index(text)
    try:
        i = int(text)
    except ValueError:
        i = -1
    if 0 <= i < len(names):
        return i
    shown = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
    raise LatentLabError(f"No label {quote(text)} in this dataset (its labels: {short(shown, 200)}).")
