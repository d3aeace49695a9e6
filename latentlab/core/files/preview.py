"""The latent preview a checkpoint may carry: the posterior means of its dataset's training images
under its own weights, their labels and the label names, so that a window can draw the scatter
before PyTorch has finished importing.

Reading one needs numpy and safetensors only (no torch): the file is opened with safetensors'
numpy reader, which reads just the preview's tensors. Everything read is validated; a preview that
does not check out is ignored (the window then shows the points once the model has encoded them).
"""

from __future__ import annotations

import json
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MEANS, LABELS, META = "preview.means", "preview.labels", "preview"
# What a preview may cost in the file and in memory: beyond it, none is written (and none read).
MAX_PREVIEW_BYTES = 32 * 1024 * 1024
MAX_LABELS = 1000
MAX_LABEL_CHARS = 200
MAX_HEADER_BYTES = 16 * 1024 * 1024   # as for the checkpoint itself


@dataclass(frozen=True)
class Preview:
    means: np.ndarray          # (N, K) float32
    labels: np.ndarray         # (N,) int64, each < len(label_names)
    label_names: tuple[str, ...]
    dataset: str               # the dataset SPEC the means were computed on


def _checks_out(means: np.ndarray, labels: np.ndarray, names) -> bool:
    """What a preview must be, whether it is about to be written or has just been read."""
    return (means.ndim == 2 and labels.shape == (len(means),) and 0 < len(names) <= MAX_LABELS
            and means.nbytes + labels.nbytes <= MAX_PREVIEW_BYTES and bool(np.isfinite(means).all())
            and not (len(labels) and (labels.min() < 0 or labels.max() >= len(names))))


def preview_tensors(means, labels, label_names, dataset: str) -> tuple[dict[str, np.ndarray], dict[str, str]] | None:
    """The tensors and the metadata entry a checkpoint stores for a preview, or None when it would be
    too large to be worth storing (then the file is written without one)."""
    means = np.ascontiguousarray(means, dtype=np.float32)
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    names = [str(n)[:MAX_LABEL_CHARS] for n in label_names]
    if not _checks_out(means, labels, names):
        return None
    return {MEANS: means, LABELS: labels}, {META: json.dumps({"label_names": names, "dataset": dataset})}


def read_preview(path, latent_dim: int | None = None) -> Preview | None:
    """The preview stored in the checkpoint at `path`, or None if it has none or it does not check
    out (a wrong shape or dtype, a non-finite mean, a label out of range, a claimed size beyond
    MAX_PREVIEW_BYTES). With `latent_dim`, the means must have that many columns."""
    from safetensors import safe_open

    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None
        with open(path, "rb") as f:   # the header is parsed on the GUI thread: a bounded one only
            (n,) = struct.unpack("<Q", f.read(8))
        if n > MAX_HEADER_BYTES:
            return None
        with safe_open(str(path), framework="numpy") as f:
            keys = set(f.keys())
            if not {MEANS, LABELS} <= keys:
                return None
            info = json.loads((f.metadata() or {}).get(META, "null"))
            means_slice, labels_slice = f.get_slice(MEANS), f.get_slice(LABELS)
            shape, lshape = list(means_slice.get_shape()), list(labels_slice.get_shape())
            if (means_slice.get_dtype() != "F32" or labels_slice.get_dtype() != "I32" or len(shape) != 2
                    or lshape != shape[:1] or shape[0] * (shape[1] + 1) * 4 > MAX_PREVIEW_BYTES
                    or (latent_dim is not None and shape[1] != latent_dim)):
                return None
            means, labels = f.get_tensor(MEANS), f.get_tensor(LABELS)
    except Exception:  # noqa: BLE001 - any unreadable file or malformed header: no preview, the load says why
        return None
    if not isinstance(info, dict):
        return None
    names, dataset = info.get("label_names"), info.get("dataset")
    if (not isinstance(names, list) or not isinstance(dataset, str) or len(dataset) > MAX_LABEL_CHARS * 5
            or not all(isinstance(n, str) and len(n) <= MAX_LABEL_CHARS for n in names)
            or not _checks_out(means, labels, names)):
        return None
    return Preview(means, labels.astype(np.int64), tuple(names), dataset)


def compute_preview(model, data) -> tuple | None:
    """(means, labels, label names) of `data`'s training images under `model`, for
    checkpoint_bytes(preview=...); None when the preview would be too large to store."""
    n, k = len(data.x_train), model.latent_dim
    if n * (k + 1) * 4 > MAX_PREVIEW_BYTES or data.y_train is None:
        return None
    from latentlab.core.inference.analysis import encode

    return encode(model, data.x_train)[0], data.y_train, data.label_names
