"""How much memory this process can still have, so that whatever does not fit is refused in one
sentence before it is allocated, rather than ending in the kernel's OOM killer."""

from __future__ import annotations

import os

from latentlab.core.errors import ResourceError

try:
    import resource
except ImportError:  # Windows
    resource = None


def gib(n: float) -> str:
    return f"{n / 1024 ** 3:,.1f} GB" if n >= 1024 ** 3 / 10 else f"{n / 1024 ** 2:,.0f} MB"


def available_bytes(device="cpu") -> int | None:
    """Memory this process can still get on `device` (None when unknown)."""
    if str(device).startswith("cuda"):
        import torch

        try:
            free = int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
        # What torch's allocator keeps cached after earlier work (a finished run) is free to this process.
        return free + max(0, int(torch.cuda.memory_reserved(device)) - int(torch.cuda.memory_allocated(device)))
    found = []
    kib = proc_field("/proc/meminfo", "MemAvailable")
    if kib is not None:
        found.append(kib * 1024)
    else:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    soft = resource.getrlimit(resource.RLIMIT_AS)[0] if resource else -1
    if resource and soft != resource.RLIM_INFINITY:
        found.append(max(0, soft - (proc_field("/proc/self/status", "VmSize") or 0) * 1024))
    return min(found) if found else None


def proc_field(path: str, key: str, base: int = 10) -> int | None:
    """The number after `key:` in a /proc file such as /proc/meminfo (None where there is none)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1], base)
    except (OSError, ValueError, IndexError):
        pass
    return None


def trim_heap() -> None:
    """Hand back to the system what large temporaries freed: glibc keeps freed blocks below its mmap
    threshold (which grows to 32 MB as big arrays come and go) in the freeing thread's arena, where
    hundreds of MB can stay resident after aggregating millions of points. A no-op elsewhere."""
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def check_fits(need: int, what: str) -> None:
    """Raise ResourceError when `need` bytes of host memory for `what` cannot be had."""
    have = available_bytes("cpu")
    if have is not None and need > have:
        raise ResourceError(f"{what} needs about {gib(need)} of memory; this machine has {gib(have)} free.")


def prefaulted_empty(shape: tuple[int, ...], dtype, order: str = "C"):
    """np.empty(shape, dtype, order) whose pages the kernel maps in one call (an anonymous mmap with
    MAP_POPULATE) instead of one fault per 4 KB page on first write: for arrays of hundreds of MB
    filled once (a table of ten million latents), the faults cost more than the copy itself (1.2 s
    against 0.03 s for 320 MB on a 2-core VM). Plain np.empty where the platform has no MAP_POPULATE."""
    import mmap

    import numpy as np

    size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if not populate or size < (1 << 24):   # small arrays: faults are cheap, an mmap is not worth it
        return np.empty(shape, dtype, order=order)
    buffer = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
    return np.ndarray(shape, dtype, buffer=buffer, order=order)   # the array keeps the mapping alive
