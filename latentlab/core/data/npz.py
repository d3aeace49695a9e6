"""npz and npy files: array x (N,H,W | N,C,H,W | N,H,W,C), optional y, x_test, y_test, label_names,
and ground-truth factors (N×F, with factors_test beside x_test) with their factor_names.
Pickles are refused without being unpickled and every array's header is read before its data."""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from latentlab.core.errors import DatasetError
from latentlab.core.text import reason

from .checks import check_memory, open_error, open_regular
from .dataset import Dataset, make_dataset, split_dataset
from .factor_arrays import factors_from_arrays
from .image_arrays import images_from_array, label_classes, labels_from_array

MAX_NPZ_ARRAYS = 64


def load_npz(spec: str, path: Path) -> Dataset:
    if not path.exists():
        raise DatasetError(f"File {path} does not exist.")
    if not path.is_file():
        raise DatasetError(f"{path} is not a file.")
    arrays = read_npz(path)
    if "x" not in arrays:
        names = ", ".join(sorted(arrays)) or "none"
        raise DatasetError(f"{path} has no array named 'x' (it holds: {names}).")
    x = images_from_array(arrays["x"], path, "x")
    y = labels_from_array(arrays.get("y"), len(x), path, "y")
    x_test = y_test = None
    if "x_test" in arrays:
        x_test = images_from_array(arrays["x_test"], path, "x_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise DatasetError(
                f"In {path}, x_test has images of shape {x_test.shape[1:]} but x has {x.shape[1:]}."
            )
        y_test = labels_from_array(arrays.get("y_test"), len(x_test), path, "y_test")
        if (y is None) != (y_test is None):
            raise DatasetError(f"{path} gives labels for only one of x and x_test; give both y and y_test or neither.")
    elif "y_test" in arrays:
        raise DatasetError(f"{path} has y_test but no x_test.")

    if "label_names" in arrays:
        label_names = _npz_label_names(arrays["label_names"], path)
        if y is None:
            raise DatasetError(f"{path} has label_names but no labels y.")
        for labels, key in ((y, "y"), (y_test, "y_test")):
            if labels is not None and labels.max() >= len(label_names):
                raise DatasetError(
                    f"In {path}, {key} contains the label {int(labels.max())} but label_names names only "
                    f"{len(label_names)} classes."
                )
    elif y is None:
        label_names = ("unlabelled",)
        y = np.zeros(len(x), dtype=np.int64)
        y_test = None if x_test is None else np.zeros(len(x_test), dtype=np.int64)
    else:
        y, y_test, label_names = label_classes(y, y_test)

    factors = factors_from_arrays(arrays, len(x), None if x_test is None else len(x_test), path)
    name = f"npz: {path.name}"
    if x_test is None:
        return split_dataset(spec, name, x, y, label_names, str(path), factors=factors[0])
    return make_dataset(spec, name, x, y, x_test, y_test, label_names, factors)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays in the file; a plain .npy file is taken as x. Pickles are refused, never loaded."""
    # np.load treats anything that is neither a zip nor an .npy file as a pickle; say what it is.
    with open_error(path):
        with open_regular(path) as f:
            start = f.read(6)
    if not start.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        raise DatasetError(f"{path} is not an .npz file (it is neither a zip archive nor an .npy array).")
    check_npz_headers(path, start.startswith(b"\x93NUMPY"))
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"x": loaded}
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except Exception as e:  # noqa: BLE001
        # A broken or hostile file can fail deep inside zipfile, zlib or numpy's format parser
        # with almost any exception type; every one of them means "not a usable npz".
        if isinstance(e, ValueError) and ("pickle" in str(e) or "Object arrays" in str(e)):
            raise DatasetError(
                f"{path} contains pickled Python objects, which are never loaded because they can run code."
            ) from None
        if isinstance(e, (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)):
            raise DatasetError(f"{path} is not a readable .npz file ({reason(e)}).") from None
        raise DatasetError(f"{path} is not a readable .npz file (it is damaged).") from None


def check_npz_headers(path: Path, plain: bool) -> None:
    """Read each array's header (dtype and shape) before any data: object arrays are refused without
    unpickling and arrays that cannot fit in memory are refused before they are inflated."""
    def header(f, name):
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
        except Exception:  # noqa: BLE001 - a header numpy cannot read is reported by np.load below
            return 0
        if dtype.hasobject:
            raise DatasetError(f"{path} contains pickled Python objects ({name}), which are never loaded "
                               "because they can run code.")
        # As stored, plus what the Dataset keeps: one byte per value of integers, float32 of floats.
        return math.prod(shape) * (dtype.itemsize + (1 if dtype.kind in "biu" else 4))

    total = 0
    try:
        if plain:
            with open_regular(path) as f:
                total = header(f, "x")
        else:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith(".npy")]
                if len(names) > MAX_NPZ_ARRAYS:
                    raise DatasetError(f"{path} holds {len(names):,} arrays; a dataset has at most {MAX_NPZ_ARRAYS}.")
                for name in names:
                    with zf.open(name) as f:
                        total += header(f, name[:-4])
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, zlib.error, NotImplementedError, RuntimeError):
        # RuntimeError: zipfile's word for an entry flagged as encrypted (one flipped bit does it)
        return  # np.load reports it in its own words
    check_memory(total, str(path))


def _npz_label_names(names: np.ndarray, path: Path) -> tuple[str, ...]:
    if names.ndim != 1 or names.dtype.kind not in "US" or len(names) == 0:
        raise DatasetError(f"In {path}, label_names must be a non-empty 1-D array of strings.")
    return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names.tolist())

