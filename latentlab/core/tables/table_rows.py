"""A latent table's rows as they are encoded, chunk by chunk and in table order (the train split, then
the test split), so that a table of any length is written with bounded memory; and the same shared
between the ranks of a torchrun job.

The images are cut into the batches `encode_table` uses (per split, `batch` rows each), so every
batch is encoded with exactly the rows it has in one process. With ranks, batch j goes to rank
j mod W: each round, every rank encodes one batch, the results are gathered (an all-gather), and
rank 0 hands them on in order; the other ranks hand on nothing. The table that comes out is the
single process's, row for row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from latentlab.core.data.pixels import stored
from latentlab.core.errors import Cancelled
from latentlab.core.inference.analysis import encode

SPLITS = ("train", "test")


@dataclass(frozen=True, eq=False)
class Rows:
    """Consecutive rows of a latent table."""

    split: str
    index: np.ndarray     # (n,) int64 positions within the split
    label: np.ndarray     # (n,) int64
    mu: np.ndarray        # (n, K) float32
    logvar: np.ndarray    # (n, K) float32

    def columns(self):
        return self.index, np.full(len(self.index), self.split), self.label, self.mu, self.logvar


def batches(data, batch: int) -> list[tuple[str, int, int]]:
    """(split, start, stop) of every batch, in table order."""
    return [(name, i, min(i + batch, len(getattr(data, f"x_{name}"))))
            for name in SPLITS for i in range(0, len(getattr(data, f"x_{name}")), batch)]


def encode_rows(model, data, *, batch: int = 4096, progress: Callable[[float], None] | None = None,
                should_stop: Callable[[], bool] | None = None, group=None) -> Iterator[Rows]:
    """The table's rows in order, one batch at a time (on rank 0 of `group`: see the module's note).

    `group` is a core.training.distributed.Group (or anything with rank, world, device, gather and
    any); every rank must call this with the same arguments. Raises Cancelled, on every rank at the
    same round, when should_stop() answers True on any of them."""
    import torch

    should_stop = should_stop or (lambda: False)
    rank, world = (group.rank, group.world) if group is not None else (0, 1)
    plan = batches(data, batch)
    total = sum(stop - start for _, start, stop in plan)
    k, done = model.latent_dim, 0
    for first in range(0, len(plan), world):
        stop_now = should_stop() if group is None else group.any(should_stop())
        if stop_now:
            raise Cancelled("Encoding was stopped.")
        this_round = plan[first:first + world]
        mine = this_round[rank] if rank < len(this_round) else None
        if mine is not None:
            name, start, stop = mine
            mu, logvar = encode(model, stored(getattr(data, f"x_{name}"))[start:stop], batch=batch)
        else:
            mu = logvar = np.zeros((0, k), np.float32)
        if group is None:
            results = [(mu, logvar)]
        else:
            payload = np.zeros((batch, 2 * k), np.float32)
            payload[:len(mu), :k], payload[:len(mu), k:] = mu, logvar
            gathered = group.gather(torch.from_numpy(payload).to(group.device))
            results = [(g[:, :k].cpu().numpy(), g[:, k:].cpu().numpy()) for g in gathered]
        for (name, start, stop), (mu, logvar) in zip(this_round, results):
            n = stop - start
            done += n
            if rank == 0:
                labels = np.asarray(getattr(data, f"y_{name}")[start:stop], np.int64)
                yield Rows(name, np.arange(start, stop, dtype=np.int64), labels,
                           np.ascontiguousarray(mu[:n]), np.ascontiguousarray(logvar[:n]))
        if progress is not None:
            progress(done / max(total, 1))
