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
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load as st_load_numpy
from safetensors.torch import save as st_save

from .config import ModelConfig, TrainConfig, from_json, to_json
from .errors import CheckpointError, LatentLabError
from .metadata import MAX_SPEC_CHARS, clean_history, validate_metadata
from .model import VAE
from .preview import LABELS, MEANS
from .text import reason, short

try:
    import fcntl
except ImportError:  # Windows: a file that is open cannot be deleted there, which protects live writers as well
    fcntl = None

FORMAT = "latentlab-vae"
FORMAT_VERSION = 1
PREVIEW_FORMAT_VERSION = 2   # format 1 plus the latent preview's tensors (core.preview)
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
    stored so that a window can draw them before torch is imported (core.preview); left out when
    too large. A file with one is format 2, which older readers refuse in one sentence."""
    from .preview import preview_tensors

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    extra = preview_tensors(*preview, dataset) if preview is not None else None
    from .._version import __version__

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


class BackgroundWriter:
    """Atomic writes on a thread of their own, so a training loop never waits for the disk.

    A payload still waiting for its turn is replaced by a newer one (only the newest state of a
    file matters); a write that failed is raised by the next `submit` or by `flush`, which waits
    until everything submitted is on disk.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._pending: tuple[Path, bytes] | None = None
        self._busy = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def submit(self, path, payload: bytes) -> None:
        with self._cond:
            self._raise()
            self._pending = (Path(path), payload)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="checkpoint-writer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self) -> None:
        with self._cond:
            while self._pending is not None or self._busy:
                self._cond.wait()
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None:
                    self._cond.wait()
                (path, payload), self._pending = self._pending, None
                self._busy = True
            try:
                write_atomic(path, payload)
            except BaseException as exc:  # noqa: BLE001 - handed to the training thread at its next call
                with self._cond:
                    self._error = exc
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


def prepare_out(out) -> Path:
    """Check that a checkpoint can be written at `out` and return where a run should save.

    The folder is created if needed. When `out` already holds a file, the run saves to a sibling
    `NAME.partial.SUFFIX` and the caller replaces `out` with it only once the run has finished well,
    so a run that stops or diverges never leaves anything worse than what was there.
    """
    out = Path(out)
    name = short(str(out))
    if out.is_dir():
        raise CheckpointError(f"{name} is a folder; give a file name such as {short(str(out / 'model.safetensors'))}.")
    folder = out.parent if str(out.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CheckpointError(f"Cannot create the folder {short(str(folder))}: a file is in the way.") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"Cannot create the folder {short(str(folder))} ({reason(exc)}).") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(f"Cannot write {name}: the folder {short(str(folder))} is not writable.")
    if out.exists() or out.is_symlink():
        return out.with_name(f"{out.stem}.partial{out.suffix}")
    return out


def write_atomic(path: Path, payload: bytes) -> None:
    """Write bytes so that `path` holds either its old content or all of the new, never a mix."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    _remove_stale_temps(folder, path.name)
    try:
        fd, tmp = _locked_temp(folder, path.name)
    except OSError as exc:
        raise CheckpointError(f"Cannot write {short(str(path), 120)}: {reason(exc)}.") from None
    try:
        _set_mode(fd, path)
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
            raise CheckpointError(f"Cannot write {short(str(path), 120)}: {reason(exc)}.") from None
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # some filesystems do not fsync directories; the file itself is already durable


def _set_mode(fd: int, path: Path) -> None:
    """mkstemp makes 0600 files; a checkpoint gets the mode it had, or what a new file gets (umask)."""
    if not hasattr(os, "fchmod"):
        return
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    os.fchmod(fd, mode)


def _umask() -> int:
    try:  # read without changing it: os.umask can only be read by setting it, which races other threads
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
    # The latent preview is read (and checked) by core.preview, by the window, before torch; not part of the model.
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
