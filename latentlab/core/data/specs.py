"""Datasets: the embedded defaults and loaders for the user's own files, named by a spec string.

Everything is loaded into memory as (N, C, H, W) arrays, uint8 where the source is 8-bit and float32
otherwise, wrapped as core.data.pixels.Pixels: indexing them gives float32 batches in [0, 1], and the
training loop gathers and converts whole batches on its device, so there is no per-sample Python code.

A dataset is named by a spec string (see `describe_specs`). Every failure — a bad spec, a missing,
truncated, corrupt or hostile file — raises `DatasetError` with one sentence naming the file or
spec; raw numpy, zlib, zip or PIL exceptions never escape `load_dataset`. The loaders live in
embedded_data, idx_files, npz_files and image_folder; this module is where the rest of latentlab
reaches them.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from latentlab.core.errors import Cancelled, DatasetError
from latentlab.core.text import quote, short

from .dataset import Dataset
from .embedded import load_digits, load_sprites
from .idx import load_idx_dataset
from .image_folder import load_image_folder
from .npz import load_npz

__all__ = [
    "DATASET_KINDS", "EMBEDDED_DEFAULT", "MAX_SPEC_CHARS", "Dataset", "checkpoint_dataset_refusal", "describe_specs",
    "load_dataset", "open_checkpoint_dataset", "parse_spec", "spec_file",
]


# The longest dataset or model SPEC accepted anywhere, from a command line or from a file.
MAX_SPEC_CHARS = 4096
DATASET_KINDS = ("digits", "sprites", "mnist", "fashion-mnist", "kmnist", "npz", "images", "hf")


def describe_specs() -> str:
    """Help text for the dataset spec argument."""
    return (
        "Dataset SPEC forms:\n"
        "  digits              scikit-learn's bundled 8x8 handwritten digits (the default)\n"
        "  sprites             generated 32x32 shapes with known factors (shape, scale, rotation, x, y)\n"
        "  mnist:DIR           MNIST IDX files in DIR (gzipped or not, flat or DIR/MNIST/raw)\n"
        "  fashion-mnist:DIR   Fashion-MNIST IDX files (flat or DIR/FashionMNIST/raw)\n"
        "  kmnist:DIR          Kuzushiji-MNIST IDX files (flat or DIR/KMNIST/raw)\n"
        "  npz:FILE            array x (N,H,W | N,C,H,W | N,H,W,C), optional y, x_test, y_test, label_names,\n"
        "                      factors (N x F ground truth; factors_test beside x_test) and factor_names\n"
        "  images:DIR          one sub-folder per class holding png/jpg/bmp/gif/webp images of one size\n"
        "  hf:DIR              a Hugging Face datasets folder (save_to_disk) or train*/test* Parquet files with an\n"
        "                      image column (encoded bytes) and an optional label column; read a batch at a time\n"
        "Without a test set, a fixed 20% of the examples is held out for testing."
    )


def load_dataset(spec: str, *, seed: int = 0, should_stop: Callable[[], bool] | None = None) -> Dataset:
    """Load the dataset named by spec; seed only changes generated data (sprites), never a split.

    `should_stop` is polled while a long load runs (an image folder is read file by file); when it
    returns True the load raises Cancelled, so closing a window need not wait for it.
    """
    kind, arg = parse_spec(spec)
    if kind in ("digits", "sprites"):
        return load_digits(spec) if kind == "digits" else load_sprites(spec, seed)
    path = Path(arg).expanduser()
    if kind == "npz":
        return load_npz(spec, path)
    if kind == "images":
        return load_image_folder(spec, path, should_stop or (lambda: False))
    if kind == "hf":
        from .streaming.hf import load_hf

        return load_hf(spec, path)
    return load_idx_dataset(spec, kind, path)


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


def spec_file(spec: str) -> Path | None:
    """The one file a dataset spec reads (npz:FILE), None for folders and embedded datasets; so that
    an output is never written over it."""
    kind, arg = parse_spec(spec)
    return Path(arg).expanduser() if kind == "npz" else None


def dataset_reads(spec: str, path) -> bool:
    """Whether loading the dataset `spec` names would read `path` (so an output written there would
    change the data): anything inside an hf: folder, a file inside a class folder of images:DIR, an
    IDX file of an MNIST-like folder. A new file beside those (a checkpoint next to the MNIST files)
    is not read. The npz file itself is spec_file's."""
    kind, arg = parse_spec(spec)
    if not arg or kind == "npz":
        return False
    folder, target = Path(arg).expanduser().resolve(), Path(path).expanduser().resolve()
    if folder not in target.parents:
        return False
    if kind == "hf":
        return True
    if kind == "images":
        return len(target.relative_to(folder).parts) >= 2
    return "ubyte" in target.name


# A dataset named by a checkpoint is a suggestion from a file that may be hostile: it is opened only
# when it names an ordinary place, never the file system's root, a system folder or a special file.
_SYSTEM_ROOTS = ("/dev", "/proc", "/sys", "/run", "/boot", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/usr",
                 "/var", "/snap", "/System", "/Library", "/private")


def checkpoint_dataset_refusal(spec: str, source: str = "the checkpoint") -> str | None:
    """Why the dataset a checkpoint (or weights file: `source`) names should not be opened, in one
    sentence; None when it may be. The one rule for the CLI and the window.

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
        return f"The dataset {quote(spec)} named by {source} cannot be found."
    where = f"The dataset {quote(spec)} named by {source}"
    if kind == "npz" and not stat.S_ISREG(st.st_mode):
        return f"{where} is not a regular file."
    if kind != "npz" and not stat.S_ISDIR(st.st_mode):
        return f"{where} is not a folder."
    text = path.as_posix()
    if path.parent == path or path == Path.home() or path == Path.home().parent or len(path.parts) < 3 and kind != "npz":
        return f"{where} is a top-level folder, too broad to open from a file's suggestion."
    if any(text == root or text.startswith(root + "/") for root in _SYSTEM_ROOTS):
        return f"{where} is inside a system folder, which latentlab never opens on a file's suggestion."
    return None


EMBEDDED_DEFAULT = "digits"


def open_checkpoint_dataset(named: str, image_shape, *, should_stop=None,
                            source: str = "the checkpoint") -> tuple[Dataset | None, str | None]:
    """The data to show a checkpoint with, and one short sentence for the banner when it is not
    the dataset the checkpoint names (None when it is).

    The checkpoint's (or weights file's: `source`) dataset is a suggestion: it is opened only if it is
    an ordinary location (`checkpoint_dataset_refusal`) that loads and fits the model's image shape
    (None: a user's model, whose shape its check on the data settles). Otherwise the embedded default
    is used when its images fit the model, or no data at all.
    """
    why = None
    if not named:
        why = f"{source[0].upper()}{source[1:]} does not name its dataset"
    else:
        refusal = checkpoint_dataset_refusal(named, source)
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
                if image_shape is None or data.image_shape == tuple(image_shape):
                    return data, None
                why = f"{quote(named)} has images of shape {data.image_shape}, the model expects {tuple(image_shape)}"
    default = load_dataset(EMBEDDED_DEFAULT)
    if image_shape is None or default.image_shape == tuple(image_shape):
        return default, short(f"{why}; showing the embedded {EMBEDDED_DEFAULT} data instead.")
    return None, short(f"{why}; the model is open without data (choose a dataset).")


def _spec_forms() -> str:
    return "digits, sprites, mnist:DIR, fashion-mnist:DIR, kmnist:DIR, npz:FILE, images:DIR or hf:DIR"
