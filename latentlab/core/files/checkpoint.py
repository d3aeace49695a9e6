"""Checkpoints: one .safetensors file, with config and history as JSON in its metadata.

Loading reads and checks the header first (core.files.safetensors_file), then the model's
tensors alone through a memory map, so a hostile file (a pickle, a header that claims gigabytes, an
extra tensor of gigabytes, wrong names, shapes or dtypes, NaN weights) ends in one CheckpointError,
costs at most what the model needs, and nothing in it is ever executed. Saving streams the file
(core.files.safetensors_file) through atomic.atomic_writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from latentlab.core.errors import CheckpointError
from latentlab.core.models.config import ModelConfig, TrainConfig, from_json, to_json
from latentlab.core.models.vae import VAE
from latentlab.core.text import quote, short

from .atomic import atomic_writer
from .metadata import CHECKPOINT_FORMAT as FORMAT
from .metadata import MAX_SPEC_CHARS, WEIGHTS_FORMAT, build_metadata, validate_metadata
from .preview import LABELS, MEANS
from .safetensors_file import Header, pickled_format, read_header, read_tensors, tensors_bytes, write_tensors

__all__ = ["FORMAT", "Checkpoint", "checkpoint_bytes", "load_checkpoint", "pickled_format", "save_checkpoint"]

FORMAT_VERSION = 1
PREVIEW_FORMAT_VERSION = 2   # format 1 plus the latent preview's tensors (core.files.preview)
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
    tensors, metadata = checkpoint_tensors(model, dataset=dataset, history=history, train_config=train_config,
                                           preview=preview)
    with atomic_writer(path) as f:   # streamed: the interpreter stays free for other threads
        write_tensors(f, tensors, metadata)
    return path


def checkpoint_bytes(model: VAE, *, dataset: str, history=(), train_config: TrainConfig | None = None,
                     preview=None) -> bytes:
    """The checkpoint file's contents: taken at once, so the weights may change right after."""
    return tensors_bytes(*checkpoint_tensors(model, dataset=dataset, history=history, train_config=train_config,
                                             preview=preview))


def checkpoint_tensors(model: VAE, *, dataset: str, history=(), train_config: TrainConfig | None = None,
                       preview=None) -> tuple[dict, dict]:
    """The checkpoint's tensors and metadata.

    `preview`: (means, labels, label names) of `dataset`'s training images under these weights,
    stored so that a window can draw them before torch is imported (core.files.preview); left out when
    too large. A file with one is format 2, which older readers refuse in one sentence."""
    from .preview import preview_tensors

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    extra = preview_tensors(*preview, dataset) if preview is not None else None
    metadata = build_metadata(FORMAT, FORMAT_VERSION if extra is None else PREVIEW_FORMAT_VERSION,
                              latent_dim=model.latent_dim, dataset=dataset, history=history,
                              model_config=to_json(model.cfg),
                              train_config=to_json(train_config) if train_config is not None else None)
    if extra is not None:
        tensors.update({k: torch.from_numpy(v) for k, v in extra[0].items()})
        metadata.update(extra[1])
    return tensors, metadata


def load_checkpoint(path, device: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    header = read_header(path, "checkpoint", CheckpointError, MAX_FILE_BYTES)
    ckpt = _parse(header, short(str(path), 120), device)
    ckpt.path = path
    return ckpt


def _parse(header: Header, name: str, device) -> Checkpoint:
    meta = header.metadata
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        if isinstance(meta, dict) and meta.get("format") == WEIGHTS_FORMAT:
            spec = meta.get("model_spec") or "SPEC"
            raise CheckpointError(f"{short(header.path.name, 40)} holds fine-tuned weights, not a checkpoint: open "
                                  f"it with --model {short(spec, 100)} --weights {short(str(header.path), 100)}.")
        raise CheckpointError(f"{name} is a safetensors file but not a latentlab checkpoint (no latentlab metadata).")
    version = meta.get("format_version", "")
    if not (version.isascii() and version.isdigit()):
        raise CheckpointError(f"{name} has an unreadable format version {quote(version[:40], 40)}.")
    if len(version.lstrip("0")) > 6 or int(version) > PREVIEW_FORMAT_VERSION:
        version = version.lstrip("0")[:20]
        raise CheckpointError(f"{name} was written by a newer latentlab (format {version}, this one reads up to "
                              f"{PREVIEW_FORMAT_VERSION}); upgrade latentlab to open it.")
    # The latent preview is read (and checked) by core.files.preview, by the window, before torch; not part of the model.
    entries = {k: v for k, v in header.tensors.items() if k not in PREVIEW_KEYS}
    try:
        if len(meta["model_config"]) > MAX_SPEC_CHARS:
            raise ValueError(f"{len(meta['model_config']):,} characters, far more than any model's layers need")
        cfg = from_json(ModelConfig, meta["model_config"])
        # Each layer has at least one tensor: refuse before building thousands of layers for a tiny file.
        layers = len(cfg.hidden) + (len(cfg.conv_channels) if cfg.arch == "conv" else 0)
        if layers > len(entries):
            raise ValueError(f"{layers} layers but {len(entries)} tensors")
        # On the meta device nothing is allocated, so a config that claims huge layers costs nothing;
        # the real weights come from the file once it has been checked against these shapes.
        with torch.device("meta"):
            model = VAE(cfg)
    except (KeyError, TypeError, ValueError, OverflowError, RuntimeError, RecursionError) as exc:
        raise CheckpointError(f"{name} has an invalid model description in its metadata ({_short(exc)}).") from None
    checked = validate_metadata(meta, cfg.latent_dim)

    expected = model.state_dict()
    for key, entry in entries.items():
        if key not in expected:
            raise CheckpointError(f"{name} holds an unexpected tensor {quote(key, 80)} for this model.")
        if entry.dtype not in _DTYPES:
            raise CheckpointError(f"{name}: tensor {quote(key, 80)} has dtype {entry.dtype}, expected F32.")
        if list(entry.shape) != list(expected[key].shape):
            raise CheckpointError(f"{name}: tensor {quote(key, 80)} has shape {list(entry.shape)}, "
                                  f"expected {list(expected[key].shape)}.")
    missing = sorted(set(expected) - set(entries))
    if missing:
        raise CheckpointError(f"{name} is missing the tensor {missing[0]!r}" + (f" and {len(missing) - 1} more." if len(missing) > 1 else "."))
    arrays = read_tensors(header, entries, "numpy", CheckpointError, "checkpoint")
    for key, arr in arrays.items():
        # Checked again on what safetensors parsed, in case its JSON reading differs from ours.
        if key not in expected or arr.dtype != np.float32 or arr.shape != tuple(expected[key].shape):
            raise CheckpointError(f"{name}: tensor {quote(key, 80)} does not match the model its metadata describes.")
        if not np.isfinite(arr).all():
            raise CheckpointError(f"{name}: tensor {quote(key, 80)} contains NaN or infinite values.")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, assign=True)
    model.to(device).eval()
    return Checkpoint(model=model, dataset=checked.dataset, history=checked.history, train_config=checked.train_config,
                      warnings=checked.warnings, model_spec=checked.model_spec)


def _short(exc: Exception) -> str:
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return short(text.splitlines()[0], 160)
