"""Which torch device to run on: CUDA, then Apple's MPS, then the CPU, unless the user says."""

from __future__ import annotations

import torch

from latentlab.core.errors import LatentLabError


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise LatentLabError("CUDA was requested but no CUDA GPU is available to this PyTorch build; use --device cpu.")
        return torch.device("cuda")
    if name == "mps":
        if not _mps_available():
            raise LatentLabError("MPS was requested but Apple's Metal backend is not available here; use --device cpu.")
        return torch.device("mps")
    raise LatentLabError(f"Unknown device {name!r}: expected auto, cpu, cuda or mps.")


def describe(device: torch.device, why: bool = False) -> str:
    """The device's name; with `why`, a CPU says why a CUDA build of PyTorch is not using a GPU."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if why and device.type == "cpu" and torch.version.cuda and not torch.cuda.is_available():
        return f"cpu (this PyTorch is built for CUDA {torch.version.cuda}, but CUDA is not available: no usable GPU or driver)"
    return device.type


# LATENTLAB_THREADS=N fixes how many threads torch's CPU work (training, encoding, evaluation) uses.
THREADS_ENV = "LATENTLAB_THREADS"
_free_cores: int | None = None   # decided once per process, before its own work loads the machine


def cpu_threads(leave: int = 0) -> int:
    """How many threads torch's CPU work should use: LATENTLAB_THREADS when set, else the cores that
    were free when this process first asked (the machine's cores less those other processes kept
    busy since it started, core.cpu_load; at most torch's own default), less `leave` kept for others
    such as the GUI thread; at least 1. Threads beyond the free cores add no speed, they wait on each
    other: a 2-core machine under load trained 6× slower with torch's 2 threads than with 1."""
    import os

    from latentlab.core import cpu_load

    global _free_cores
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        if not value.isdigit() or not 1 <= int(value) <= 4096:
            raise LatentLabError(f"{THREADS_ENV} must be a whole number from 1 to 4096, not {value[:20]!r}.")
        return int(value)
    if _free_cores is None:
        busy = cpu_load.busy_now()
        if busy is None:   # not known (yet): torch's default, and the question is asked again next time
            return max(1, min(torch.get_num_threads(), os.cpu_count() or 1) - leave)
        _free_cores = max(1, min(torch.get_num_threads(), (os.cpu_count() or 1) - round(busy)))
    return max(1, _free_cores - leave)


def use_cpu_threads(leave: int = 0) -> int:
    """Set torch's intra-op thread count to cpu_threads(leave); returns it."""
    n = cpu_threads(leave)
    torch.set_num_threads(n)
    return n
