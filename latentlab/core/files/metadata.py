"""The one builder and the one validator of the metadata checkpoints and weights files carry
besides their tensors.

`build_metadata` is what every save writes: a bounded dataset spec and model spec, and a history
cleaned to what the validator accepts, so a saved file always reads back whole.

Every field is input from a possibly hostile file. `validate_metadata` turns the raw
string-to-string metadata into values the rest of latentlab can trust: a history of at most
MAX_HISTORY_ROWS rows with known keys and finite numbers of the right types, a bounded dataset
spec that parses as one, a type- and range-checked training config and an optional bounded
model spec. A bad optional field is dropped with one short warning (the weights are still good);
only a missing or bad model description refuses the file, in the caller.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from latentlab.core.data.specs import MAX_SPEC_CHARS
from latentlab.core.models.config import TrainConfig, from_json
from latentlab.core.text import quote, reason, short

CHECKPOINT_FORMAT = "latentlab-vae"      # latentlab's own VAE: config, weights, history
WEIGHTS_FORMAT = "latentlab-weights"     # a user's model fine-tuned: its state_dict, the SPEC to reopen it
MAX_HISTORY_ROWS = 100_000
# kl_per_dim values kept over the whole history: K = 100,000 for 30 epochs would otherwise be 60 MB
# of JSON, past the header limit; older rows lose their per-dimension split first.
MAX_KL_VALUES = 1_000_000
MAX_EPOCH = 10 ** 9

# key -> kind; rows must have the first five, the rest are optional.
REQUIRED = ("epoch", "beta", "recon", "kl", "elbo")
NUMBERS = ("beta", "recon", "kl", "elbo", "seconds", "test_recon", "test_kl", "test_elbo")


@dataclass(frozen=True)
class Metadata:
    history: list
    dataset: str
    train_config: TrainConfig | None
    model_spec: str | None
    warnings: tuple[str, ...]


class _Bad(ValueError):
    pass


def build_metadata(fmt: str, version: int, *, latent_dim: int, dataset: str = "", history=(),
                   model_spec: str | None = None, **fields: str | None) -> dict[str, str]:
    """The metadata a checkpoint or weights file is saved with: the format, the dataset and model
    SPECs (left out when longer than MAX_SPEC_CHARS, which no reader accepts), the history cleaned for
    a model of `latent_dim` dimensions, and `fields` (None values left out)."""
    from latentlab._version import __version__

    meta = {"format": fmt, "format_version": str(version), "latentlab_version": __version__,
            "dataset": dataset if isinstance(dataset, str) and len(dataset) <= MAX_SPEC_CHARS else "",
            "history": json.dumps(clean_history(history, latent_dim))}
    if model_spec is not None:
        meta["model_spec"] = model_spec if len(str(model_spec)) <= MAX_SPEC_CHARS else ""
    meta.update({k: str(v) for k, v in fields.items() if v is not None})
    return meta


def validate_metadata(meta: dict, latent_dim: int) -> Metadata:
    """Validated optional fields of a checkpoint's or weights file's metadata (the model config, if
    any, is checked by the caller); `latent_dim` is the model's, known once it is built."""
    warnings: list[str] = []
    history, note = validate_history(_json(meta.get("history", "[]"), "history"), latent_dim)
    if note:
        warnings.append(note)

    dataset = meta.get("dataset", "")
    try:
        dataset = validate_spec(dataset) if dataset else ""
    except _Bad as exc:
        warnings.append(f"dataset ignored: {exc}")
        dataset = ""

    train_config = None
    if "train_config" in meta:
        try:
            text = meta["train_config"]
            if len(text) > MAX_SPEC_CHARS:
                raise _Bad(f"{len(text):,} characters")
            train_config = from_json(TrainConfig, text)
        except (_Bad, ValueError, TypeError, OverflowError, RecursionError) as exc:
            warnings.append(f"training settings ignored: {reason(exc)}")

    model_spec = meta.get("model_spec")
    if model_spec is not None and (not isinstance(model_spec, str) or len(model_spec) > MAX_SPEC_CHARS
                                   or not model_spec.strip() or "\x00" in model_spec):
        warnings.append(f"model spec ignored: not a string of at most {MAX_SPEC_CHARS:,} characters")
        model_spec = None
    return Metadata(history, dataset, train_config, model_spec, tuple(short(w) for w in warnings))


def _json(text, what):
    if not isinstance(text, str):
        return _Bad(f"{what} is not JSON text")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        return _Bad(f"{what} is not valid JSON ({reason(exc, 60)})")


