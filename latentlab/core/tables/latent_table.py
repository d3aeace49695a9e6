"""The latent means table: every image's posterior mean and log-variance, written as CSV, NPZ or
Parquet (core.tables.parquet_table, which also documents the layout for other readers); read back,
every value checked, by core.tables.table_reader.

Columns: index (within its split), split (train or test), label, mu_0 .. mu_{K-1},
logvar_0 .. logvar_{K-1}. The NPZ holds the same as plain arrays (mu and logvar as (N, K) float32,
label_names as a string array), readable with np.load(allow_pickle=False). Encoding runs in batches
with progress and can be stopped between batches; files are written atomically and streamed: a CSV
a row at a time, an NPZ an array at a time in numpy's 16 MB pieces, so writing costs a few tens of
MB beyond the table whatever its size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlab.core.errors import LatentLabError
from latentlab.core.files.atomic import atomic_writer
from latentlab.core.inference.batches import encode_rows

SPLITS = ("train", "test")
FORMATS = (".csv", ".npz", ".parquet")


@dataclass(frozen=True, eq=False)
class LatentTable:
    index: np.ndarray        # (N,) int64, position within its split
    split: np.ndarray        # (N,) str, "train" or "test"
    label: np.ndarray        # (N,) int64
    mu: np.ndarray           # (N, K) float32
    logvar: np.ndarray       # (N, K) float32
    label_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.index)

    @property
    def columns(self) -> list[str]:
        k = self.mu.shape[1]
        return ["index", "split", "label", *(f"mu_{d}" for d in range(k)), *(f"logvar_{d}" for d in range(k))]


def encode_table(model, data, *, batch: int = 4096, progress: Callable[[float], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> LatentTable:
    """Encode the train then the test images of `data` in batches; raises Cancelled when should_stop()."""
    parts = [(name, getattr(data, f"x_{name}"), getattr(data, f"y_{name}")) for name in SPLITS]
    total = sum(len(x) for _, x, _ in parts)
    k = model.latent_dim
    mu = np.empty((total, k), np.float32)
    logvar = np.empty((total, k), np.float32)
    done = 0
    for _, x, _ in parts:
        n = len(x)
        # This split's share of the whole table's progress; its rows land in their place of mu and logvar.
        encode_rows(model, x, batch=batch, should_stop=should_stop, out=(mu[done:done + n], logvar[done:done + n]),
                    progress=progress and (lambda f, done=done, n=n: progress((done + f * n) / total)))
        done += n
    return LatentTable(
        index=np.concatenate([np.arange(len(x), dtype=np.int64) for _, x, _ in parts]),
        split=np.concatenate([np.full(len(x), name) for name, x, _ in parts]).astype("<U5"),
        label=np.concatenate([np.asarray(y, np.int64) for _, _, y in parts]),
        mu=mu, logvar=logvar, label_names=tuple(data.label_names))


def write_table(path, table: LatentTable) -> Path:
    """Write `table` to path.csv, path.npz or path.parquet (chosen by the suffix), atomically, streamed."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise LatentLabError(f"Cannot tell the format of {path}: name it .csv, .npz or .parquet.")
    if suffix == ".parquet":
        from .parquet_table import write_parquet

        return write_parquet(path, table)
    with atomic_writer(path) as f:
        if suffix == ".npz":
            np.savez(f, index=table.index, split=table.split.astype("<U5"), label=table.label, mu=table.mu,
                     logvar=table.logvar, label_names=np.array(table.label_names, dtype=str))
        else:
            _write_csv(f, table)
    return path


def _write_csv(f, table: LatentTable) -> None:
    """Row by row through one format string: Python's own float formatting, the same text as
    np.savetxt's (%.9g round-trips float32 exactly), without building the file, or a slice of it,
    in memory first."""
    f.write((",".join(table.columns) + "\n").encode())
    numbers = ",".join(["%.9g"] * (2 * table.mu.shape[1])) + "\n"
    for i in range(len(table)):
        lead = f"{table.index[i]},{table.split[i]},{table.label[i]},"
        f.write((lead + numbers % (*table.mu[i].tolist(), *table.logvar[i].tolist())).encode())
