"""Running as one rank of a torchrun job: which rank this is (from the environment torchrun sets:
RANK, WORLD_SIZE, LOCAL_RANK), which backend and device it uses (NCCL and the GPU numbered by
LOCAL_RANK on CUDA, gloo on the CPU), the process group and the few collectives training and
encoding need, and how a rank ends when the launcher is interrupted or another rank dies.

torchrun starts every rank in a session of its own, so Ctrl+C reaches the launcher alone, which sends
SIGINT to every rank (SIGTERM when a rank died), waits 30 s, then kills them. A rank answers the
first signal by asking the others to stop at the next agreed step (an all-reduce, so every rank
stops at the same step and rank 0 saves once); should that agreement never come (a peer gone
silent on NCCL), it exits by itself a few seconds later. A peer that died is seen by the next
collective, which fails at once on gloo; that failure becomes one sentence (`PeerLost`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import timedelta

import torch

from latentlab.core.errors import LatentLabError
from latentlab.core.text import reason

from .device import resolve_device

# How long a collective may wait for a slow peer (rank 0 saving a checkpoint, say) before it counts as lost.
TIMEOUT_S = 600
# After a stop signal, how long a rank waits for the others to agree before it leaves on its own
# (under torchrun's 30 s, after which it kills what is left).
GRACE_S = 15.0
# Training asks the ranks whether anyone was told to stop every this many steps.
STOP_EVERY = 8


class PeerLost(LatentLabError):
    """Another rank of the job stopped answering (it died or was killed)."""


@dataclass(frozen=True)
class Ranks:
    rank: int          # this process among all of them, 0 .. world - 1
    world: int         # how many processes train together
    local_rank: int    # this process among those of its node: the GPU it uses

    @property
    def main(self) -> bool:
        return self.rank == 0


def ranks_from_environ(env=None) -> Ranks | None:
    """The ranks torchrun describes in the environment, or None when not started by torchrun."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return None
    try:
        world, rank, local = int(env["WORLD_SIZE"]), int(env["RANK"]), int(env.get("LOCAL_RANK", env["RANK"]))
    except ValueError:
        raise LatentLabError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (torchrun sets them).") from None
    if not (world >= 1 and 0 <= rank < world and local >= 0):
        raise LatentLabError(f"RANK {rank} and WORLD_SIZE {world} do not describe a process of a torchrun job.")
    return Ranks(rank, world, local)


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def rank_device(requested: str, local_rank: int, cuda_count: int | None = None) -> torch.device:
    """The device of the rank numbered `local_rank` on its node: its own GPU, or the CPU."""
    device = resolve_device(requested)
    if device.type == "mps":
        if requested == "mps":
            raise LatentLabError("Apple's MPS device cannot be shared by several processes; use --device cpu.")
        device = torch.device("cpu")
    if device.type != "cuda":
        return device
    count = torch.cuda.device_count() if cuda_count is None else cuda_count
    if local_rank >= count:
        raise LatentLabError(f"This node has {count} GPU(s) but LOCAL_RANK is {local_rank}: start at most "
                             f"{count} processes per node (--nproc_per_node).")
    return torch.device("cuda", local_rank)


class Group:
    """The process group of this torchrun job on `device`; collectives raise PeerLost in one sentence."""

    def __init__(self, ranks: Ranks, device: torch.device, timeout_s: float = TIMEOUT_S):
        import torch.distributed as dist

        self.ranks, self.device = ranks, device
        if device.type == "cuda":
            torch.cuda.set_device(device)
        try:
            dist.init_process_group(backend_for(device), timeout=timedelta(seconds=timeout_s),
                                    rank=ranks.rank, world_size=ranks.world)
        except (RuntimeError, ValueError) as exc:
            raise LatentLabError(f"Rank {ranks.rank} could not join the other {ranks.world - 1} ranks "
                                 f"({reason(exc)}).") from None

    rank = property(lambda self: self.ranks.rank)
    world = property(lambda self: self.ranks.world)
    main = property(lambda self: self.ranks.main)

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum `tensor` over the ranks, in place (every rank must call it, in the same order)."""
        import torch.distributed as dist

        with lost_peers(self.rank):
            dist.all_reduce(tensor)
        return tensor

    def any(self, flag: bool) -> bool:
        """Whether any rank passed True."""
        return bool(self.sum_(torch.tensor([float(flag)], device=self.device)).item() > 0)

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's `tensor` (all of the same shape), in rank order."""
        import torch.distributed as dist

        out = [torch.empty_like(tensor) for _ in range(self.world)]
        with lost_peers(self.rank):
            dist.all_gather(out, tensor)
        return out

    def wrap(self, module: torch.nn.Module, find_unused: bool = False) -> torch.nn.Module:
        """`module` under DistributedDataParallel: gradients averaged over the ranks during backward."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        with lost_peers(self.rank):
            return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused)

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


class lost_peers:
    """Turns a collective's failure (a peer died, a connection closed, a timeout) into PeerLost."""

    def __init__(self, rank: int):
        self.rank = rank

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is not None and peer_failure(exc):
            raise PeerLost(f"Rank {self.rank} lost contact with the other ranks of this run (one of them stopped "
                           "or died); it stops too.") from None
        return False


def peer_failure(exc: BaseException) -> bool:
    """Whether `exc` is a collective failing because another rank went away (DDP's reduction inside
    backward reports it as a plain RuntimeError naming the backend or the connection)."""
    import torch.distributed as dist

    if isinstance(exc, dist.DistError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(w in text for w in ("gloo", "NCCL", "nccl", "Connection", "ProcessGroup"))


def stop_on_signals(stop: dict, grace_s: float = GRACE_S) -> None:
    """SIGINT and SIGTERM set stop['flag'] (the ranks then agree to stop at the next check); a second
    signal, or no agreement within `grace_s`, ends the process at once (saves are atomic)."""

    def handler(signum, _frame):
        if stop["flag"]:
            os._exit(128 + signum)
        stop["flag"] = True
        timer = threading.Timer(grace_s, _leave, args=(128 + signum,))
        timer.daemon = True
        timer.start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _leave(code: int) -> None:
    sys.stderr.flush()
    os._exit(code)


def share(n: int, rank: int, world: int) -> tuple[int, int]:
    """[lo, hi) of rank's part of n rows: contiguous parts whose sizes differ by at most one."""
    return n * rank // world, n * (rank + 1) // world
