"""The MNIST family (MNIST, Fashion-MNIST, KMNIST) from IDX files, gzipped or not, in a flat folder
or torchvision's layout; each file's header is checked against its size before anything large is read."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from latentlab.core.errors import DatasetError
from latentlab.core.text import reason

from .checks import check_memory, open_error, open_regular, require_folder
from .dataset import Dataset, make_dataset, split_dataset

IDX_NAMES = {  # kind -> (display name, torchvision's folder, label names)
    "mnist": ("MNIST", "MNIST", tuple(str(i) for i in range(10))),
    "fashion-mnist": (
        "Fashion-MNIST",
        "FashionMNIST",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
    "kmnist": ("KMNIST", "KMNIST", ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")),
}
_IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC = 2051, 2049  # unsigned bytes, 3 and 1 dimensions


def load_idx_dataset(spec: str, kind: str, folder: Path) -> Dataset:
    name, sub, label_names = IDX_NAMES[kind]
    require_folder(folder)
    for d in (folder, folder / "raw", folder / sub / "raw"):
        pairs = {
            part: (_idx_file(d, f"{part}-images-idx3-ubyte"), _idx_file(d, f"{part}-labels-idx1-ubyte"))
            for part in ("train", "t10k")
        }
        if any(images for images, _ in pairs.values()):
            break
    else:
        raise DatasetError(
            f"No {name} files found in {folder} (looked for train-images-idx3-ubyte[.gz] and "
            f"t10k-images-idx3-ubyte[.gz], flat or under raw or {sub}/raw)."
        )
    loaded = []
    for part, (images_path, labels_path) in pairs.items():
        if images_path is None:
            continue
        if labels_path is None:
            raise DatasetError(f"Found {images_path} but not its labels, {d / part}-labels-idx1-ubyte[.gz].")
        x = read_idx(images_path, _IDX_IMAGES_MAGIC, "image")
        y = read_idx(labels_path, _IDX_LABELS_MAGIC, "label")
        if len(x) != len(y):
            raise DatasetError(f"{images_path} holds {len(x)} images but {labels_path} holds {len(y)} labels.")
        if y.max() >= len(label_names):
            raise DatasetError(f"{labels_path} contains label {int(y.max())}; {name} labels are 0 to 9.")
        loaded.append((x, y, images_path))
    if len(loaded) == 1:
        x, y, images_path = loaded[0]
        return split_dataset(spec, name, x, y, label_names, str(images_path))
    (x_tr, y_tr, _), (x_te, y_te, _) = loaded
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise DatasetError(f"The training images in {d} are {_size(x_tr)} but the test images are {_size(x_te)}.")
    return make_dataset(spec, name, x_tr, y_tr, x_te, y_te, label_names)


def _idx_file(folder: Path, stem: str) -> Path | None:
    """The uncompressed file if present (torchvision keeps both), else the gzipped one."""
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def read_idx(path: Path, magic: int, what: str) -> np.ndarray:
    """An IDX file of unsigned bytes with the given magic number, checked against its header.

    The header is read first and the size it claims checked against the file (or, gzipped, against
    the memory the images will need) before anything large is read; a gzip stream is inflated only
    up to the claimed size, so a small file that inflates to gigabytes costs nothing.
    """
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    gz = path.suffix == ".gz"
    with open_error(path), _gzip_error(path):
        f = gzip.open(open_regular(path), "rb") if gz else open_regular(path)
        with f:
            head = f.read(header_len)
            if len(head) < 4:
                raise DatasetError(f"{path} is too short to be an IDX {what} file ({len(head)} bytes).")
            found = int.from_bytes(head[:4], "big")
            if found != magic:
                raise DatasetError(f"{path} is not an IDX {what} file (magic number {found}, expected {magic}).")
            if len(head) < header_len:
                raise DatasetError(f"{path} is truncated: its header needs {header_len} bytes but the file has {len(head)}.")
            shape = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
            expected = math.prod(shape)
            if min(shape) == 0:
                raise DatasetError(f"{path} is empty (its header gives the shape {shape}).")
            if not gz:
                size = os.fstat(f.fileno()).st_size - header_len
                if size < expected:
                    raise DatasetError(f"{path} is truncated: the header promises {header_len + expected} bytes "
                                       f"but the file has {header_len + size}.")
                if size > expected:
                    raise DatasetError(f"{path} has {size - expected} bytes beyond the {header_len + expected} "
                                       f"its header describes.")
            # The bytes as read (they stay uint8) plus the copy a train/test split makes.
            check_memory(2 * expected, f"{path} (its header claims {_count(shape, what)})")
            data = np.empty(expected, np.uint8)
            got = _read_into(f, data)
            if got < expected:
                raise DatasetError(f"{path} is truncated: the header promises {header_len + expected} bytes "
                                   f"but the file has {header_len + got}.")
            if f.read(1):
                raise DatasetError(f"{path} has bytes beyond the {header_len + expected} its header describes.")
    return data.reshape(shape)


def _read_into(f, buffer: np.ndarray) -> int:
    """Fill `buffer` from f (a gzip stream may hand it over in pieces); the bytes read."""
    view, got = memoryview(buffer), 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _count(shape, what) -> str:
    return f"{shape[0]:,} {what}s" + (f" of {shape[2]}×{shape[1]}" if len(shape) == 3 else "")


@contextmanager
def _gzip_error(path: Path):
    try:
        yield
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DatasetError(f"{path} is not a valid gzip file ({reason(e)}).") from None


def _size(x: np.ndarray) -> str:
    return f"{x.shape[-1]}×{x.shape[-2]}"
