"""Attribute vectors on disk: one .npz of plain arrays (no pickle), every field validated on load.

Arrays: format (1), direction (K,) float32, length, kind, from, to, auc, cosine, r2 (NaN when the vector
is not a factor's), n_from, n_to, held_out, bootstraps, and where it came from: model, dataset. Readable
with np.load(allow_pickle=False); written atomically.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from latentlab.core.data.npz import read_npz
from latentlab.core.errors import DatasetError, LatentLabError
from latentlab.core.files.atomic import write_atomic
from latentlab.core.meaning.attributes import AttributeVector
from latentlab.core.text import quote, short

FORMAT = 1
MAX_BYTES = 64 << 20       # far above any real vector (a million float32 coordinates is 4 MB)
MAX_LATENT = 4_000_000
MAX_TEXT = 300
KINDS = ("groups", "labels", "factor")
_TEXT = ("kind", "from", "to", "model", "dataset")
_COUNTS = ("n_from", "n_to", "held_out", "bootstraps")


def save_vector(path, vector: AttributeVector, *, model: str = "", dataset: str = "") -> Path:
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise LatentLabError(f"Name the vector file .npz, not {short(path.name, 80)}.")
    buf = io.BytesIO()
    np.savez(buf, format=np.int64(FORMAT), direction=np.asarray(vector.direction, np.float32),
             length=np.float64(vector.length), kind=np.str_(vector.kind), **{"from": np.str_(short(vector.source, MAX_TEXT))},
             to=np.str_(short(vector.target, MAX_TEXT)), auc=np.float64(_nan(vector.auc)),
             cosine=np.float64(_nan(vector.cosine)), r2=np.float64(_nan(vector.r2)),
             n_from=np.int64(vector.n_source), n_to=np.int64(vector.n_target), held_out=np.int64(vector.held_out),
             bootstraps=np.int64(vector.bootstraps), model=np.str_(short(model, MAX_TEXT)),
             dataset=np.str_(short(dataset, MAX_TEXT)))
    write_atomic(path, buf.getvalue())
    return path


def _nan(v) -> float:
    return float("nan") if v is None else float(v)


def load_vector(path) -> tuple[AttributeVector, dict]:
    """The vector and its provenance ({"model": ..., "dataset": ...}); one sentence when the file is
    not a vector latentlab can use."""
    path = Path(path)
    name = short(str(path), 120)
    try:
        size = path.stat().st_size
    except OSError:
        raise LatentLabError(f"Cannot read the vector file {name}: it does not exist or cannot be opened.") from None
    if size > MAX_BYTES:
        raise LatentLabError(f"{name} is {size / 1e6:,.0f} MB, far larger than a vector file; it was not read.")
    try:
        arrays = read_npz(path)
    except DatasetError as exc:
        raise LatentLabError(str(exc)) from None
    bad = lambda why: LatentLabError(f"{name} is not a latentlab vector file: {why}.")  # noqa: E731
    for key in ("format", "direction", "length", "kind", "from", "to"):
        if key not in arrays:
            raise bad(f"it has no {key}")
    fmt = _scalar(arrays["format"], "format", bad, integer=True)
    if fmt != FORMAT:
        raise bad(f"its format is {fmt:g}, this version reads {FORMAT}")
    d = arrays["direction"]
    if d.dtype.kind != "f" or d.ndim != 1 or not 1 <= len(d) <= MAX_LATENT:
        raise bad(f"direction must be a 1-D float array of 1 to {MAX_LATENT:,} values, not {d.dtype} {d.shape}")
    d = d.astype(np.float64)
    norm = float(np.linalg.norm(d)) if np.isfinite(d).all() else math.nan
    if not np.isfinite(norm) or norm < 1e-12:
        raise bad("direction is zero or not finite")
    text = {key: _text(arrays.get(key, np.str_("")), key, bad) for key in _TEXT}
    if text["kind"] not in KINDS:
        raise bad(f"kind must be one of {', '.join(KINDS)}, not {quote(text['kind'])}")
    length = _scalar(arrays["length"], "length", bad)
    if not (math.isfinite(length) and length > 0):
        raise bad("length must be a positive number")
    numbers = {key: _scalar(arrays.get(key, np.float64(math.nan)), key, bad) for key in ("auc", "cosine", "r2")}
    for key in ("auc", "cosine"):
        v = numbers[key]
        if not (math.isnan(v) or (key == "auc" and 0 <= v <= 1) or (key == "cosine" and -1 - 1e-6 <= v <= 1 + 1e-6)):
            raise bad(f"{key} {v:g} is out of range")
    r2 = numbers["r2"]
    if not (math.isnan(r2) or r2 <= 1 + 1e-9) or (text["kind"] != "factor" and not math.isnan(r2)):
        raise bad("r2 is out of range or given for a vector that is not a factor's")
    counts = {key: int(_scalar(arrays.get(key, np.int64(0)), key, bad, integer=True)) for key in _COUNTS}
    if any(not 0 <= v <= 10**12 for v in counts.values()):
        raise bad("a count is negative or absurd")
    vector = AttributeVector(direction=d / norm, length=length, kind=text["kind"], source=text["from"], target=text["to"],
                             auc=numbers["auc"], cosine=numbers["cosine"], r2=None if math.isnan(r2) else r2,
                             n_source=counts["n_from"], n_target=counts["n_to"], held_out=counts["held_out"],
                             bootstraps=counts["bootstraps"])
    return vector, {"model": text["model"], "dataset": text["dataset"]}


def _scalar(a: np.ndarray, key: str, bad, integer: bool = False) -> float:
    if a.shape != () or a.dtype.kind not in ("iu" if integer else "iuf"):
        raise bad(f"{key} must be a single {'whole ' if integer else ''}number")
    return float(a)


def _text(a: np.ndarray, key: str, bad) -> str:
    if a.shape != () or a.dtype.kind not in "US":
        raise bad(f"{key} must be a single string")
    value = a.item()
    value = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if len(value) > MAX_TEXT or not value.isprintable():
        raise bad(f"{key} is longer than {MAX_TEXT} characters or not printable")
    return value
