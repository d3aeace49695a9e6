"""Weights written by torch.save (a PyTorch Lightning `.ckpt`, a bare state_dict, pythae's
`model.pt`), read for a model SPEC from a file the user names with `--weights`, never from one
latentlab finds by itself (a checkpoint's metadata never leads here).

They are read with `torch.load(weights_only=True)`: torch's restricted unpickler, which rebuilds
tensors and plain containers and refuses every other class, so no code in the file runs. A file
that holds other objects (some Lightning checkpoints keep hyper-parameters as custom classes) is
refused with one sentence saying how to save the state_dict alone.

The state dict is found where the libraries put it (`state_dict` in a Lightning checkpoint,
`model_state_dict` in pythae's) and matched to the model by stripping the one prefix that makes
its names fit (Lightning's `model.` for a LightningModule holding the VAE as `self.model`); every
tensor is then checked by name, shape, dtype and finiteness, and a mismatch names the first
missing and unexpected keys.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from latentlab.core.data.checks import check_memory, open_regular
from latentlab.core.errors import ModelError
from latentlab.core.text import short

STATE_KEYS = ("state_dict", "model_state_dict")
SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".tar")   # torch.save's usual names; .safetensors never comes here
MAX_TORCH_WEIGHTS_BYTES = 16 * 1024 ** 3


def is_torch_file(path) -> bool:
    """A torch.save file the user named as one: a torch.save name (.ckpt, .pt, ...) and a zip archive
    or a pickle by its first bytes. A `.safetensors` name is never read this way (a pickle in
    disguise is refused by the safetensors reader)."""
    if Path(path).suffix.lower() not in SUFFIXES:
        return False
    with open_regular(Path(path), ModelError, "weights file") as f:   # a FIFO or a device: one sentence, no hang
        head = f.read(10)
    if len(head) >= 10 and 2 <= int.from_bytes(head[:8], "little") and head[8:9] == b"{":
        return False   # a safetensors header length that happens to begin like a pickle
    return head[:2] == b"PK" or (head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5)


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """The tensors of a torch.save file the user named, by torch's weights-only loader."""
    path = Path(path)
    name = short(str(path), 120)
    with open_regular(path, ModelError, "weights file") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_TORCH_WEIGHTS_BYTES:
            raise ModelError(f"{name} is {size / 1024 ** 3:.1f} GB, more than any weights file latentlab reads "
                             f"({MAX_TORCH_WEIGHTS_BYTES // 1024 ** 3} GB).")
        check_memory(2 * size, f"Reading the weights file {name}")   # the bytes, and the tensors built from them
        data = f.read(size + 1)
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - the unpickler names what it refused in many error types
        hint = _refused_global(str(exc))
        raise ModelError(f"{name} is a pickle that torch's weights-only loader refuses"
                         + (f" (it holds {hint}, not only tensors)" if hint else f" ({type(exc).__name__})")
                         + "; nothing in it ran. Save the state dict alone, e.g. "
                           "torch.save(ckpt['state_dict'], 'weights.pt').") from None
    for key in STATE_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise ModelError(f"{name} holds no state dict (a Lightning checkpoint's 'state_dict', or a dict of tensors).")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelError(f"{name} holds no tensors under its state dict.")
    return tensors


def _refused_global(message: str) -> str:
    """The class the weights-only unpickler refused, from its message ('Unsupported global: GLOBAL x.Y')."""
    marker = "GLOBAL "
    at = message.find(marker)
    if at < 0:
        return ""
    return short(message[at + len(marker):].split()[0].rstrip(".,:"), 80)


def fit_to(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> tuple[dict, str]:
    """`tensors` renamed to the model's names: as they are, or with the one prefix stripped that
    makes every expected name present. Returns (tensors, the prefix stripped or '')."""
    if set(expected) <= set(tensors):
        return {k: tensors[k] for k in expected}, ""
    prefixes = {}
    for key in tensors:
        for i, ch in enumerate(key):
            if ch == "." and key[i + 1:] in expected:
                prefixes[key[:i + 1]] = prefixes.get(key[:i + 1], 0) + 1
    for prefix, _ in sorted(prefixes.items(), key=lambda kv: -kv[1]):
        renamed = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if set(expected) <= set(renamed):
            return {k: renamed[k] for k in expected}, prefix
    best = max(prefixes, key=prefixes.get) if prefixes else ""
    renamed = {k[len(best):]: v for k, v in tensors.items() if k.startswith(best)} if best else tensors
    missing = sorted(set(expected) - set(renamed))
    unexpected = sorted(set(renamed) - set(expected))
    lines = [f"Missing key(s): {_keys(missing)}"] + ([f"Unexpected key(s): {_keys(unexpected)}"] if unexpected else [])
    err = ModelError(f"The weights do not fit this model{f' (after stripping the prefix {best!r})' if best else ''}: "
                     f"{len(missing)} of its {len(expected)} tensors are missing.")
    err.detail = tuple(lines)
    raise err


def _keys(keys) -> str:
    shown = ", ".join(repr(k) for k in keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def load_torch_weights(module: torch.nn.Module, path) -> str:
    """Put a torch.save file's weights into `module` (checked as safetensors weights are); returns
    a note naming the prefix stripped, or ''."""
    name = short(str(path), 120)
    expected = module.state_dict()
    tensors, prefix = fit_to(read_state_dict(path), expected)
    for key, t in tensors.items():
        want = expected[key]
        if t.shape != want.shape:
            raise ModelError(f"{name}: tensor {key!r} has shape {tuple(t.shape)}, the model expects {tuple(want.shape)}.")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ModelError(f"{name}: tensor {key!r} contains NaN or infinite values.")
        if t.dtype != want.dtype:
            if not (t.is_floating_point() and want.is_floating_point()):
                raise ModelError(f"{name}: tensor {key!r} is {t.dtype}, the model expects {want.dtype}.")
            tensors[key] = t.to(want.dtype)
    module.load_state_dict(tensors)
    return f"read {len(tensors)} tensors from {name}" + (f", prefix {prefix!r} stripped" if prefix else "")
