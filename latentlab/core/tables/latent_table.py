"""The latent means table: every image's posterior mean and log-variance, as CSV, NPZ or Parquet
(core.files.parquet_table, which also documents the layout for other readers).

Columns: index (within its split), split (train or test), label, mu_0 .. mu_{K-1},
logvar_0 .. logvar_{K-1}. The NPZ holds the same as plain arrays (mu and logvar as (N, K) float32,
label_names as a string array), readable with np.load(allow_pickle=False). Encoding runs in batches
with progress and can be stopped between batches; files are written atomically and streamed: a CSV
a row at a time, an NPZ an array at a time in numpy's 16 MB pieces, so writing costs a few tens of
MB beyond the table whatever its size.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlab.core.errors import LatentLabError
from latentlab.core.files.atomic import atomic_writer
from latentlab.core.inference.batches import encode_rows

SPLITS = ("train", "test")
FORMATS = (".csv", ".npz", ".parquet")
_NPZ_KEYS = ("index", "split", "label", "mu", "logvar", "label_names")


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


def read_table(path) -> LatentTable:
    """Read a table written by write_table, validating every column; one-sentence errors."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise LatentLabError(f"Cannot tell the format of {path}: name it .csv, .npz or .parquet.")
    if suffix == ".parquet":
        from .parquet_table import read_parquet_columns

        return _validated(path, *read_parquet_columns(path))
    from latentlab.core.data.checks import open_regular

    try:
        # Opened once, a regular file only: numpy or the CSV reader would wait on a FIFO forever.
        with open_regular(path, LatentLabError, "latent table") as f:
            if suffix == ".npz":
                with np.load(f, allow_pickle=False) as z:
                    missing = [key for key in _NPZ_KEYS if key not in z.files]
                    if missing:
                        raise LatentLabError(f"{path} is not a latent table: it has no {', '.join(missing)}.")
                    cols = {key: z[key] for key in _NPZ_KEYS}
                names = tuple(str(v) for v in cols.pop("label_names"))
            else:
                cols, names = _read_csv(io.TextIOWrapper(f, encoding="utf-8"), path), ()
    except (OSError, ValueError) as exc:
        raise LatentLabError(f"Cannot read {path}: {exc}.") from None
    return _validated(path, cols, names)


def _read_csv(f, path: Path) -> dict[str, np.ndarray]:
    header = f.readline().strip().split(",")
    k = (len(header) - 3) // 2
    want = LatentTable(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros((0, k)), np.zeros((0, k))).columns
    if header != want:
        raise LatentLabError(f"{path} is not a latent table: its header is not {','.join(want[:4])},...")
    rows = np.loadtxt(f, delimiter=",", dtype=str, ndmin=2)
    if rows.size == 0:
        rows = np.zeros((0, len(header)), str)
    numbers = rows[:, 3:].astype(np.float32)
    return {"index": rows[:, 0].astype(np.int64), "split": rows[:, 1], "label": rows[:, 2].astype(np.int64),
            "mu": numbers[:, :k], "logvar": numbers[:, k:]}


def _validated(path: Path, cols: dict, names: tuple[str, ...]) -> LatentTable:
    n = len(cols["index"])
    mu, logvar = cols["mu"], cols["logvar"]
    if mu.ndim != 2 or mu.shape != logvar.shape or len(mu) != n:
        raise LatentLabError(f"{path} is not a latent table: mu and logvar are not two (N, K) arrays for {n} rows.")
    if any(len(cols[key]) != n or cols[key].ndim != 1 for key in ("split", "label")):
        raise LatentLabError(f"{path} is not a latent table: its columns have different lengths.")
    if not np.isin(cols["split"], SPLITS).all():
        raise LatentLabError(f"{path} is not a latent table: split holds values other than train and test.")
    if not (np.issubdtype(cols["index"].dtype, np.integer) and np.issubdtype(cols["label"].dtype, np.integer)):
        raise LatentLabError(f"{path} is not a latent table: index and label must be integers.")
    return LatentTable(index=cols["index"].astype(np.int64), split=cols["split"].astype("<U5"),
                       label=cols["label"].astype(np.int64), mu=mu.astype(np.float32),
                       logvar=logvar.astype(np.float32), label_names=names)
