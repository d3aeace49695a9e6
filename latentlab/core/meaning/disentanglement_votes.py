"""The two disentanglement scores that sample batches of points sharing one factor's value: the
β-VAE score (Higgins et al. 2017) and the FactorVAE score (Kim & Mnih 2018), with the protocols of
disentanglement_lib (batches of 64, 10,000 training and 5,000 evaluation votes, dimensions whose
standard deviation is below 0.05 pruned for FactorVAE).

A generative dataset can draw new images with one factor held fixed; a finite dataset cannot, so
both protocols draw from the points themselves: a factor is chosen at random, then an anchor point
(among those whose value of that factor is shared by at least one other point), and the partners are
drawn from the points sharing the anchor's value. The other factors vary as they do in the data.
"""

from __future__ import annotations

import warnings

import numpy as np

BATCH = 64
TRAIN_VOTES, EVAL_VOTES = 10_000, 5_000
VARIANCE_POINTS = 10_000
PRUNE_STD = 0.05
_CHUNK = 500          # votes drawn at a time (CHUNK × BATCH × K values in memory)


class _Groups:
    """For one factor: the points sorted by value, where each value's run starts and how long it is."""

    def __init__(self, codes: np.ndarray):
        self.order = np.argsort(codes, kind="stable")
        values, self.start, self.size = np.unique(codes[self.order], return_index=True, return_counts=True)
        self.position = np.empty(len(codes), np.int64)    # where each point sits in the sorted order
        self.position[self.order] = np.arange(len(codes))
        self.group = np.searchsorted(values, codes)       # each point's value, as a group number
        self.eligible = np.flatnonzero(self.size[self.group] >= 2)

    def partners(self, anchors: np.ndarray, rng) -> np.ndarray:
        """For each anchor, another point (never itself) with the same value."""
        g = self.group[anchors]
        offset = (self.position[anchors] - self.start[g] + 1 + rng.integers(0, self.size[g] - 1)) % self.size[g]
        return self.order[self.start[g] + offset]

    def members(self, anchors: np.ndarray, count: int, rng) -> np.ndarray:
        """`count` points (drawn with replacement) sharing each anchor's value: (len(anchors), count)."""
        g = self.group[anchors]
        return self.order[self.start[g][:, None] + rng.integers(0, self.size[g][:, None], (len(g), count))]


def _factors_drawn(groups: list[_Groups], n: int, rng) -> np.ndarray:
    usable = np.flatnonzero([len(g.eligible) > 0 for g in groups])
    return usable[rng.integers(0, len(usable), n)]


def _votes(z, groups, n, rng, tick, features):
    """n (factor, feature) draws: features(factor, anchors (m,)) -> (m, ...) per chunk of votes."""
    factor = _factors_drawn(groups, n, rng)
    out = []
    for i in range(0, n, _CHUNK):
        chunk = factor[i:i + _CHUNK]
        part = [None] * len(chunk)
        for k in np.unique(chunk):
            at = np.flatnonzero(chunk == k)
            g = groups[k]
            anchors = g.eligible[rng.integers(0, len(g.eligible), (len(at), BATCH))]
            result = features(k, anchors)
            for j, a in enumerate(at):
                part[a] = result[j]
        out.extend(part)
        tick(min(1.0, (i + _CHUNK) / n))
    return factor, np.asarray(out)


def beta_vae_score(z: np.ndarray, codes: np.ndarray, rng, tick=lambda f: None) -> dict:
    """Accuracy of a logistic regression that tells, from the mean absolute difference of the codes
    of 64 pairs sharing one factor's value, which factor that was (chance: 1 / number of factors)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    groups = [_Groups(codes[:, j]) for j in range(codes.shape[1])]

    def features(k, anchors):
        partners = groups[k].partners(anchors.ravel(), rng).reshape(anchors.shape)
        return np.abs(z[anchors] - z[partners]).mean(1)

    y_train, x_train = _votes(z, groups, TRAIN_VOTES, rng, lambda f: tick(0.6 * f), features)
    y_eval, x_eval = _votes(z, groups, EVAL_VOTES, rng, lambda f: tick(0.6 + 0.3 * f), features)
    if len(np.unique(y_train)) < 2:
        return {"score": 1.0, "train_accuracy": 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(max_iter=1000, random_state=0).fit(x_train, y_train)
    tick(1.0)
    return {"score": float(model.score(x_eval, y_eval)), "train_accuracy": float(model.score(x_train, y_train))}


def factor_vae_score(z: np.ndarray, codes: np.ndarray, rng, tick=lambda f: None) -> dict:
    """Majority-vote accuracy: for 64 points sharing one factor's value, the dimension whose variance
    (relative to its variance over all points) is smallest votes for that factor; each dimension is
    then assigned the factor it was voted for most, and the score is the share of evaluation votes it
    classifies rightly (chance: about 1 / number of factors)."""
    sample = z if len(z) <= VARIANCE_POINTS else z[rng.choice(len(z), VARIANCE_POINTS, replace=False)]
    variance = sample.var(0, ddof=1)
    active = np.flatnonzero(np.sqrt(variance) >= PRUNE_STD)
    if not len(active):
        return {"score": 0.0, "train_accuracy": 0.0, "active_dims": 0}
    scaled = z[:, active] / np.sqrt(variance[active])
    groups = [_Groups(codes[:, j]) for j in range(codes.shape[1])]

    def features(k, anchors):
        batch = groups[k].members(anchors[:, 0], BATCH, rng)
        return np.argmin(scaled[batch].var(1, ddof=1), axis=1)

    f_train, d_train = _votes(scaled, groups, TRAIN_VOTES, rng, lambda f: tick(0.6 * f), features)
    f_eval, d_eval = _votes(scaled, groups, EVAL_VOTES, rng, lambda f: tick(0.6 + 0.4 * f), features)
    votes = np.zeros((codes.shape[1], len(active)), np.int64)
    np.add.at(votes, (f_train, d_train), 1)
    classifier = np.argmax(votes, axis=0)
    return {"score": float(np.mean(classifier[d_eval] == f_eval)),
            "train_accuracy": float(np.mean(classifier[d_train] == f_train)), "active_dims": int(len(active))}
