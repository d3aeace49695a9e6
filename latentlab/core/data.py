"""Datasets: the embedded defaults and loaders for the user's own files.

Everything is loaded into memory as float32 arrays (N, C, H, W) in [0, 1]; the training loop
slices batches straight out of them, so there is no per-sample Python code anywhere.

A dataset is named by a spec string (see `describe_specs`). Every failure — a bad spec, a missing,
truncated, corrupt or hostile file — raises `DatasetError` with one sentence naming the file or
spec; raw numpy, zlib, zip or PIL exceptions never escape `load_dataset`.
"""

from __future__ import annotations

import gzip
import math
import os
import stat
import warnings
import zipfile
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlab.core import sprites
from latentlab.core.errors import Cancelled, DatasetError
from latentlab.core.text import quote, short

MAX_SPEC_CHARS = 4096

DATASET_KINDS = ("digits", "sprites", "mnist", "fashion-mnist", "kmnist", "npz", "images")

TEST_FRACTION = 0.2
SPRITES_COUNT = 12_000
# The split permutation has its own fixed seed, so the test set never depends on the training
# seed: results from different runs are always measured on the same images.
_SPLIT_SEED = 0

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# One image of a dataset: 4096×4096 is far past what a VAE here trains on, and far below a bomb.
MAX_IMAGE_PIXELS = 4096 * 4096
# Entries looked at while listing an image folder: the walk of a whole disk ends in one sentence.
MAX_FOLDER_ENTRIES = 5_000_000

