"""The datasets that need no file: scikit-learn's bundled 8×8 digits and the generated sprites."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import sprites
from .dataset import TEST_FRACTION, Dataset, make_dataset, split_dataset

SPRITES_COUNT = 12_000


def load_digits(spec: str) -> Dataset:
    images, target = digits_arrays()
    x = (images / 16.0).astype(np.float32)
    return split_dataset(spec, "digits", x, target, [str(i) for i in range(10)], "digits")


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits. Importing sklearn.datasets costs about a second, most of the
    app's time to a first scatter, so the bundled CSV is read directly where it is found; the
    public loader is the fallback if scikit-learn ever moves it."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            raw = np.loadtxt(path, delimiter=",", dtype=np.float64)
            return raw[:, :-1].reshape(-1, 8, 8), raw[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    return digits.images, digits.target


def load_sprites(spec: str, seed: int) -> Dataset:
    # The generated order is already random, so the last 20% is an unbiased test set.
    x, factors = sprites.generate(SPRITES_COUNT, seed=seed)
    y = factors["shape"].astype(np.int64)
    n_test = round(SPRITES_COUNT * TEST_FRACTION)
    head = {k: np.ascontiguousarray(v[:-n_test]) for k, v in factors.items()}
    tail = {k: np.ascontiguousarray(v[-n_test:]) for k, v in factors.items()}
    return make_dataset(
        spec, "sprites", x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:], sprites.SHAPES, (head, tail)
    )