def validate_history(raw, latent_dim: int) -> tuple[list[dict], str | None]:
    """(rows, warning): the rows as clean dicts, or [] and why the history was ignored.

    A single bad row makes the whole history untrustworthy (curves with gaps or a shifted β would
    mislead), so it is ignored as a whole; a history longer than MAX_HISTORY_ROWS keeps its newest
    rows. Unknown keys are dropped.
    """
    if isinstance(raw, _Bad):
        return [], f"history ignored: {raw}"
    if not isinstance(raw, list):
        return [], "history ignored: it is not a list of records"
    note = None
    if len(raw) > MAX_HISTORY_ROWS:
        note = f"history trimmed to the newest {MAX_HISTORY_ROWS:,} of {len(raw):,} rows"
        raw = raw[-MAX_HISTORY_ROWS:]
    rows = []
    try:
        for i, row in enumerate(raw):
            rows.append(_row(row, latent_dim, i + 1))
    except _Bad as exc:
        return [], f"history ignored: {exc}"
    dropped = trim_kl_values(rows)
    if dropped and note is None:
        note = f"per-dimension KL kept for the newest {len(rows) - dropped:,} of {len(rows):,} epochs"
    return rows, note


def _row(row, k: int, n: int) -> dict:
    if not isinstance(row, dict):
        raise _Bad(f"row {n} is not a record")
    missing = [key for key in REQUIRED if key not in row]
    if missing:
        raise _Bad(f"row {n} has no {quote(missing[0], 20)}")
    out = {}
    epoch = row["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_EPOCH:
        raise _Bad(f"row {n} has the epoch {quote(epoch, 30)}, not a whole number from 0 to {MAX_EPOCH:,}")
    out["epoch"] = epoch
    for key in NUMBERS:
        if key in row:
            out[key] = _number(row[key], key, n)
    if out["beta"] < 0:
        raise _Bad(f"row {n} has a negative beta")
    if "kl_per_dim" in row:
        v = row["kl_per_dim"]
        if not isinstance(v, list) or len(v) != k:
            size = f"{len(v):,} values" if isinstance(v, list) else "not a list"
            raise _Bad(f"row {n} has kl_per_dim of {size}; the model has {k:,} dimensions")
        if not all(type(x) in (int, float) for x in v):
            raise _Bad(f"row {n} has kl_per_dim values that are not numbers")
        arr = np.asarray(v, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise _Bad(f"row {n} has kl_per_dim values that are not finite")
        out["kl_per_dim"] = arr.tolist()
    return out


def _number(v, key: str, n: int) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(f"row {n} has {key} {quote(v, 30)}, not a number")
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        raise _Bad(f"row {n} has a {key} that is not finite")
    return f


def trim_kl_values(rows: list[dict], budget: int = MAX_KL_VALUES) -> int:
    """Drop kl_per_dim from the oldest rows until at most `budget` values remain; returns rows trimmed."""
    total, trimmed = 0, 0
    for row in reversed(rows):
        v = row.get("kl_per_dim")
        if v is None:
            continue
        if total + len(v) > budget:
            del row["kl_per_dim"]
            trimmed += 1
        else:
            total += len(v)
    return trimmed


def clean_history(history, latent_dim: int) -> list[dict]:
    """A history safe to save: known keys only, bounded in rows and kl_per_dim values.

    Rows the validator would refuse are left out, so a saved file always reads back."""
    rows = []
    for i, row in enumerate(list(history)[-MAX_HISTORY_ROWS:]):
        try:
            rows.append(_row(row, latent_dim, i + 1))
        except _Bad:
            continue
    trim_kl_values(rows)
    return rows


def validate_spec(spec) -> str:
    """A dataset spec from a file: a string of at most MAX_SPEC_CHARS that parses as a spec."""
    from latentlab.core.data.specs import parse_spec
    from latentlab.core.errors import DatasetError

    if not isinstance(spec, str):
        raise _Bad("the dataset spec is not a string")
    if len(spec) > MAX_SPEC_CHARS:
        raise _Bad(f"the dataset spec is {len(spec):,} characters long (at most {MAX_SPEC_CHARS:,})")
    try:
        parse_spec(spec)
    except DatasetError as exc:
        raise _Bad(short(str(exc), 160)) from None
    return spec


def history_series(history: list[dict], max_dims: int = 32) -> dict[str, np.ndarray]:
    """Arrays the curves draw, from a validated history: epoch, recon, kl, neg_elbo and per_dim
    (epochs × at most max_dims columns, the dimensions with the largest latest KL; NaN where a row
    has no split) with dims, the indices of those columns."""
    epochs = np.array([r["epoch"] for r in history], dtype=float)
    recon = np.array([r["recon"] for r in history], dtype=float)
    kl = np.array([r["kl"] for r in history], dtype=float)
    latest = next((r["kl_per_dim"] for r in reversed(history) if "kl_per_dim" in r), None)
    if latest is None:
        dims = np.zeros(0, dtype=int)
    else:
        dims = np.sort(np.argsort(-np.asarray(latest), kind="stable")[:max_dims])
    per_dim = np.full((len(history), len(dims)), np.nan)
    for i, r in enumerate(history):
        v = r.get("kl_per_dim")
        if v is not None and len(v) == len(latest):
            per_dim[i] = np.asarray(v)[dims]
    return {"epoch": epochs, "recon": recon, "kl": kl, "neg_elbo": recon + kl, "per_dim": per_dim, "dims": dims}