_IDX_NAMES = {  # kind -> (display name, torchvision's folder, label names)
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


# eq=False: comparing or hashing by value is meaningless (and fails) for numpy array fields.
@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test pair of image arrays with integer labels.

    x_* are float32 (N, C, H, W), C-contiguous, values in [0, 1], C is 1 or 3; y_* are int64 (N,)
    indices into label_names. factors_* hold ground-truth generative factors where they are known
    (sprites): factor name -> float32 (N,) array of factor values.
    """

    spec: str
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    label_names: tuple[str, ...]
    factors_train: dict[str, np.ndarray] | None = None
    factors_test: dict[str, np.ndarray] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return tuple(self.x_train.shape[1:])

    @property
    def continuous(self) -> bool:
        """True unless the pixels are nearly binary (more than 80% within 0.05 of 0 or 1).

        Sprites count as binary, the 8×8 digits (17 grey levels, ~40% in between) as continuous.
        It is a hint for choosing a likelihood, not a rule: both likelihoods accept any data in [0, 1].
        """
        sample = self.x_train[:2000]
        return bool(np.mean((sample > 0.05) & (sample < 0.95)) > 0.2)


def describe_specs() -> str:
    """Help text for the dataset spec argument."""
    return (
        "Dataset specs:\n"
        "  digits              scikit-learn's bundled 8x8 handwritten digits (the default)\n"
        "  sprites             generated 32x32 shapes with known factors (shape, scale, rotation, x, y)\n"
        "  mnist:DIR           MNIST IDX files in DIR (gzipped or not, flat or DIR/MNIST/raw)\n"
        "  fashion-mnist:DIR   Fashion-MNIST IDX files (flat or DIR/FashionMNIST/raw)\n"
        "  kmnist:DIR          Kuzushiji-MNIST IDX files (flat or DIR/KMNIST/raw)\n"
        "  npz:FILE            array x (N,H,W | N,C,H,W | N,H,W,C), optional y, x_test, y_test, label_names\n"
        "  images:DIR          one sub-folder per class holding png/jpg/bmp/gif/webp images of one size\n"
        "Without a test set, a fixed 20% of the examples is held out for testing."
    )


def load_dataset(spec: str, *, seed: int = 0, should_stop: Callable[[], bool] | None = None) -> Dataset:
    """Load the dataset named by spec; seed only changes generated data (sprites), never a split.

    `should_stop` is polled while a long load runs (an image folder is read file by file); when it
    returns True the load raises Cancelled, so closing a window need not wait for it.
    """
    kind, arg = parse_spec(spec)
    if kind in ("digits", "sprites"):
        return _load_digits(spec) if kind == "digits" else _load_sprites(spec, seed)
    path = Path(arg).expanduser()
    if kind == "npz":
        return _load_npz(spec, path)
    if kind == "images":
        return _load_image_folder(spec, path, should_stop or (lambda: False))
    return _load_idx_dataset(spec, kind, path)


def parse_spec(spec) -> tuple[str, str]:
    """(kind, argument) of a dataset spec, or DatasetError in one sentence; touches no file."""
    if not isinstance(spec, str) or not spec.strip():
        raise DatasetError(f"Empty dataset spec: expected {_spec_forms()}.")
    if len(spec) > MAX_SPEC_CHARS or "\x00" in spec:
        raise DatasetError(f"The dataset spec {quote(spec)} is not a usable spec ({len(spec):,} characters).")
    kind, _, arg = spec.strip().partition(":")
    kind, arg = kind.strip().lower(), arg.strip()
    if kind not in DATASET_KINDS:
        raise DatasetError(f"Unknown dataset {quote(spec)}: expected {_spec_forms()}.")
    if kind in ("digits", "sprites"):
        if arg:
            raise DatasetError(f"Dataset {kind!r} takes no argument, but the spec {quote(spec)} gives one.")
        return kind, ""
    if not arg:
        what = "FILE" if kind == "npz" else "DIR"
        raise DatasetError(f"Dataset spec {quote(spec)} needs a path: use {kind}:{what}.")
    return kind, arg


# A dataset named by a checkpoint is a suggestion from a file that may be hostile: it is opened only
# when it names an ordinary place, never the file system's root, a system folder or a special file.
_SYSTEM_ROOTS = ("/dev", "/proc", "/sys", "/run", "/boot", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/usr",
                 "/var", "/snap", "/System", "/Library", "/private")


def checkpoint_dataset_refusal(spec: str) -> str | None:
    """Why the dataset a checkpoint names should not be opened, in one sentence; None when it may be.

    The spec must parse, and a path in it must be an existing regular file (npz) or folder (IDX,
    images) that is neither a file-system root, a home folder itself, nor inside a system folder.
    """
    try:
        kind, arg = parse_spec(spec)
    except DatasetError as exc:
        return str(exc)
    if not arg:
        return None
    try:
        path = Path(arg).expanduser().resolve()
        st = path.stat()
    except (OSError, RuntimeError, ValueError):
        return f"The dataset {quote(spec)} named by the checkpoint cannot be found."
    import stat as stat_

    where = f"The dataset {quote(spec)} named by the checkpoint"
    if kind == "npz" and not stat_.S_ISREG(st.st_mode):
        return f"{where} is not a regular file."
    if kind != "npz" and not stat_.S_ISDIR(st.st_mode):
        return f"{where} is not a folder."
    text = path.as_posix()
    if path.parent == path or path == Path.home() or path == Path.home().parent or len(path.parts) < 3 and kind != "npz":
        return f"{where} is a top-level folder, too broad to open from a checkpoint."
    if any(text == root or text.startswith(root + "/") for root in _SYSTEM_ROOTS):
        return f"{where} is inside a system folder, which a checkpoint never opens."
    return None


EMBEDDED_DEFAULT = "digits"


def open_checkpoint_dataset(named: str, image_shape, *, should_stop=None) -> tuple[Dataset | None, str | None]:
    """The data to show a checkpoint with, and one short sentence for the banner when it is not
    the dataset the checkpoint names (None when it is).

    The checkpoint's dataset is a suggestion: it is opened only if it is an ordinary location
    (`checkpoint_dataset_refusal`) that loads and fits the model's image shape. Otherwise the
    embedded default is used when its images fit the model, or no data at all.
    """
    why = None
    if not named:
        why = "The checkpoint does not name its dataset"
    else:
        refusal = checkpoint_dataset_refusal(named)
        if refusal:
            why = refusal.rstrip(".")
        else:
            try:
                data = load_dataset(named, should_stop=should_stop)
            except Cancelled:
                raise
            except DatasetError as exc:
                why = short(str(exc), 200).rstrip(".")
            else:
                if data.image_shape == tuple(image_shape):
                    return data, None
                why = f"{quote(named)} has images of shape {data.image_shape}, the model expects {tuple(image_shape)}"
    default = load_dataset(EMBEDDED_DEFAULT)
    if default.image_shape == tuple(image_shape):
        return default, short(f"{why}; showing the embedded {EMBEDDED_DEFAULT} data instead.")
    return None, short(f"{why}; the model is open without data (choose a dataset).")


def _spec_forms() -> str:
    return "digits, sprites, mnist:DIR, fashion-mnist:DIR, kmnist:DIR, npz:FILE or images:DIR"


# --- assembling --------------------------------------------------------------------------------


def _split(n: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: a fixed permutation, the last 20% (at least one example) is test."""
    if n < 2:
        raise DatasetError(f"{where} holds {n} example(s); at least 2 are needed to hold out a test set.")
    order = np.random.default_rng(_SPLIT_SEED).permutation(n)
    n_test = max(1, round(n * TEST_FRACTION))
    return order[:-n_test], order[-n_test:]


def _dataset(spec, name, x_train, y_train, x_test, y_test, label_names, factors=(None, None)) -> Dataset:
    def images(x):
        x = np.ascontiguousarray(x, dtype=np.float32)
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


def _split_dataset(spec, name, x, y, label_names, where) -> Dataset:
    train, test = _split(len(x), where)
    return _dataset(spec, name, x[train], y[train], x[test], y[test], label_names)


# --- embedded ----------------------------------------------------------------------------------


def _load_digits(spec: str) -> Dataset:
    images, target = _digits_arrays()
    x = (images / 16.0).astype(np.float32)
    return _split_dataset(spec, "digits", x, target, [str(i) for i in range(10)], "digits")


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
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
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images, digits.target


def _load_sprites(spec: str, seed: int) -> Dataset:
    # The generated order is already random, so the last 20% is an unbiased test set.
    x, factors = sprites.generate(SPRITES_COUNT, seed=seed)
    y = factors["shape"].astype(np.int64)
    n_test = round(SPRITES_COUNT * TEST_FRACTION)
    head = {k: np.ascontiguousarray(v[:-n_test]) for k, v in factors.items()}
    tail = {k: np.ascontiguousarray(v[-n_test:]) for k, v in factors.items()}
    return _dataset(
        spec, "sprites", x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:], sprites.SHAPES, (head, tail)
    )


