"""Checkpoints: one .safetensors file, with config and history as JSON in its metadata.

Loading reads the header itself before handing anything to safetensors, so a hostile file
(a pickle, a header that claims gigabytes, wrong names, shapes or dtypes, NaN weights) ends in
one CheckpointError and nothing in it is ever executed. Saving goes through atomic.write_atomic.
"""

from __future__ import annotations

import json
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load as st_load_numpy
from safetensors.torch import save as st_save

from latentlab.core.errors import CheckpointError, LatentLabError
from latentlab.core.models.config import ModelConfig, TrainConfig, from_json, to_json
from latentlab.core.models.vae import VAE
from latentlab.core.text import short

from .atomic import write_atomic
from .metadata import MAX_SPEC_CHARS, clean_history, validate_metadata
from .preview import LABELS, MEANS

FORMAT = "latentlab-vae"
FORMAT_VERSION = 1
PREVIEW_FORMAT_VERSION = 2   # format 1 plus the latent preview's tensors (core.files.preview)
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_FILE_BYTES = 4 * 1024 ** 3
_DTYPES = {"F32": np.float32}
PREVIEW_KEYS = (MEANS, LABELS)


@dataclass
class Checkpoint:
    model: VAE
    dataset: str
    history: list = field(default_factory=list)
    train_config: TrainConfig | None = None
    path: Path | None = None
    # One short line per metadata field that was dropped ("history ignored: row 3 has no 'kl'").
    warnings: tuple[str, ...] = ()
    # A user's model SPEC stored by foreign-weights files: a bounded string, never imported here.
    model_spec: str | None = None

    @property
    def config(self) -> ModelConfig:
        return self.model.cfg


def save_checkpoint(path, model: VAE, *, dataset: str, history=(), train_config: TrainConfig | None = None,
                    preview=None) -> Path:
    path = Path(path)
    write_atomic(path, checkpoint_bytes(model, dataset=dataset, history=history, train_config=train_config,
                                        preview=preview))
    return path


def checkpoint_bytes(model: VAE, *, dataset: str, history=(), train_config: TrainConfig | None = None,
                     preview=None) -> bytes:
    """The checkpoint file's contents: taken at once, so the weights may change right after.

    `preview`: (means, labels, label names) of `dataset`'s training images under these weights,
    stored so that a window can draw them before torch is imported (core.files.preview); left out when
    too large. A file with one is format 2, which older readers refuse in one sentence."""
    from .preview import preview_tensors

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    extra = preview_tensors(*preview, dataset) if preview is not None else None
    from latentlab._version import __version__

    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION if extra is None else PREVIEW_FORMAT_VERSION),
        "latentlab_version": __version__,
        "model_config": to_json(model.cfg),
        "dataset": dataset if len(dataset) <= MAX_SPEC_CHARS else "",
        "history": json.dumps(clean_history(history, model.latent_dim)),
    }
    if train_config is not None:
        metadata["train_config"] = to_json(train_config)
    if extra is not None:
        tensors.update({k: torch.from_numpy(v) for k, v in extra[0].items()})
        metadata.update(extra[1])
    return st_save(tensors, metadata=metadata)


