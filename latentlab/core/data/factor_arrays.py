"""Ground-truth factors from an npz file: `factors` (N×F numbers, one row per image of x),
`factors_test` (one row per image of x_test, when there is an x_test) and `factor_names` (F strings).
Each is checked before use; a Dataset keeps them as name -> float32 (N,), like the sprites' factors."""

from __future__ import annotations

import numpy as np

from latentlab.core.errors import DatasetError
from latentlab.core.text import quote

MAX_FACTORS = 64
MAX_NAME_CHARS = 100
# Names the latent view's colour menu already uses for something else.
RESERVED_NAMES = ("label", "reconstruction error", "KL per point")


def factors_from_arrays(arrays: dict, n: int, n_test: int | None, source) -> tuple[dict | None, dict | None]:
    """(training factors, test factors), each name -> float32 (rows,), or (None, None) when the file
    has none. n and n_test are the numbers of images in x and x_test (None: no x_test)."""
    if "factors" not in arrays:
        for key in ("factors_test", "factor_names"):
            if key in arrays:
                raise DatasetError(f"{source} has {key} but no factors.")
        return None, None
    train = _matrix(arrays["factors"], n, source, "factors", "x")
    test = None
    if n_test is not None:
        if "factors_test" not in arrays:
            raise DatasetError(f"{source} has factors for x but no factors_test for x_test.")
        test = _matrix(arrays["factors_test"], n_test, source, "factors_test", "x_test")
        if test.shape[1] != train.shape[1]:
            raise DatasetError(f"In {source}, factors has {train.shape[1]} columns but factors_test has {test.shape[1]}.")
    elif "factors_test" in arrays:
        raise DatasetError(f"{source} has factors_test but no x_test.")
    names = _names(arrays.get("factor_names"), train.shape[1], source)
    split = lambda m: {name: np.ascontiguousarray(m[:, j]) for j, name in enumerate(names)}  # noqa: E731
    return split(train), None if test is None else split(test)


def _matrix(values: np.ndarray, rows: int, source, key: str, images: str) -> np.ndarray:
    where = f"In {source}, {key}"
    if values.dtype.kind not in "biuf":
        raise DatasetError(f"{where} has dtype {values.dtype}; expected numbers.")
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise DatasetError(f"{where} has shape {values.shape}; expected one row per image and one column per factor.")
    if len(values) != rows:
        raise DatasetError(f"{where} has {len(values):,} rows for the {rows:,} images of {images}.")
    if not 1 <= values.shape[1] <= MAX_FACTORS:
        raise DatasetError(f"{where} has {values.shape[1]:,} columns; a dataset has 1 to {MAX_FACTORS} factors.")
    out = values.astype(np.float32)
    if not np.isfinite(out).all():
        raise DatasetError(f"{where} contains NaN or infinite values (or values too large for float32).")
    return out


def _names(names: np.ndarray | None, count: int, source) -> tuple[str, ...]:
    if names is None:
        return tuple(f"factor {j + 1}" for j in range(count))
    if names.dtype.kind not in "US" or names.ndim != 1:
        raise DatasetError(f"In {source}, factor_names must be a 1-D array of strings.")
    if len(names) != count:
        raise DatasetError(f"In {source}, factor_names names {len(names)} factors but factors has {count} columns.")
    out = tuple((n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)).strip() for n in names.tolist())
    for name in out:
        if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
            raise DatasetError(f"In {source}, the factor name {quote(name)} is empty, longer than {MAX_NAME_CHARS} "
                               "characters or not printable.")
        if name in RESERVED_NAMES:
            raise DatasetError(f"In {source}, the factor name {quote(name)} is reserved; choose another.")
    if len(set(out)) != len(out):
        raise DatasetError(f"In {source}, factor_names repeats a name.")
    return out
