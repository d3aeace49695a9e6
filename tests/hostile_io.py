"""Hostile files and the checks every hostile-input test makes: sparse files of gigabytes that cost
no disk (they read as zeros), FIFOs, a fresh interpreter whose peak memory growth is measured, one
line on stderr with no traceback and no control characters, and inputs byte-identical afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s+File \"|PanicException|Fatal Python error", re.M)
GB = 1024 ** 3


def sparse(path: Path, size: int, head: bytes = b"") -> Path:
    """A file of `size` bytes that begins with `head` and reads as zeros after it, using no disk."""
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def safetensors_head(tensors: dict, metadata: dict | None = None) -> bytes:
    """The first bytes of a safetensors file: its length-prefixed JSON header describing `tensors`
    (name -> (dtype, shape)) laid out one after another; the data is left to a sparse tail."""
    sizes = {"F32": 4, "I32": 4, "F16": 2, "I64": 8, "U8": 1}
    header, at = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for v in shape:
            n *= v
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [at, at + n]}
        at += n
    if metadata is not None:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def data_size(head: bytes) -> int:
    """The whole file's size for a head made by safetensors_head."""
    (n,) = struct.unpack("<Q", head[:8])
    header = json.loads(head[8:8 + n])
    return 8 + n + max([v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"], default=0)


def digests(*paths) -> dict:
    """What each input holds (a hash of its bytes, or what it is), to compare before and after."""
    out = {}
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out[str(p)] = sorted((q.name, digests(q)[str(q)]) for q in p.iterdir())
        elif p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.stat().st_size < 64 * 1024 ** 2 else p.stat()
        else:
            out[str(p)] = "absent" if not p.exists() else "special"
    return out


def assert_one_line(err: str, *fragments: str) -> str:
    """stderr holds exactly one line besides the notes every run of such a model prints (`latentlab:
    warning: ...`, such as the assumed prior), a `latentlab: ...` sentence with no traceback and no
    control character, naming every fragment (case-insensitive)."""
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("latentlab: warning:")]
    assert len(lines) == 1, err[-3000:]
    line = lines[0]
    assert line.startswith("latentlab:") and not TRACEBACK.search(err), err[-3000:]
    assert not CONTROL.search(err), repr(err[-500:])
    assert len(line) <= 320, line
    words = FOLDERS.sub(".../", line).lower()   # not found in the folders of a path (named after the test)
    for fragment in fragments:
        assert fragment.lower() in words, line
    return line


def run_cli(*args, timeout: float = 180, cwd=None) -> subprocess.CompletedProcess:
    """`python -m latentlab ARGS` in a fresh interpreter (this checkout's code: PYTHONPATH is inherited)."""
    return subprocess.run([sys.executable, "-m", "latentlab", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def measured(body: str, *, prelude: str = "", timeout: float = 180, limit_as: int | None = None) -> dict:
    """Run `body` in a fresh interpreter after `prelude` (imports, set-up) and return the dict
    `result` it fills, plus `growth_mb`: the peak resident memory it added over what the prelude
    left (the test runner's own peak would hide it). An exception's class and message land in
    result["error"]. With `limit_as`, the address space is capped that many bytes above what the
    prelude uses, so that the free memory latentlab sees is small whatever the machine has."""
    script = "\n".join([
        "import json, resource, sys",
        textwrap.dedent(prelude),
        "def _status(key):",
        "    with open('/proc/self/status') as f:",
        "        return next(int(line.split()[1]) for line in f if line.startswith(key + ':')) * 1024",
        f"if {limit_as!r} is not None:",
        f"    resource.setrlimit(resource.RLIMIT_AS, (_status('VmSize') + {limit_as!r}, resource.RLIM_INFINITY))",
        # Linux resets the peak (VmHWM) to the current size on '5' written here: the peak of the body
        # alone, not hidden under a higher transient peak of the imports before it.
        "with open('/proc/self/clear_refs', 'w') as f:",
        "    f.write('5')",
        "_base = _status('VmRSS')",
        "result = {}",
        "try:",
        textwrap.indent(textwrap.dedent(body), "    "),
        "except BaseException as exc:",
        "    result['error'] = type(exc).__name__ + ': ' + str(exc)",
        "result['growth_mb'] = (_status('VmHWM') - _base) / 2 ** 20",
        "print('RESULT ' + json.dumps(result, default=str))",
    ])
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(line[len("RESULT "):])


# The folders of a path in a message: pytest names tmp_path after the test, so a fragment such as
# "beyond" could be found in the folder test_a_label_beyond_... rather than in what the sentence says.
# The file's own name stays: a sentence may rightly name it.
FOLDERS = re.compile(r"/(?:[^\s/]+/)+")


def dataset_refusal(spec: str, *fragments: str, read=None) -> str:
    """The one sentence (DatasetError) that load_dataset(spec), and read(data) after it, ends with,
    naming every fragment outside the paths it quotes."""
    import pytest

    from latentlab.core.data.specs import load_dataset
    from latentlab.core.errors import DatasetError

    with pytest.raises(DatasetError) as info:
        data = load_dataset(spec)
        if read is not None:
            read(data)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    words = FOLDERS.sub(".../", message)
    for f in fragments:
        assert f in words, message
    return message
