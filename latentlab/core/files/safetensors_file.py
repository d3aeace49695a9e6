"""Safetensors files: read header first (the one reader of checkpoints, weights files, previews and a
diffusers folder's weights), and written as a stream (the one writer of checkpoints and weights files).

A file is opened only if it is a regular file (a FIFO or a device would block or never end), and
only its header is read at first, bounded (MAX_HEADER_BYTES): its JSON is parsed and every tensor's
entry checked (a known dtype, a shape of non-negative integers, data offsets that match the shape's
size, lie inside the file's real size and cover it without gaps or overlaps) before a single tensor
byte is read. A pickle, a zip (torch.save), a header that claims gigabytes, an all-zero or truncated
file each end in one sentence after reading at most the header. Tensors are then read through
safetensors' memory map, only those asked for, so a file with an extra tensor of gigabytes costs
nothing; their total is checked against free memory first. Imports numpy only when tensors are read
and never torch (the window reads previews before torch is imported).

Writing puts the header, then each tensor's bytes straight from its memory. safetensors.torch.save
makes the whole file as one bytes object and holds the interpreter lock while it does (a quarter of a
second for 290 MB of weights), so a window whose save ran on a worker still froze for that long; a
file's write lets go of the lock. The layout is safetensors' own: the same tensor order, offsets and
padding, and the same bytes but for the order of the metadata's keys, which safetensors leaves to a
hash map (tests/core/files/test_safetensors_writing.py compares the two).
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from latentlab.core.data.checks import open_regular
from latentlab.core.errors import CheckpointError, LatentLabError, ResourceError
from latentlab.core.memory import check_fits
from latentlab.core.text import quote, reason, short

MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_DIMS = 16
# Bytes per element of every dtype the safetensors format defines.
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


@dataclass(frozen=True)
class Entry:
    """One tensor as the header declares it (already checked against the file's size)."""
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


@dataclass(frozen=True)
class Header:
    path: Path
    size: int                        # the file's real size in bytes
    tensors: dict[str, Entry]
    metadata: dict[str, str] | None  # None when the file has no __metadata__


def pickled_format(start: bytes, size: int | None = None) -> str | None:
    """"zip" (a torch.save file) or "pickle" when a file of `size` bytes (default len(start)) that
    begins with `start` is one of those rather than safetensors, else None. A safetensors file whose
    header length happens to start with those bytes (0x80 0x02, "PK") is recognised by its JSON
    header and is not mistaken for one."""
    size = len(start) if size is None else size
    if len(start) >= 9:
        (n,) = struct.unpack("<Q", start[:8])
        if 2 <= n <= size - 8 and start[8:9] == b"{":
            return None
    if start[:2] == b"PK":
        return "zip"
    if start[:1] == b"\x80" and len(start) > 1 and start[1] <= 5:
        return "pickle"
    return None


def read_header(path, what: str = "safetensors file", error: type[LatentLabError] = CheckpointError,
                max_file_bytes: int | None = None) -> Header:
    """The checked header of the safetensors file at `path`; `error` with one sentence naming `what`
    for anything else. Reads at most 8 + MAX_HEADER_BYTES bytes, whatever the file's size."""
    path = Path(path)
    name = short(str(path), 120)
    with open_regular(path, error, what) as f:
        size = os.fstat(f.fileno()).st_size
        if max_file_bytes is not None and size > max_file_bytes:
            raise error(f"{name} is {size / 1024 ** 3:.1f} GiB, far larger than any {what} latentlab reads.")
        try:
            start = f.read(9)
            kind = pickled_format(start, size)
            if kind is not None:
                raise error(_pickle_sentence(name, kind, what))
            if len(start) < 8:
                raise error(f"{name} is too short to be a {what} ({size} bytes).")
            (n,) = struct.unpack("<Q", start[:8])
            if n > MAX_HEADER_BYTES:
                raise error(f"{name} is not a valid safetensors file: its header claims {n:,} bytes, more than "
                            f"the {MAX_HEADER_BYTES // 2 ** 20} MB latentlab reads.")
            if n > size - 8:
                raise error(f"{name} is not a valid safetensors file (its header claims {n:,} bytes, "
                            f"the file has {size:,}).")
            f.seek(8)
            raw = f.read(n)
        except OSError as exc:
            raise error(f"Cannot read the {what} {name} ({reason(exc)}).") from None
    if len(raw) != n:
        raise error(f"{name} changed while it was read.")
    return _parse(raw, path, name, size, what, error)


def read_metadata(path) -> dict[str, str]:
    """The metadata of a safetensors file, {} when it has none or is not a readable one (a peek that
    reads the header only and imports nothing)."""
    try:
        return read_header(path).metadata or {}
    except LatentLabError:
        return {}


def read_tensors(header: Header, names, framework: str = "numpy", error: type[LatentLabError] = CheckpointError,
                 what: str = "file") -> dict:
    """The tensors `names` of a checked header, read through safetensors' memory map (only these; the
    rest of the file is never read), after checking that they fit in memory."""
    names = list(names)
    need = sum(header.tensors[k].nbytes for k in names)
    try:
        check_fits(need, f"Reading the {what} {short(str(header.path), 120)}")
    except ResourceError as exc:
        raise error(str(exc)) from None
    from safetensors import safe_open

    try:
        with safe_open(str(header.path), framework=framework) as f:
            return {k: f.get_tensor(k) for k in names}
    except BaseException as exc:  # noqa: BLE001 - the binding panics (a BaseException) on what it cannot read
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        raise error(f"{short(str(header.path), 120)} could not be read ({reason(exc)}).") from None


def _pickle_sentence(name: str, kind: str, what: str) -> str:
    if kind == "zip":
        return (f"{name} is a zip archive (a torch.save file?), not a .safetensors {what}; "
                "latentlab never unpickles files.")
    return f"{name} is a Python pickle, not a .safetensors {what}; latentlab never unpickles files."


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"the name {quote(dup, 60)} appears twice")
    return dict(pairs)