# --- IDX (MNIST family) ------------------------------------------------------------------------


def _load_idx_dataset(spec: str, kind: str, folder: Path) -> Dataset:
    name, sub, label_names = _IDX_NAMES[kind]
    _require_folder(folder)
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
        x = _read_idx(images_path, _IDX_IMAGES_MAGIC, "image")
        y = _read_idx(labels_path, _IDX_LABELS_MAGIC, "label")
        if len(x) != len(y):
            raise DatasetError(f"{images_path} holds {len(x)} images but {labels_path} holds {len(y)} labels.")
        if y.max() >= len(label_names):
            raise DatasetError(f"{labels_path} contains label {int(y.max())}; {name} labels are 0 to 9.")
        loaded.append((x, y, images_path))
    if len(loaded) == 1:
        x, y, images_path = loaded[0]
        return _split_dataset(spec, name, _unit(x), y, label_names, str(images_path))
    (x_tr, y_tr, _), (x_te, y_te, _) = loaded
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise DatasetError(f"The training images in {d} are {_size(x_tr)} but the test images are {_size(x_te)}.")
    return _dataset(spec, name, _unit(x_tr), y_tr, _unit(x_te), y_te, label_names)


def _idx_file(folder: Path, stem: str) -> Path | None:
    """The uncompressed file if present (torchvision keeps both), else the gzipped one."""
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def _read_idx(path: Path, magic: int, what: str) -> np.ndarray:
    """An IDX file of unsigned bytes with the given magic number, checked against its header.

    The header is read first and the size it claims checked against the file (or, gzipped, against
    the memory the images will need) before anything large is read; a gzip stream is inflated only
    up to the claimed size, so a small file that inflates to gigabytes costs nothing.
    """
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    gz = path.suffix == ".gz"
    with _open_error(path), _gzip_error(path):
        f = gzip.open(_open_regular(path), "rb") if gz else _open_regular(path)
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
            # uint8 as read plus the float32 copy training uses.
            _check_memory(5 * expected, f"{path} (its header claims {_count(shape, what)})")
            data = f.read(expected)
            if len(data) < expected:
                raise DatasetError(f"{path} is truncated: the header promises {header_len + expected} bytes "
                                   f"but the file has {header_len + len(data)}.")
            if f.read(1):
                raise DatasetError(f"{path} has bytes beyond the {header_len + expected} its header describes.")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _count(shape, what) -> str:
    return f"{shape[0]:,} {what}s" + (f" of {shape[2]}×{shape[1]}" if len(shape) == 3 else "")


@contextmanager
def _gzip_error(path: Path):
    try:
        yield
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DatasetError(f"{path} is not a valid gzip file ({_reason(e)}).") from None


# --- npz ---------------------------------------------------------------------------------------