def load_checkpoint(path, device: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    name = short(str(path), 120)
    data = read_bounded(path, "checkpoint", MAX_FILE_BYTES)
    ckpt = _parse(data, name, device)
    ckpt.path = path
    return ckpt


def read_bounded(path: Path, what: str, limit: int, error: type[LatentLabError] = CheckpointError) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; anything else is one sentence naming
    `what` (a folder, a FIFO or a device would block or never end, a huge file would fill memory)."""
    name = short(str(path), 120)
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise error(f"{name} is a folder, not a {what} file.")
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{name} is not a regular file, so it cannot be a {what}.")
        if st.st_size > limit:
            raise error(f"{name} is {st.st_size / 1024 ** 3:.1f} GiB, far larger than any {what} latentlab reads.")
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"The {what} {name} does not exist.") from None
    except LatentLabError:
        raise
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise error(f"Cannot read the {what} {name}: {getattr(exc, 'strerror', None) or _short(exc)}.") from None


def _parse(data: bytes, name: str, device) -> Checkpoint:
    _refuse_foreign(data, name)
    header = _header(data, name)
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{name} is a safetensors file but not a latentlab checkpoint (no latentlab metadata).")
    version = meta.get("format_version", "")
    if not (version.isascii() and version.isdigit()):
        raise CheckpointError(f"{name} has an unreadable format version {version[:40]!r}.")
    if len(version.lstrip("0")) > 6 or int(version) > PREVIEW_FORMAT_VERSION:
        version = version.lstrip("0")[:20]
        raise CheckpointError(f"{name} was written by a newer latentlab (format {version}, this one reads up to "
                              f"{PREVIEW_FORMAT_VERSION}); upgrade latentlab to open it.")
    try:
        if len(meta["model_config"]) > MAX_SPEC_CHARS:
            raise ValueError(f"{len(meta['model_config']):,} characters, far more than any model's layers need")
        cfg = from_json(ModelConfig, meta["model_config"])
        # Each layer has at least one tensor: refuse before building thousands of layers for a tiny file.
        layers = len(cfg.hidden) + (len(cfg.conv_channels) if cfg.arch == "conv" else 0)
        if layers > len(header):
            raise ValueError(f"{layers} layers but {len(header)} tensors")
        # On the meta device nothing is allocated, so a config that claims huge layers costs nothing;
        # the real weights come from the file once it has been checked against these shapes.
        with torch.device("meta"):
            model = VAE(cfg)
    except (KeyError, TypeError, ValueError, OverflowError, RuntimeError, RecursionError) as exc:
        raise CheckpointError(f"{name} has an invalid model description in its metadata ({_short(exc)}).") from None
    checked = validate_metadata(meta, cfg.latent_dim)

    expected = model.state_dict()
    # The latent preview is read (and checked) by core.files.preview, by the window, before torch; not part of the model.
    header = {k: v for k, v in header.items() if k not in PREVIEW_KEYS}
    for key, spec in header.items():
        if key not in expected:
            raise CheckpointError(f"{name} holds an unexpected tensor {key!r} for this model.")
        if not isinstance(spec, dict) or not isinstance(spec.get("dtype"), str) or spec["dtype"] not in _DTYPES:
            raise CheckpointError(f"{name}: tensor {key!r} has dtype {spec.get('dtype') if isinstance(spec, dict) else '?'}, expected F32.")
        if not isinstance(spec.get("shape"), list) or spec["shape"] != list(expected[key].shape):
            raise CheckpointError(f"{name}: tensor {key!r} has shape {spec.get('shape')}, expected {list(expected[key].shape)}.")
    missing = sorted(set(expected) - set(header))
    if missing:
        raise CheckpointError(f"{name} is missing the tensor {missing[0]!r}" + (f" and {len(missing) - 1} more." if len(missing) > 1 else "."))
    try:
        arrays = st_load_numpy(data)
    except Exception as exc:  # safetensors raises its own error types for malformed buffers
        raise CheckpointError(f"{name} is not a valid safetensors file ({_short(exc)}).") from None
    arrays = {k: v for k, v in arrays.items() if k not in PREVIEW_KEYS}
    for key, arr in arrays.items():
        # Checked again on what safetensors parsed, in case its JSON reading differs from ours (duplicate keys).
        if key not in expected or arr.dtype != np.float32 or arr.shape != tuple(expected[key].shape):
            raise CheckpointError(f"{name}: tensor {key!r} does not match the model its metadata describes.")
        if not np.isfinite(arr).all():
            raise CheckpointError(f"{name}: tensor {key!r} contains NaN or infinite values.")
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in arrays.items()}, assign=True)
    model.to(device).eval()
    return Checkpoint(model=model, dataset=checked.dataset, history=checked.history, train_config=checked.train_config,
                      warnings=checked.warnings, model_spec=checked.model_spec)


def pickled_format(data: bytes) -> str | None:
    """"zip" (a torch.save file) or "pickle" when `data` is one of those rather than safetensors, else
    None. A safetensors file whose header length happens to start with those bytes (0x80 0x02, "PK")
    is recognised by its JSON header and is not mistaken for one."""
    if len(data) >= 10:
        (n,) = struct.unpack("<Q", data[:8])
        if 2 <= n <= len(data) - 8 and data[8:9] == b"{":
            return None
    if data[:2] == b"PK":
        return "zip"
    if data[:1] == b"\x80" and len(data) > 1 and data[1] <= 5:
        return "pickle"
    return None


def _refuse_foreign(data: bytes, name: str) -> None:
    kind = pickled_format(data)
    if kind == "zip":
        raise CheckpointError(f"{name} is a zip archive (a torch.save file?), not a .safetensors checkpoint; "
                              "latentlab never unpickles files.")
    if kind == "pickle":
        raise CheckpointError(f"{name} is a Python pickle, not a .safetensors checkpoint; latentlab never unpickles files.")


def _header(data: bytes, name: str) -> dict:
    if len(data) < 8:
        raise CheckpointError(f"{name} is too short to be a safetensors checkpoint ({len(data)} bytes).")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or n > len(data) - 8:
        raise CheckpointError(f"{name} is not a valid safetensors file (its header claims {n} bytes, "
                              f"the file has {len(data)}).")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (ValueError, RecursionError):  # ValueError covers bad UTF-8, bad JSON and integers too long to read
        raise CheckpointError(f"{name} is not a valid safetensors file (its header is not JSON).") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name} is not a valid safetensors file (its header is not a JSON object).")
    meta = header.get("__metadata__")
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise CheckpointError(f"{name} has malformed metadata (safetensors metadata must map strings to strings).")
    return header


def _short(exc: Exception) -> str:
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text.splitlines()[0][:160]