def _parse(raw: bytes, path: Path, name: str, size: int, what: str, error) -> Header:
    invalid = f"{name} is not a valid safetensors file"
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise error(f"{invalid} (its header is not JSON it can read: nested too deeply).") from None
    except ValueError as exc:  # bad UTF-8, bad JSON, a duplicate name, integers too long to read
        detail = reason(exc, 80) if "appears twice" in str(exc) else "its header is not JSON"
        raise error(f"{invalid} ({detail}).") from None
    if not isinstance(header, dict):
        raise error(f"{invalid} (its header is not a JSON object).")
    meta = header.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise error(f"{name} has malformed metadata (safetensors metadata must map strings to strings).")
    tensors, spans = {}, []
    for key, spec in header.items():
        entry, span = _entry(spec)
        if entry is None:
            raise error(f"{invalid} (the tensor {quote(key, 60)} is described wrongly: {span}).")
        tensors[key] = entry
        spans.append((*span, key))
    body = size - 8 - len(raw)
    at = 0
    for begin, end, key in sorted(spans):
        if begin != at:
            why = "overlaps another" if begin < at else "leaves a gap before it"
            raise error(f"{invalid} (the tensor {quote(key, 60)} {why}).")
        if end > body:
            raise error(f"{invalid}: the tensor {quote(key, 60)} needs bytes up to {end:,} of the data, but the "
                        f"file holds {body:,} (it is truncated or claims more than it has).")
        at = end
    if at != body:
        raise error(f"{invalid} ({body - at:,} bytes after the last tensor).")
    return Header(path, size, tensors, meta)


def _entry(spec) -> tuple[Entry | None, object]:
    """(Entry, (begin, end)) for a well-formed tensor description, else (None, why)."""
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        return None, "not a record of dtype, shape and data_offsets"
    dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        return None, f"unknown dtype {quote(dtype, 20)}"
    if (not isinstance(shape, list) or len(shape) > MAX_DIMS
            or not all(type(v) is int and 0 <= v < 2 ** 63 for v in shape)):
        return None, "the shape is not a list of non-negative whole numbers"
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(type(v) is int and 0 <= v < 2 ** 63 for v in offsets) or offsets[0] > offsets[1]):
        return None, "its data offsets are not two increasing whole numbers"
    nbytes = math.prod(shape) * DTYPE_BYTES[dtype]
    if offsets[1] - offsets[0] != nbytes:
        return None, f"{offsets[1] - offsets[0]:,} bytes of data for a {dtype} tensor of shape {shape}"
    return Entry(dtype, tuple(shape), nbytes), (offsets[0], offsets[1])


# torch's dtype names with safetensors' own, in the order of its dtype enumeration: a file lists its
# tensors by dtype, that order reversed, then by name.
_WRITE_DTYPES = (("bool", "BOOL"), ("uint8", "U8"), ("int8", "I8"), ("int16", "I16"), ("uint16", "U16"),
                 ("float16", "F16"), ("bfloat16", "BF16"), ("int32", "I32"), ("uint32", "U32"), ("float32", "F32"),
                 ("float64", "F64"), ("int64", "I64"), ("uint64", "U64"))


def _write_dtypes() -> dict:
    """torch dtype -> (safetensors' name, rank in its order); torch imported only by writers."""
    import torch

    return {getattr(torch, t): (name, rank) for rank, (t, name) in enumerate(_WRITE_DTYPES)}


def write_tensors(f, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Write `tensors` (torch, on the CPU) and `metadata` to the binary file `f` as a .safetensors file."""
    import torch

    dtypes = _write_dtypes()
    for name, t in tensors.items():
        if t.dtype not in dtypes:
            raise ValueError(f"safetensors has no dtype for tensor {name!r} ({t.dtype})")
    _refuse_shared(tensors)
    order = sorted(tensors, key=lambda k: (-dtypes[tensors[k].dtype][1], k))
    header: dict[str, object] = {} if metadata is None else {"__metadata__": dict(metadata)}
    offset = 0
    for name in order:
        t = tensors[name]
        size = t.numel() * t.element_size()
        header[name] = {"dtype": dtypes[t.dtype][0], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    f.write(struct.pack("<Q", len(raw)))
    f.write(raw)
    for name in order:
        t = tensors[name].detach().contiguous()
        if t.numel():
            f.write(memoryview(t.reshape(-1).view(torch.uint8).numpy()))


def tensors_bytes(tensors: dict, metadata: dict[str, str] | None = None) -> bytes:
    """The same file as one bytes object (for a writer on another thread)."""
    buf = io.BytesIO()
    write_tensors(buf, tensors, metadata)
    return buf.getvalue()


def _refuse_shared(tensors: dict) -> None:
    """Tensors whose memory overlaps (tied weights) are refused, as safetensors refuses them: a file
    holds each tensor's bytes once, and reading it back would untie them. Disjoint views of one
    buffer are separate tensors to it, and here."""
    spans = sorted((t.data_ptr(), t.data_ptr() + t.numel() * t.element_size(), name)
                   for name, t in tensors.items() if t.numel())
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            raise ValueError(f"tensors {first!r} and {second!r} share memory; save one of them and tie them "
                             "again after loading")
