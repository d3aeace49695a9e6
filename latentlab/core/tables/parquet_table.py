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
the target only once it is complete. core.tables.table_reader reads it back, one column of one row
group at a time, every value checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from latentlab.core.errors import LatentLabError
from latentlab.core.files.atomic import atomic_writer

METADATA_KEY = b"latentlab"
FORMAT_NAME = "latentlab latent table"
FORMAT_VERSION = 1
LEAD_COLUMNS = ("index", "split", "label")
ROW_GROUP_ROWS = 65536


def column_names(k: int) -> list[str]:
    return [*LEAD_COLUMNS, *(f"mu_{d}" for d in range(k)), *(f"logvar_{d}" for d in range(k))]


def table_schema(k: int, label_names=()):
    """The pyarrow schema of a table with K latent dimensions."""
    import pyarrow as pa

    fields = [pa.field("index", pa.int64()), pa.field("split", pa.string()), pa.field("label", pa.int64())]
    fields += [pa.field(name, pa.float32()) for name in column_names(k)[3:]]
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "latent_dim": k, "label_names": list(label_names)}
    return pa.schema(fields, metadata={METADATA_KEY: json.dumps(meta).encode()})


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
