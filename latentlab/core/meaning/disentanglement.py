"""Disentanglement scores of the latent means against ground-truth factors, each in [0, 1]:

- MIG (Chen et al. 2018): per factor, the gap between the two largest mutual informations of one
  latent with it, over the factor's entropy, averaged over factors. Each latent is discretised into
  20 equal-width bins over its range (disentanglement_lib's histogram discretiser); MI in nats by
  scikit-learn's mutual_info_score. Computed on every point (a seeded 100,000 when there are more).
- DCI (Eastwood & Williams 2018): an importance matrix of the latents for each factor, from
  `lasso` (default: scikit-learn's LassoCV, 5 folds, of each standardised factor on the standardised
  latents; importance |coefficient|; informativeness: held-out R², clipped to [0, 1]) or `gbt`
  (disentanglement_lib's: a GradientBoostingClassifier per factor with scikit-learn's defaults;
  importance: its feature importances; informativeness: held-out accuracy; minutes rather than
  seconds). Disentanglement is 1 − the entropy (base: number of factors) of each latent's importance
  across factors, weighted by the latent's share of importance; completeness the same per factor
  across latents (base: number of latents).
- SAP (Kumar et al. 2018): per (latent, factor) a 1-D linear SVM (C = 0.01, balanced classes) predicts
  the factor's value from that latent alone; per factor, the gap between the two best held-out
  accuracies, averaged over factors.
- β-VAE and FactorVAE scores: see disentanglement_votes.

DCI and SAP train on a seeded 10,000 points and test on 5,000 others (two thirds and one third of
the points when there are fewer), as disentanglement_lib does. Factors with more than 20 distinct
values are binned into 20 equal-width bins and treated as discrete; a factor with one value is left
out. Latents that do not vary at all are left out (they carry nothing; kept, they would change
completeness's base), and the latents are put in a canonical order first, so that permuting them
changes no score.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from latentlab.core.errors import Cancelled, LatentLabError

from .disentanglement_votes import beta_vae_score, factor_vae_score

NUM_BINS = 20
MAX_FACTOR_VALUES = 20
MIG_POINTS = 100_000
TRAIN_POINTS, TEST_POINTS = 10_000, 5_000
ESTIMATORS = ("lasso", "gbt")
CONSTANT_VAR = 1e-12
MIN_POINTS = 30
ESTIMATOR_TEXT = {
    "lasso": "LassoCV (5 folds) of each standardised factor on the standardised latents; importance |coefficient|; "
             "informativeness: held-out R² clipped to [0, 1]",
    "gbt": "GradientBoostingClassifier per factor (scikit-learn defaults, as disentanglement_lib); importance: "
           "feature importances; informativeness: held-out accuracy",
}
DISCRETISATION = (f"each latent in {NUM_BINS} equal-width bins over its range (MIG); factors with more than "
                  f"{MAX_FACTOR_VALUES} values in {NUM_BINS} equal-width bins")


@dataclass(frozen=True, eq=False)
class FactorScores:
    mig: float
    disentanglement: float
    completeness: float
    informativeness: float
    sap: float
    beta_vae: float
    factor_vae: float
    importance: np.ndarray           # (K, F): DCI importance of latent k for factor f (0 for left-out latents)
    mutual_information: np.ndarray   # (K, F) nats
    factors: tuple[str, ...]
    estimator: str
    points: int
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict:
        """The keys `latentlab eval --factors --json` adds."""
        return {
            "mig": self.mig,
            "dci": {"disentanglement": self.disentanglement, "completeness": self.completeness,
                    "informativeness": self.informativeness},
            "sap": self.sap, "beta_vae": self.beta_vae, "factor_vae": self.factor_vae,
            "factor_scores": {"factors": list(self.factors), "points": self.points, "estimator": self.estimator,
                              "estimator_details": ESTIMATOR_TEXT[self.estimator], "discretisation": DISCRETISATION,
                              "notes": list(self.notes),
                              "importance": [[round(float(v), 6) for v in row] for row in self.importance]},
        }


class _Phases:
    def __init__(self, progress, should_stop, weights: dict[str, float]):
        self.progress, self.should_stop = progress, should_stop or (lambda: False)
        total = sum(weights.values())
        self.span, at = {}, 0.0
        for name, w in weights.items():
            self.span[name] = (at / total, (at + w) / total)
            at += w

    def tick(self, name: str):
        lo, hi = self.span[name]

        def report(fraction: float) -> None:
            if self.should_stop():
                raise Cancelled("The disentanglement scores were stopped.")
            if self.progress is not None:
                self.progress(lo + (hi - lo) * min(max(fraction, 0.0), 1.0), f"Disentanglement: {name}")
        return report


def factor_codes(factors: dict[str, np.ndarray]) -> tuple[np.ndarray, tuple[str, ...], list[str]]:
    """Each factor as integer codes 0..n-1 (N, F), the factor names kept, and notes on what was binned
    or left out."""
    columns, names, notes = [], [], []
    for name, values in factors.items():
        v = np.asarray(values, np.float64)
        uniques, codes = np.unique(v, return_inverse=True)
        if len(uniques) < 2:
            notes.append(f"factor {name} has one value and was left out")
            continue
        if len(uniques) > MAX_FACTOR_VALUES:
            codes = discretise(v[:, None])[:, 0]
            codes = np.unique(codes, return_inverse=True)[1]
            notes.append(f"factor {name} ({len(uniques):,} values) was binned into {NUM_BINS}")
        columns.append(codes.astype(np.int64))
        names.append(str(name))
    if len(columns) < 1:
        raise LatentLabError("No ground-truth factor varies over these points, so there is nothing to score.")
    return np.stack(columns, axis=1), tuple(names), notes


def discretise(z: np.ndarray, bins: int = NUM_BINS) -> np.ndarray:
    """Each column in `bins` equal-width bins over its range, as disentanglement_lib's histogram
    discretiser: codes 1..bins (N, K)."""
    out = np.empty(z.shape, np.int64)
    for k in range(z.shape[1]):
        edges = np.histogram(z[:, k], bins)[1]
        out[:, k] = np.digitize(z[:, k], edges[:-1])
    return out


def _canonical(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The varying latents in an order that does not depend on how they were numbered: columns sorted
    by their values at the first points (then by their sums). Returns the columns, their original
    indices, and a note on the constant ones left out."""
    var = z.var(0)
    keep = np.flatnonzero(var > CONSTANT_VAR * (1.0 + z.mean(0) ** 2))
    notes = [f"{z.shape[1] - len(keep)} latent(s) that never vary were left out"] if len(keep) < z.shape[1] else []
    if not len(keep):
        raise LatentLabError("No latent dimension varies over these points, so there is nothing to score.")
    cols = z[:, keep]
    keys = np.vstack([cols.sum(0), cols[:256][::-1]])   # lexsort's last key is its first
    order = np.lexsort(keys)
    return cols[:, order], keep[order], notes


