"""Checking arrays of images and labels, from a file or handed to the Python API, and bringing them
to the forms a Dataset stores (core.data.pixels)."""

from __future__ import annotations

import numpy as np

from latentlab.core.errors import DatasetError


def images_from_array(x: np.ndarray, source, key: str) -> np.ndarray:
    """Images (N, C, H, W) as a Dataset stores them: uint8 (0..255) when the array holds integers,
    float32 in [0, 1] otherwise; `source` (a file, or words for where the array came from) and `key`
    name it in the error sentence.

    Values are read as the array's own scale: uint8 always as 0..255; other integers and floats as
    0..1 when none exceeds 1, else as 0..255. Layout rule for 4-D arrays: axis 1 holds the channels
    when its length is 1 or 3 (N, C, H, W); otherwise the last axis does when its length is 1 or 3
    (N, H, W, C).
    """
    where = f"In {source}, {key}"
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"{where} has dtype {x.dtype}; expected numbers.")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if x.shape[1] not in (1, 3):
            if x.shape[3] not in (1, 3):
                raise DatasetError(
                    f"{where} has shape {x.shape}; a 4-D array needs 1 or 3 channels on axis 1 or on the last axis."
                )
            x = x.transpose(0, 3, 1, 2)
    else:
        raise DatasetError(f"{where} has shape {x.shape}; expected N×H×W, N×C×H×W or N×H×W×C.")
    if 0 in x.shape:
        raise DatasetError(f"{where} is empty (shape {x.shape}).")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind in "biu":
        lo, hi = int(x.min()), int(x.max())
        _check_range(lo, hi, where)
        # 0/1 integers are 0 and 1.0, so they are stored as 0 and 255: exactly those values once divided.
        return (x * np.uint8(255)).astype(np.uint8) if hi <= 1 else x.astype(np.uint8)
    x = x.astype(np.float32)
    lo, hi = np.inf, -np.inf
    # In slices: a whole-array isfinite would build a boolean temporary of one byte per value.
    for i in range(0, len(x), _CHECK_ROWS):
        part = x[i:i + _CHECK_ROWS]
        if not np.isfinite(part).all():
            raise DatasetError(f"{where} contains NaN or infinite values.")
        lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    _check_range(lo, hi, where)
    if hi > 1:
        x /= np.float32(255.0)
    return x


_CHECK_ROWS = 16384


def _check_range(lo, hi, where: str) -> None:
    if lo < 0:
        raise DatasetError(f"{where} contains negative values (minimum {lo:g}); expected 0..1 or 0..255.")
    if hi > 255:
        raise DatasetError(f"{where} contains values up to {hi:g}; expected 0..1 or 0..255.")


def labels_from_array(y: np.ndarray | None, n: int, source, key: str) -> np.ndarray | None:
    """Labels as int64 (n,), checked: 1-D integers, one per image, none negative and none beyond
    int64 (a uint64 2**64 - 1 would otherwise wrap to -1); None stays None."""
    if y is None:
        return None
    if y.dtype.kind not in "biu" or y.ndim != 1:
        raise DatasetError(f"In {source}, {key} must be a 1-D array of integers, not {y.dtype} of shape {y.shape}.")
    if len(y) != n:
        raise DatasetError(f"In {source}, {key} has {len(y)} labels for {n} images.")
    if n and y.min() < 0:
        raise DatasetError(f"In {source}, {key} contains the negative label {int(y.min())}.")
    if n and int(y.max()) > np.iinfo(np.int64).max:
        raise DatasetError(f"In {source}, {key} contains the label {int(y.max()):,}, beyond what a label may be "
                           f"(at most {np.iinfo(np.int64).max:,}).")
    return y.astype(np.int64)


def label_classes(y: np.ndarray, y_test: np.ndarray | None = None):
    """(y, y_test, label names): arbitrary non-negative labels (say 3 and 10**9) as contiguous
    classes 0..n-1 named by their values, so that a large label costs nothing."""
    values = np.unique(y if y_test is None else np.concatenate([y, y_test]))
    return (np.searchsorted(values, y), None if y_test is None else np.searchsorted(values, y_test),
            tuple(str(v) for v in values))
