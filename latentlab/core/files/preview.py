"""The latent preview a checkpoint may carry: the posterior means of its dataset's training images
under its own weights, their labels and the label names, so that a window can draw the scatter
before PyTorch has finished importing.

Reading one needs numpy and safetensors only (no torch): the header is read and checked first
(core.files.safetensors_file: every tensor's declared size against the file's real size), then
safetensors' numpy reader reads just the preview's tensors. Everything read is validated; a preview
that does not check out is ignored (the window then shows the points once the model has encoded them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MEANS, LABELS, META = "preview.means", "preview.labels", "preview"
# What a preview may cost in the file and in memory: beyond it, none is written (and none read).
MAX_PREVIEW_BYTES = 32 * 1024 * 1024
MAX_LABELS = 1000
MAX_LABEL_CHARS = 200
# The widest latent a preview is drawn for: the window opens no model wider (core.training.budget), and
# a wider one would make the plane's PCA, which runs before the model loads, cost seconds.
MAX_PREVIEW_DIM = 4096


@dataclass(frozen=True)
class Preview:
    means: np.ndarray          # (N, K) float32
    labels: np.ndarray         # (N,) int64, each < len(label_names)
    label_names: tuple[str, ...]
    dataset: str               # the dataset SPEC the means were computed on


def _checks_out(means: np.ndarray, labels: np.ndarray, names) -> bool:
    """What a preview must be, whether it is about to be written or has just been read."""
    return (means.ndim == 2 and len(means) > 0 and 0 < means.shape[1] <= MAX_PREVIEW_DIM and labels.shape == (len(means),)
            and 0 < len(names) <= MAX_LABELS
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
    from latentlab.core.errors import LatentLabError

    from .safetensors_file import read_header, read_tensors

    try:   # the header is parsed on the GUI thread: it is bounded, and nothing else is read before it checks out
        header = read_header(Path(path))
        means_entry, labels_entry = header.tensors.get(MEANS), header.tensors.get(LABELS)
        if means_entry is None or labels_entry is None:
            return None
        info = json.loads((header.metadata or {}).get(META, "null"))
        shape = means_entry.shape
        if (means_entry.dtype != "F32" or labels_entry.dtype != "I32" or len(shape) != 2
                or labels_entry.shape != shape[:1] or means_entry.nbytes + labels_entry.nbytes > MAX_PREVIEW_BYTES
                or not 0 < shape[1] <= MAX_PREVIEW_DIM or (latent_dim is not None and shape[1] != latent_dim)):
            return None
        tensors = read_tensors(header, (MEANS, LABELS))
        means, labels = tensors[MEANS], tensors[LABELS]
    except (LatentLabError, ValueError, RecursionError):   # any unreadable file or header: no preview, the load says why
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

    # In pieces of 1,024: their temporaries are reused from piece to piece, where larger ones come
    # fresh from the kernel each time and the page faults cost a third of a short run's preview.
    return encode(model, data.x_train, batch=1024)[0], data.y_train, data.label_names