def _plugin_mi(a: np.ndarray, b: np.ndarray) -> float:
    """The plug-in mutual information (nats) of two integer codes, from their joint histogram: what
    scikit-learn's mutual_info_score computes, with one bincount instead of a sparse contingency table
    (about a hundred times faster on 60,000 points)."""
    a = np.unique(a, return_inverse=True)[1]
    b = np.unique(b, return_inverse=True)[1]
    nb = int(b.max()) + 1
    joint = np.bincount(a * nb + b, minlength=(int(a.max()) + 1) * nb).reshape(-1, nb).astype(np.float64)
    p = joint / joint.sum()
    pa, pb = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float(max(0.0, (p[nz] * np.log(p[nz] / (pa @ pb)[nz])).sum()))


def mutual_information(zd: np.ndarray, codes: np.ndarray) -> np.ndarray:
    return np.array([[_plugin_mi(codes[:, f], zd[:, k]) for f in range(codes.shape[1])] for k in range(zd.shape[1])])


def mig(z: np.ndarray, codes: np.ndarray) -> tuple[float, np.ndarray]:
    """MIG and the (K, F) mutual information matrix (nats)."""
    m = mutual_information(discretise(z), codes)
    entropy = np.array([_plugin_mi(codes[:, f], codes[:, f]) for f in range(codes.shape[1])])
    top = np.sort(m, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros(codes.shape[1])
    return float(np.clip(np.mean((top[0] - second) / entropy), 0.0, 1.0)), m


def _entropy_score(p: np.ndarray, base: int) -> np.ndarray:
    """1 − entropy of each column of p (normalised), base `base`; 1 when there is one outcome."""
    if base < 2:
        return np.ones(p.shape[1])
    q = (p + 1e-11) / (p + 1e-11).sum(0, keepdims=True)
    return 1.0 - (-(q * np.log(q)).sum(0) / math.log(base))


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """Disentanglement and completeness of a (K, F) importance matrix, as disentanglement_lib."""
    r = np.abs(importance)
    if r.sum() == 0:
        r = np.ones_like(r)
    per_code = _entropy_score(r.T, r.shape[1])
    per_factor = _entropy_score(r, r.shape[0])
    d = float(np.sum(per_code * r.sum(1) / r.sum()))
    c = float(np.sum(per_factor * r.sum(0) / r.sum()))
    return float(np.clip(d, 0, 1)), float(np.clip(c, 0, 1))


def dci_importance(z_train, c_train, z_test, c_test, estimator: str, seed: int, tick) -> tuple[np.ndarray, float]:
    """The (K, F) importance matrix and the informativeness (mean over factors)."""
    k, f = z_train.shape[1], c_train.shape[1]
    importance, scores = np.zeros((k, f)), []
    mean, std = z_train.mean(0), z_train.std(0) + 1e-12
    xs, xt = (z_train - mean) / std, (z_test - mean) / std
    for j in range(f):
        if estimator == "gbt":
            importance[:, j], score = _gbt(xs, c_train[:, j], xt, c_test[:, j], seed, lambda p, j=j: tick((j + p) / f))
        else:
            importance[:, j], score = _lasso(xs, c_train[:, j], xt, c_test[:, j], seed)
        scores.append(score)
        tick((j + 1) / f)
    return importance, float(np.clip(np.mean(scores), 0.0, 1.0))


def _lasso(xs, y, xt, yt, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LassoCV

    mu, sd = y.mean(), y.std() + 1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LassoCV(cv=5, random_state=seed).fit(xs, (y - mu) / sd)
    pred = model.predict(xt) * sd + mu
    total = float(((yt - yt.mean()) ** 2).sum())
    r2 = 1.0 - float(((yt - pred) ** 2).sum()) / total if total > 0 else 0.0
    return np.abs(model.coef_), max(0.0, r2)


def _gbt(xs, y, xt, yt, seed, tick, step: int = 10, stages: int = 100):
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(random_state=seed, warm_start=True, n_estimators=0)
    for n in range(step, stages + 1, step):   # grown in steps, so that Stop is heard between them
        model.set_params(n_estimators=n)
        model.fit(xs, y)
        tick(n / stages)
    return np.abs(model.feature_importances_), float(np.mean(model.predict(xt) == yt))


def sap(z_train, c_train, z_test, c_test, tick) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    k, f = z_train.shape[1], c_train.shape[1]
    score = np.zeros((k, f))
    for i in range(k):
        for j in range(f):
            if len(np.unique(c_train[:, j])) < 2:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = LinearSVC(C=0.01, class_weight="balanced").fit(z_train[:, i:i + 1], c_train[:, j])
            score[i, j] = np.mean(model.predict(z_test[:, i:i + 1]) == c_test[:, j])
        tick((i + 1) / k)
    top = np.sort(score, axis=0)[::-1]
    second = top[1] if k > 1 else np.zeros(f)
    return float(np.clip(np.mean(top[0] - second), 0.0, 1.0))


def disentanglement_scores(means: np.ndarray, factors: dict[str, np.ndarray], *, estimator: str = "lasso",
                           seed: int = 0, progress: Callable[..., None] | None = None,
                           should_stop: Callable[[], bool] | None = None) -> FactorScores:
    """Every score of the means (N, K) against the factors (name -> (N,) values). progress(f, phase)
    is called along the way; should_stop() is polled between steps (Cancelled when it answers True)."""
    if estimator not in ESTIMATORS:
        raise LatentLabError(f"Unknown DCI estimator {estimator!r}: choose {' or '.join(ESTIMATORS)}.")
    z_all = np.asarray(means, np.float64)
    if z_all.ndim != 2 or not np.isfinite(z_all).all():
        raise LatentLabError("The latent means are not a finite (N, K) array, so no score can be computed.")
    if not factors or any(len(v) != len(z_all) for v in factors.values()):
        raise LatentLabError("The ground-truth factors do not give one value per point.")
    if len(z_all) < MIN_POINTS:
        raise LatentLabError(f"Disentanglement scores need at least {MIN_POINTS} points, not {len(z_all)}.")
    from threadpoolctl import threadpool_limits

    # These fits are small: on a busy machine, BLAS threads cost far more than they bring (a logistic
    # regression of 10,000 × 32 took 2.9 s with them, 0.18 s on one thread, side by side).
    with threadpool_limits(1, user_api="blas"):
        return _scores(z_all, factors, estimator, seed, progress, should_stop)


def _scores(z_all, factors, estimator, seed, progress, should_stop) -> FactorScores:
    phases = _Phases(progress, should_stop, {"MIG": 1, "DCI": 12 if estimator == "gbt" else 3, "SAP": 2,
                                             "β-VAE": 1, "FactorVAE": 1})
    phases.tick("MIG")(0.0)
    codes, names, notes = factor_codes(factors)
    z, kept, dropped = _canonical(z_all)
    notes += dropped
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(z))
    mig_rows = np.sort(order[:MIG_POINTS])
    mig_score, mi = mig(z[mig_rows], codes[mig_rows])
    phases.tick("MIG")(1.0)
    n_train = min(TRAIN_POINTS, (2 * len(z)) // 3)
    train, test = order[:n_train], order[n_train:n_train + TEST_POINTS]
    args = (z[train], codes[train], z[test], codes[test])
    importance, informativeness = dci_importance(*args, estimator, seed, phases.tick("DCI"))
    d, c = dci_from_importance(importance)
    sap_score = sap(*args, phases.tick("SAP"))
    beta = beta_vae_score(z, codes, rng, phases.tick("β-VAE"))
    fvae = factor_vae_score(z, codes, rng, phases.tick("FactorVAE"))
    full_importance, full_mi = np.zeros((z_all.shape[1], len(names))), np.zeros((z_all.shape[1], len(names)))
    full_importance[kept], full_mi[kept] = importance, mi
    return FactorScores(mig=mig_score, disentanglement=d, completeness=c, informativeness=informativeness,
                        sap=sap_score, beta_vae=beta["score"], factor_vae=fvae["score"], importance=full_importance,
                        mutual_information=full_mi, factors=names, estimator=estimator, points=len(z), notes=tuple(notes))


def model_factor_scores(model, data, *, estimator: str = "lasso", seed: int = 0, progress=None,
                        should_stop=None) -> FactorScores:
    """Encode the training images of `data` (a Dataset with factors) and score their means."""
    from latentlab.core.data.pixels import stored
    from latentlab.core.inference.analysis import encode

    if not data.factors_train:
        raise LatentLabError(f"{data.name} has no ground-truth factors (sprites, or an npz with a factors array, has).")
    x = data.x_train
    means = np.empty((len(x), model.latent_dim), np.float32)
    step = 8192
    for i in range(0, len(x), step):
        if should_stop is not None and should_stop():
            raise Cancelled("The disentanglement scores were stopped.")
        if progress is not None:
            progress(0.2 * i / len(x), f"Encoding {len(x):,} images")
        means[i:i + step] = encode(model, stored(x)[i:i + step], batch=1024)[0]
    inner = None if progress is None else (lambda f, phase=None: progress(0.2 + 0.8 * f, phase))
    return disentanglement_scores(means, data.factors_train, estimator=estimator, seed=seed, progress=inner,
                                  should_stop=should_stop)