def _load_npz(spec: str, path: Path) -> Dataset:
    if not path.exists():
        raise DatasetError(f"File {path} does not exist.")
    if not path.is_file():
        raise DatasetError(f"{path} is not a file.")
    arrays = _read_npz(path)
    if "x" not in arrays:
        names = ", ".join(sorted(arrays)) or "none"
        raise DatasetError(f"{path} has no array named 'x' (it holds: {names}).")
    x = _npz_images(arrays["x"], path, "x")
    y = _npz_labels(arrays.get("y"), len(x), path, "y")
    x_test = y_test = None
    if "x_test" in arrays:
        x_test = _npz_images(arrays["x_test"], path, "x_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise DatasetError(
                f"In {path}, x_test has images of shape {x_test.shape[1:]} but x has {x.shape[1:]}."
            )
        y_test = _npz_labels(arrays.get("y_test"), len(x_test), path, "y_test")
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
        # Arbitrary non-negative labels (say 3 and 7) become contiguous classes 0..n-1.
        values = np.unique(y if y_test is None else np.concatenate([y, y_test]))
        label_names = tuple(str(v) for v in values)
        y = np.searchsorted(values, y)
        y_test = None if y_test is None else np.searchsorted(values, y_test)

    name = f"npz: {path.name}"
    if x_test is None:
        return _split_dataset(spec, name, x, y, label_names, str(path))
    return _dataset(spec, name, x, y, x_test, y_test, label_names)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays in the file; a plain .npy file is taken as x. Pickles are refused, never loaded."""
    # np.load treats anything that is neither a zip nor an .npy file as a pickle; say what it is.
    with _open_error(path):
        with _open_regular(path) as f:
            start = f.read(6)
    if not start.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        raise DatasetError(f"{path} is not an .npz file (it is neither a zip archive nor an .npy array).")
    _check_npz_headers(path, start.startswith(b"\x93NUMPY"))
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
            raise DatasetError(f"{path} is not a readable .npz file ({_reason(e)}).") from None
        raise DatasetError(f"{path} is not a readable .npz file (it is damaged).") from None


MAX_NPZ_ARRAYS = 64


def _check_npz_headers(path: Path, plain: bool) -> None:
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
        return math.prod(shape) * (dtype.itemsize + 4)  # as stored plus the float32 copy

    total = 0
    try:
        if plain:
            with _open_regular(path) as f:
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
    _check_memory(total, str(path))


def _npz_images(x: np.ndarray, path: Path, key: str) -> np.ndarray:
    """Images as float32 (N, C, H, W) in [0, 1].

    Layout rule for 4-D arrays: axis 1 holds the channels when its length is 1 or 3 (N, C, H, W);
    otherwise the last axis does when its length is 1 or 3 (N, H, W, C).
    """
    where = f"In {path}, {key}"
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


def _npz_labels(y: np.ndarray | None, n: int, path: Path, key: str) -> np.ndarray | None:
    if y is None:
        return None
    if y.dtype.kind not in "biu" or y.ndim != 1:
        raise DatasetError(f"In {path}, {key} must be a 1-D array of integers, not {y.dtype} of shape {y.shape}.")
    if len(y) != n:
        raise DatasetError(f"In {path}, {key} has {len(y)} labels for {n} images.")
    if n and y.min() < 0:
        raise DatasetError(f"In {path}, {key} contains the negative label {int(y.min())}.")
    return y.astype(np.int64)


def _npz_label_names(names: np.ndarray, path: Path) -> tuple[str, ...]:
    if names.ndim != 1 or names.dtype.kind not in "US" or len(names) == 0:
        raise DatasetError(f"In {path}, label_names must be a non-empty 1-D array of strings.")
    return tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names.tolist())


# --- image folders -----------------------------------------------------------------------------


def _load_image_folder(spec: str, folder: Path, should_stop) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    _require_folder(folder)
    try:
        classes = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
        budget = [MAX_FOLDER_ENTRIES]
        files = [sorted(_image_files(c, budget, folder)) for c in classes]
    except OSError as e:
        raise DatasetError(f"Cannot list the images in {folder} ({_reason(e)}).") from None
    # Folders without images are not classes: they would only add labels with no examples.
    classes = [c for c, f in zip(classes, files) if f]
    files = [f for f in files if f]
    if not classes:
        raise DatasetError(
            f"No images found in {folder}: expected one sub-folder per class holding "
            f"{'/'.join(s[1:] for s in IMAGE_SUFFIXES)} files."
        )
    paths = [p for f in files for p in f]
    y = np.concatenate([np.full(len(f), i, dtype=np.int64) for i, f in enumerate(files)])

    first_size = None
    x = None
    for i, p in enumerate(paths):
        if i % 256 == 0 and should_stop():
            raise Cancelled(f"Loading {folder} was cancelled.")
        try:
            # Each image's declared size is checked before it is decoded: a small file can claim
            # gigapixels (a decompression bomb), and Pillow's own warning for that becomes an error.
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with _open_regular(p) as fh, Image.open(fh) as im:
                    if first_size is None:
                        w, h = im.size
                        if w * h > MAX_IMAGE_PIXELS:
                            raise DatasetError(f"{p} is {w:,}×{h:,} pixels; images of at most "
                                               f"{MAX_IMAGE_PIXELS:,} pixels can be used.")
                        # uint8 RGB as decoded plus the float32 (N, C, H, W) copy.
                        _check_memory(len(paths) * w * h * 15, f"{len(paths):,} images of {w:,}×{h:,} in {folder}")
                        first_size = (h, w, 3)
                    elif im.size != (first_size[1], first_size[0]):
                        raise DatasetError(
                            f"{p} is {im.size[0]}×{im.size[1]} pixels but {paths[0]} is "
                            f"{first_size[1]}×{first_size[0]}; all images must have the same size."
                        )
                    rgb = np.asarray(im.convert("RGB"))
        except DatasetError:
            raise
        except UnidentifiedImageError:
            raise DatasetError(f"{p} is not a readable image (unknown or damaged format).") from None
        except Exception as e:  # noqa: BLE001
            # PIL reports truncated, oversized or otherwise broken files with many exception types.
            raise DatasetError(f"{p} is not a readable image ({_reason(e)}).") from None
        if rgb.shape != first_size:
            raise DatasetError(f"{p} decodes to {rgb.shape[1]}×{rgb.shape[0]} pixels but declares "
                               f"{first_size[1]}×{first_size[0]}.")
        if x is None:
            x = np.empty((len(paths), *rgb.shape), dtype=np.uint8)
        x[i] = rgb
    # Grayscale when every image is (equal RGB channels), which also catches gray JPEGs saved as RGB.
    if (x[..., 0] == x[..., 1]).all() and (x[..., 0] == x[..., 2]).all():
        x = x[..., 0]
    else:
        x = x.transpose(0, 3, 1, 2)
    return _split_dataset(
        spec, f"images: {folder.name}", _unit(x), y, [c.name for c in classes], str(folder)
    )


def _image_files(top: Path, budget: list, folder: Path) -> list[Path]:
    """Image files under `top` (not following links to folders), counting every entry against budget."""
    found, stack = [], [top]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                budget[0] -= 1
                if budget[0] < 0:
                    raise DatasetError(f"{folder} holds more than {MAX_FOLDER_ENTRIES:,} files and folders; "
                                       "point images:DIR at the dataset's own folder.")
                if e.name.startswith("."):
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                elif Path(e.name).suffix.lower() in IMAGE_SUFFIXES and e.is_file():
                    found.append(Path(e.path))
    return found


# --- helpers -----------------------------------------------------------------------------------


def _require_folder(folder: Path) -> None:
    if not folder.exists():
        raise DatasetError(f"Folder {folder} does not exist.")
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder.")


def _open_regular(path: Path):
    """A binary file object for `path`, refusing FIFOs, devices and folders in one sentence
    (reading /dev/zero or a FIFO would never end)."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DatasetError(f"{path} is not a regular file.")
    return os.fdopen(fd, "rb")


def _check_memory(need: int, what: str) -> None:
    from latentlab.core.budget import check_fits
    from latentlab.core.errors import ResourceError

    try:
        check_fits(need, what)
    except ResourceError as exc:
        raise DatasetError(str(exc)) from None


@contextmanager
def _open_error(path: Path):
    """Turns an OSError (permissions, a vanished file) into a DatasetError naming the file."""
    try:
        yield
    except OSError as e:
        raise DatasetError(f"Cannot read {path} ({_reason(e)}).") from None


def _reason(e: BaseException) -> str:
    """The first line of an exception's message, for quoting inside one of our sentences."""
    lines = str(getattr(e, "strerror", None) or e).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(e).__name__


def _unit(x: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1], without a float64 intermediate."""
    out = x.astype(np.float32)
    out /= 255.0
    return out


def _size(x: np.ndarray) -> str:
    return f"{x.shape[-1]}×{x.shape[-2]}"
