"""The Dataset every loader returns, and the one way a dataset without a test set is split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentlab.core.errors import DatasetError

from .pixels import Pixels, as_pixels

TEST_FRACTION = 0.2
# The split permutation has its own fixed seed, so the test set never depends on the training
# seed: results from different runs are always measured on the same images.
SPLIT_SEED = 0


# eq=False: comparing or hashing by value is meaningless (and fails) for numpy array fields.
@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test pair of images with integer labels.

    x_* are Pixels (core.data.pixels): (N, C, H, W) images, C is 1 or 3, stored as uint8 when the source
    is 8-bit and as float32 otherwise; indexing them, x_train[rows], always gives float32 in [0, 1].
    Arrays passed in are wrapped. y_* are int64 (N,) indices into label_names. factors_* hold
    ground-truth generative factors where they are known (sprites): factor name -> float32 (N,).
    """

    spec: str
    name: str
    x_train: Pixels
    y_train: np.ndarray
    x_test: Pixels
    y_test: np.ndarray
    label_names: tuple[str, ...]
    factors_train: dict[str, np.ndarray] | None = None
    factors_test: dict[str, np.ndarray] | None = None

    def __post_init__(self):
        object.__setattr__(self, "x_train", as_pixels(self.x_train))
        object.__setattr__(self, "x_test", as_pixels(self.x_test))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return tuple(self.x_train.shape[1:])

    @property
    def pixel_bytes(self) -> int:
        """Bytes a pixel takes in memory (1 for 8-bit sources; 0 for images streamed from disk, which
        only ever hold a batch), for the memory budget of training."""
        return 0 if getattr(self.x_train, "streamed", False) else self.x_train.stored.dtype.itemsize

    @property
    def continuous(self) -> bool:
        """True unless the pixels are nearly binary (more than 80% within 0.05 of 0 or 1).

        Sprites count as binary, the 8×8 digits (17 grey levels, ~40% in between) as continuous.
        It is a hint for choosing a likelihood, not a rule: both likelihoods accept any data in [0, 1].
        """
        sample = self.x_train[:2000]
        return bool(np.mean((sample > 0.05) & (sample < 0.95)) > 0.2)


def split_indices(n: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: a fixed permutation, the last 20% (at least one example) is test."""
    if n < 2:
        raise DatasetError(f"{where} holds {n} example(s); at least 2 are needed to hold out a test set.")
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = max(1, round(n * TEST_FRACTION))
    return order[:-n_test], order[-n_test:]


def make_dataset(spec, name, x_train, y_train, x_test, y_test, label_names, factors=(None, None)) -> Dataset:
    """A Dataset from already validated arrays: images (N, H, W) or (N, C, H, W), uint8 (0..255) or
    float in [0, 1] (stored as float32); labels."""
    def images(x):
        x = np.ascontiguousarray(x, dtype=None if x.dtype == np.uint8 else np.float32)
        return x[:, None] if x.ndim == 3 else x

    return Dataset(
        spec=spec,
        name=name,
        x_train=images(x_train),
        y_train=np.ascontiguousarray(y_train, dtype=np.int64),
        x_test=images(x_test),
        y_test=np.ascontiguousarray(y_test, dtype=np.int64),
        label_names=tuple(str(n) for n in label_names),
        factors_train=factors[0],
        factors_test=factors[1],
    )


def split_dataset(spec, name, x, y, label_names, where, factors: dict | None = None) -> Dataset:
    """A Dataset from images and labels (and ground-truth factors, name -> (N,)) without a test set:
    a fixed 20% of them is held out."""
    train, test = split_indices(len(x), where)
    parts = (None, None) if factors is None else tuple({k: np.ascontiguousarray(v[rows]) for k, v in factors.items()}
                                                       for rows in (train, test))
    return make_dataset(spec, name, x[train], y[train], x[test], y[test], label_names, parts)
