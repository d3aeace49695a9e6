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
