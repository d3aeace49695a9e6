"""Checkpoints: one .safetensors file, with config and history as JSON in its metadata.

Loading reads the header itself before handing anything to safetensors, so a hostile file
(a pickle, a header that claims gigabytes, wrong names, shapes or dtypes, NaN weights) ends in
one CheckpointError and nothing in it is ever executed. Saving is atomic: temporary file in the
same folder, fsync, then os.replace, so a crash mid-save leaves the previous file intact; the next
save of that file removes the temporary file a killed save left behind.
"""

from __future__ import annotations

import json
import os
import re
import stat
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load as st_load_numpy
from safetensors.torch import save as st_save

from .config import ModelConfig, TrainConfig, from_json, to_json
from .errors import CheckpointError
from .model import VAE

try:
    import fcntl
except ImportError:  # Windows: a file that is open cannot be deleted there, which protects live writers as well
    fcntl = None

FORMAT = "latentlab-vae"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_FILE_BYTES = 4 * 1024 ** 3
_DTYPES = {"F32": np.float32}


@dataclass
class Checkpoint:
    model: VAE
    dataset: str
    history: list = field(default_factory=list)
    train_config: TrainConfig | None = None
    path: Path | None = None

    @property
    def config(self) -> ModelConfig:
        return self.model.cfg


def save_checkpoint(path, model: VAE, *, dataset: str, history=(), train_config: TrainConfig | None = None) -> Path:
    path = Path(path)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    from .._version import __version__

    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "latentlab_version": __version__,
        "model_config": to_json(model.cfg),
        "dataset": dataset,
        "history": json.dumps(list(history)),
    }
    if train_config is not None:
        metadata["train_config"] = to_json(train_config)
    write_atomic(path, st_save(tensors, metadata=metadata))
    return path


def write_atomic(path: Path, payload: bytes) -> None:
    """Write bytes so that `path` holds either its old content or all of the new, never a mix."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    _remove_stale_temps(folder, path.name)
    try:
        fd, tmp = _locked_temp(folder, path.name)
    except OSError as exc:
        raise CheckpointError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
            if fcntl is not None:
                os.replace(tmp, path)  # still locked, so another save's clean-up cannot take it first
        if fcntl is None:
            os.replace(tmp, path)  # Windows cannot rename a file that is open
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise CheckpointError(f"Cannot write {path}: {exc.strerror or exc}.") from None
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # some filesystems do not fsync directories; the file itself is already durable


def _locked_temp(folder: Path, name: str) -> tuple[int, str]:
    """A new temporary file beside the target, flocked: the lock marks it as live until the rename.

    Another save's clean-up may take the file between mkstemp and flock; then we make a new one.
    """
    for _ in range(100):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        if fcntl is None:
            return fd, tmp
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.path.samestat(os.fstat(fd), os.lstat(tmp)):
                return fd, tmp
        except FileNotFoundError:
            pass
        except OSError:
            return fd, tmp  # no flock on this filesystem: save without the marker
        os.close(fd)
    return tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)


def _remove_stale_temps(folder: Path, name: str) -> None:
    """Delete the temporary files that earlier saves of `name` left behind when they were killed.

    Only names that write_atomic makes (`.NAME.` + mkstemp's 8 random characters + `.tmp`) are
    touched, and only when no live writer holds them: a writer keeps an flock on its temporary file
    until the rename, and the kernel drops it when the writer dies, even by SIGKILL.
    """
    pattern = re.compile(re.escape(f".{name}.") + r"[a-z0-9_]{8}\.tmp")
    try:
        stale = [e.path for e in os.scandir(folder) if pattern.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    except OSError:
        return
    for tmp in stale:
        try:
            if fcntl is None:
                os.unlink(tmp)  # fails while a live writer has it open
                continue
            fd = os.open(tmp, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError while its writer lives
                if os.path.samestat(os.fstat(fd), os.lstat(tmp)):  # still the file we locked
                    os.unlink(tmp)
            finally:
                os.close(fd)
        except OSError:
            pass


def load_checkpoint(path, device: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    name = str(path)
    try:
        st = path.stat()
        size = st.st_size
        if stat.S_ISDIR(st.st_mode):
            raise CheckpointError(f"{name} is a folder, not a checkpoint file.")
        if not stat.S_ISREG(st.st_mode):  # a FIFO or a device would block or never end
            raise CheckpointError(f"{name} is not a regular file, so it cannot be a checkpoint.")
        if size > MAX_FILE_BYTES:
            raise CheckpointError(f"{name} is {size / 1024 ** 3:.1f} GiB, far larger than any latentlab checkpoint.")
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint {name} does not exist.") from None
    except CheckpointError:
        raise
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise CheckpointError(f"Cannot read checkpoint {name}: {getattr(exc, 'strerror', None) or _short(exc)}.") from None
    ckpt = _parse(data, name, device)
    ckpt.path = path
    return ckpt


def _parse(data: bytes, name: str, device) -> Checkpoint:
    _refuse_foreign(data, name)
    header = _header(data, name)
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{name} is a safetensors file but not a latentlab checkpoint (no latentlab metadata).")
    version = meta.get("format_version", "")
    if not (version.isascii() and version.isdigit()):
        raise CheckpointError(f"{name} has an unreadable format version {version[:40]!r}.")
    if len(version.lstrip("0")) > 6 or int(version) > FORMAT_VERSION:
        version = version.lstrip("0")[:20]
        raise CheckpointError(f"{name} was written by a newer latentlab (format {version}, this one reads up to "
                              f"{FORMAT_VERSION}); upgrade latentlab to open it.")
    try:
        cfg = from_json(ModelConfig, meta["model_config"])
        history = json.loads(meta.get("history", "[]"))
        train_cfg = from_json(TrainConfig, meta["train_config"]) if "train_config" in meta else None
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
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise CheckpointError(f"{name} has a training history that is not a list of records.")

    expected = model.state_dict()
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
    for key, arr in arrays.items():
        # Checked again on what safetensors parsed, in case its JSON reading differs from ours (duplicate keys).
        if key not in expected or arr.dtype != np.float32 or arr.shape != tuple(expected[key].shape):
            raise CheckpointError(f"{name}: tensor {key!r} does not match the model its metadata describes.")
        if not np.isfinite(arr).all():
            raise CheckpointError(f"{name}: tensor {key!r} contains NaN or infinite values.")
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in arrays.items()}, assign=True)
    model.to(device).eval()
    return Checkpoint(model=model, dataset=str(meta.get("dataset", "")), history=history, train_config=train_cfg)


def _refuse_foreign(data: bytes, name: str) -> None:
    if data[:2] == b"PK":
        raise CheckpointError(f"{name} is a zip archive (a torch.save file?), not a .safetensors checkpoint; "
                              "latentlab never unpickles files.")
    if data[:1] == b"\x80" and len(data) > 1 and data[1] <= 5:
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
