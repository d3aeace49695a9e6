"""Latent tables as Parquet files, for pandas, polars, DuckDB and latentlab's own window to read.

The layout (stable; other programs rely on it):

    column        type      meaning
    index         int64     the image's position within its split
    split         string    "train" or "test"
    label         int64     class index into the label names
    mu_0 ..       float32   posterior mean, one column per latent dimension (K of them)
    logvar_0 ..   float32   posterior log-variance, one column per latent dimension

Rows come in the order `latentlab encode` reads the images: the train split, then the test split.
The schema metadata holds, under the key `latentlab`, JSON {"format": "latentlab latent table",
"version": 1, "latent_dim": K, "label_names": [...]}. The file is written one row group at a time
as encoding goes (bounded memory whatever the number of rows), into a temporary file that replaces
the target only once it is complete. `read_table_schema` validates a file's layout without reading
its rows, for readers that then read the columns they need row group by row group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlab.core.errors import LatentLabError
from latentlab.core.files.atomic import atomic_writer
from latentlab.core.text import reason, short

METADATA_KEY = b"latentlab"
FORMAT_NAME = "latentlab latent table"
FORMAT_VERSION = 1
LEAD_COLUMNS = ("index", "split", "label")
ROW_GROUP_ROWS = 65536
MAX_METADATA_BYTES = 16 << 20


def column_names(k: int) -> list[str]:
    return [*LEAD_COLUMNS, *(f"mu_{d}" for d in range(k)), *(f"logvar_{d}" for d in range(k))]


def table_schema(k: int, label_names=()):
    """The pyarrow schema of a table with K latent dimensions."""
    import pyarrow as pa

    fields = [pa.field("index", pa.int64()), pa.field("split", pa.string()), pa.field("label", pa.int64())]
    fields += [pa.field(name, pa.float32()) for name in column_names(k)[3:]]
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "latent_dim": k, "label_names": list(label_names)}
    return pa.schema(fields, metadata={METADATA_KEY: json.dumps(meta).encode()})


@dataclass(frozen=True)
class TableSchema:
    """What `read_table_schema` found: everything but the rows."""

    path: Path
    rows: int
    latent_dim: int
    label_names: tuple[str, ...]
    row_groups: int

    @property
    def columns(self) -> list[str]:
        return column_names(self.latent_dim)


class ParquetTableWriter:
    """Rows appended chunk by chunk, written a row group at a time; the file appears, complete, on a
    clean exit from the `with` block and never otherwise."""

    def __init__(self, path, latent_dim: int, label_names=()):
        self.path, self.k = Path(path), int(latent_dim)
        self.schema = table_schema(self.k, label_names)
        self.rows = 0
        self._pending: list = []
        self._pending_rows = 0

    def __enter__(self):
        import pyarrow.parquet as pq

        self._file_cm = atomic_writer(self.path)
        self._writer = pq.ParquetWriter(self._file_cm.__enter__(), self.schema, compression="zstd")
        return self

    def write(self, index, split, label, mu, logvar) -> None:
        """Append rows: index, split names, labels (N,) and mu, logvar (N, K)."""
        import pyarrow as pa

        mu, logvar = np.asarray(mu, np.float32), np.asarray(logvar, np.float32)
        if mu.shape != logvar.shape or mu.ndim != 2 or mu.shape[1] != self.k:
            raise LatentLabError(f"A latent table of K = {self.k} cannot take rows of shape {mu.shape}.")
        cols = [pa.array(np.asarray(index, np.int64)), pa.array(np.asarray(split).astype(str)),
                pa.array(np.asarray(label, np.int64))]
        cols += [pa.array(mu[:, d]) for d in range(self.k)] + [pa.array(logvar[:, d]) for d in range(self.k)]
        self._pending.append(pa.Table.from_arrays(cols, schema=self.schema))
        self._pending_rows += len(mu)
        self.rows += len(mu)
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending), row_group_size=max(self._pending_rows, 1))
            self._pending, self._pending_rows = [], 0

    def __exit__(self, kind, exc, tb):
        try:
            if kind is None:
                self._flush()
            self._writer.close()
        except BaseException as err:  # noqa: BLE001 - the temporary file goes, the error is said once
            return self._file_cm.__exit__(type(err), err, err.__traceback__)
        return self._file_cm.__exit__(kind, exc, tb)


def write_parquet(path, table) -> Path:
    """Write a whole LatentTable (core.files.latent_table) as Parquet."""
    with ParquetTableWriter(path, table.mu.shape[1], table.label_names) as w:
        for i in range(0, len(table), ROW_GROUP_ROWS):
            part = slice(i, i + ROW_GROUP_ROWS)
            w.write(table.index[part], table.split[part], table.label[part], table.mu[part], table.logvar[part])
    return Path(path)


def read_table_schema(path) -> TableSchema:
    """The layout of a latent table in Parquet, checked column by column; LatentLabError in one sentence."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from latentlab.core.data.checks import open_regular

    path = Path(path)
    with open_regular(path, LatentLabError, "latent table"):
        pass   # a FIFO or a device is one sentence here; Arrow's own open would wait on it
    try:
        pf = pq.ParquetFile(str(path))
        schema = pf.schema_arrow
        meta = pf.metadata
    except (OSError, pa.ArrowException) as exc:
        raise LatentLabError(f"Cannot read {short(str(path))} as Parquet ({reason(exc)}).") from None
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise LatentLabError(f"{short(str(path))} is not a latentlab latent table: its schema has no latentlab metadata.")
    try:
        info = json.loads(raw) if len(raw) <= MAX_METADATA_BYTES else None
    except (ValueError, RecursionError):
        info = None
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        raise LatentLabError(f"{short(str(path))} is not a latentlab latent table: its metadata is not readable.")
    k, names = info.get("latent_dim"), info.get("label_names", [])
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 1_000_000:
        raise LatentLabError(f"{short(str(path))} gives no usable latent size in its metadata.")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise LatentLabError(f"{short(str(path))} gives label names that are not a list of strings.")
    if info.get("version") != FORMAT_VERSION:
        raise LatentLabError(f"{short(str(path))} is a latent table of version {info.get('version')!r}; "
                             f"this latentlab reads version {FORMAT_VERSION}.")
    want = table_schema(k)
    if schema.names != want.names or any(not schema.field(n).type.equals(want.field(n).type) for n in want.names):
        raise LatentLabError(f"{short(str(path))} is not a latent table of K = {k}: expected the columns "
                             f"{', '.join(want.names[:5])}, ... with their types.")
    return TableSchema(path=path, rows=int(meta.num_rows), latent_dim=k, label_names=tuple(names),
                       row_groups=int(meta.num_row_groups))


def read_parquet_columns(path) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """All of a Parquet latent table as arrays (index, split, label, mu (N, K), logvar (N, K)) and its label names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    info = read_table_schema(path)
    k = info.latent_dim
    try:
        t = pq.read_table(str(path))
    except (OSError, pa.ArrowException) as exc:
        raise LatentLabError(f"Cannot read {short(str(path))} ({reason(exc)}).") from None
    if any(t.column(n).null_count for n in t.schema.names):
        raise LatentLabError(f"{short(str(path))} has empty cells; a latent table has none.")
    mu = np.stack([t.column(f"mu_{d}").to_numpy() for d in range(k)], 1) if len(t) else np.zeros((0, k), np.float32)
    lv = np.stack([t.column(f"logvar_{d}").to_numpy() for d in range(k)], 1) if len(t) else np.zeros((0, k), np.float32)
    cols = {"index": t.column("index").to_numpy(), "split": np.asarray(t.column("split").to_pylist(), dtype=str),
            "label": t.column("label").to_numpy(), "mu": mu, "logvar": lv}
    return cols, info.label_names
