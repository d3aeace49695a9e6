"""Checking arrays of images and labels, from a file or handed to the Python API, and bringing them
to the one form a Dataset holds."""

from __future__ import annotations

import numpy as np

from latentlab.core.errors import DatasetError


def images_from_array(x: np.ndarray, source, key: str) -> np.ndarray:
    """Images as float32 (N, C, H, W) in [0, 1]; `source` (a file, or words for where the array came
    from) and `key` name it in the error sentence.

    Layout rule for 4-D arrays: axis 1 holds the channels when its length is 1 or 3 (N, C, H, W);
    otherwise the last axis does when its length is 1 or 3 (N, H, W, C).
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
    scale_bytes = x.dtype == np.uint8
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DatasetError(f"{where} contains NaN or infinite values.")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0:
        raise DatasetError(f"{where} contains negative values (minimum {lo:g}); expected 0..1 or 0..255.")
    if hi > 255:
        raise DatasetError(f"{where} contains values up to {hi:g}; expected 0..1 or 0..255.")
    if scale_bytes or hi > 1:
        x /= 255.0
    return x


def labels_from_array(y: np.ndarray | None, n: int, source, key: str) -> np.ndarray | None:
    """Labels as int64 (n,), checked: 1-D integers, one per image, none negative; None stays None."""
    if y is None:
        return None
    if y.dtype.kind not in "biu" or y.ndim != 1:
        raise DatasetError(f"In {source}, {key} must be a 1-D array of integers, not {y.dtype} of shape {y.shape}.")
    if len(y) != n:
        raise DatasetError(f"In {source}, {key} has {len(y)} labels for {n} images.")
    if n and y.min() < 0:
        raise DatasetError(f"In {source}, {key} contains the negative label {int(y.min())}.")
    return y.astype(np.int64)


def unit_float(x: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1], without a float64 intermediate."""
    out = x.astype(np.float32)
    out /= 255.0
    return out

