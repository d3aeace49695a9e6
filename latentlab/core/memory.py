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
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    soft = resource.getrlimit(resource.RLIMIT_AS)[0] if resource else -1
    if resource and soft != resource.RLIM_INFINITY:
        found.append(max(0, soft - _address_space_used()))
    return min(found) if found else None


def _address_space_used() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def check_fits(need: int, what: str) -> None:
    """Raise ResourceError when `need` bytes of host memory for `what` cannot be had."""
    have = available_bytes("cpu")
    if have is not None and need > have:
        raise ResourceError(f"{what} needs about {gib(need)} of memory; this machine has {gib(have)} free.")
