"""Reading latent tables, the one reader of every format: for the window (read_latent_table: the
means, log-variances, labels and data rows of every encoded image, from Parquet one column of one
row group at a time, or from the CSV and NPZ tables `latentlab encode` writes), and as a LatentTable
(read_table), for the command line, the API and tests.

Columns: `index` (row within its split), `split` ("train" or "test", plain or dictionary-encoded),
an optional integer `label`, `mu_0 .. mu_{K-1}` and `logvar_0 .. logvar_{K-1}` (floats, kept as
float32), label names in the schema metadata: in the `latentlab` block `latentlab encode` writes
(core.tables.parquet_table), or as a plain JSON list under `latentlab.label_names`. Every
field is checked before anything large is allocated; a file that does not check out is refused in
one sentence. Rows whose mean or log-variance is not a finite number are dropped, and the result
says how many. pyarrow is an optional extra, imported only here and only when a Parquet table is
opened.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlab.core.errors import Cancelled, LatentLabError
from latentlab.core.memory import check_fits, prefaulted_empty
from latentlab.core.text import quote, reason, short

from .parquet_table import FORMAT_VERSION, METADATA_KEY

MAX_K = 4096                 # latent dimensions a table may have (the window's own limit)
MAX_LABELS = 10_000          # label values (and names) a table may use
MAX_ROWS = 2 ** 31 - 1       # rows: int32 row numbers throughout the window
MAX_NAMES_JSON = 1 << 20     # bytes of the label-names metadata
MAX_INDEX = 2 ** 31 - 1      # a row within its split (int32)
# exp(logvar) overflows float32 beyond this: such a row is as unusable as a NaN
MAX_ABS_LOGVAR = 88.0
NAMES_KEY = b"latentlab.label_names"
INSTALL_HINT = "pip install 'latentlab[tables]'"
SUFFIXES = (".parquet", ".csv", ".npz")
SPLIT_NAMES = ("train", "test")
_DIM = re.compile(r"(mu|logvar)_(\d{1,6})")
_NPZ_KEYS = ("index", "split", "label", "mu", "logvar", "label_names")


@dataclass(frozen=True, eq=False)
class TableColumns:
    """A latent table as the window holds it: mu and logvar (N, K) float32 in column-major order
    (each dimension one contiguous column, as it was read), split 0 (train) or 1 (test) as uint8,
    index int32, label int32, the label names, and how many unusable rows were dropped."""

    mu: np.ndarray
    logvar: np.ndarray
    split: np.ndarray
    index: np.ndarray
    label: np.ndarray
    label_names: tuple[str, ...]
    has_labels: bool
    dropped: int = 0
    source: str = ""

    def __len__(self) -> int:
        return len(self.index)

    @property
    def latent_dim(self) -> int:
        return self.mu.shape[1]

    @property
    def notes(self) -> tuple[str, ...]:
        """Sentences for the banner about what was left out."""
        if not self.dropped:
            return ()
        return (f"{self.source}: {self.dropped:,} row(s) whose mean or log-variance is not a finite number were left out.",)


def read_latent_table(path, progress: Callable[[float], None] | None = None,
                      should_stop: Callable[[], bool] | None = None) -> TableColumns:
    """The table at `path` (.parquet, .csv or .npz), validated; LatentLabError (one sentence) otherwise."""
    path = Path(path)
    name = short(path.name, 80)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise LatentLabError(f"Cannot open {name} as a latent table: name it .parquet, .csv or .npz.")
    if not path.is_file():
        raise LatentLabError(f"Cannot open {name}: there is no such file.")
    if suffix == ".parquet":
        return _finite_rows(_read_parquet(path, name, progress, should_stop))
    t = read_table(path)
    if t.mu.shape[1] < 1 or t.mu.shape[1] > MAX_K:
        raise LatentLabError(f"{name} has {t.mu.shape[1]} latent dimensions; a table may have 1 to {MAX_K}.")
    if len(t) > MAX_ROWS:
        raise LatentLabError(f"{name} has {len(t):,} rows; at most {MAX_ROWS:,} can be shown.")
    split = (t.split == "test").astype(np.uint8)
    names = tuple(short(n, 200) for n in t.label_names)
    label = _checked_labels(np.asarray(t.label), names, name)
    return _finite_rows(TableColumns(np.asfortranarray(t.mu), np.asfortranarray(t.logvar), split,
                                     _checked_index(t.index, name), label, names or _default_names(label),
                                     True, source=name))


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.compute  # noqa: F401  (the submodule, loaded with the package below)
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise LatentLabError(f"Opening a Parquet table needs pyarrow, which is not installed: {INSTALL_HINT}.") from None
    return pyarrow


def _read_parquet(path: Path, name: str, progress, should_stop) -> TableColumns:
    """Every row of a Parquet table, checked column by column (rows that are not finite kept)."""
    pa = _pyarrow()
    try:
        pf = pa.parquet.ParquetFile(path)   # read column chunk by chunk: a memory map would count the whole file as resident
        schema, meta = pf.schema_arrow, pf.metadata
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise LatentLabError(f"{name} is not a readable Parquet file ({reason(exc, 100)}).") from None
    k, types = _checked_schema(pa, schema, name)
    names = _label_names(schema.metadata or {}, name)
    has_labels = "label" in types
    n = int(meta.num_rows)
    groups = [int(meta.row_group(i).num_rows) for i in range(meta.num_row_groups)]
    if n < 1:
        raise LatentLabError(f"{name} holds no rows.")
    if n > MAX_ROWS or sum(groups) != n or min(groups) < 0:
        raise LatentLabError(f"{name} is not a latent table: its row groups do not add up to its {n:,} rows.")
    # two (N, K) float32 arrays, the index, split and label, and one column of one row group in flight
    check_fits(n * (8 * k + 9) + 4 * max(groups) * 2, f"Opening {name} ({n:,} rows, K = {k})")
    mu = prefaulted_empty((n, k), np.float32, order="F")   # pages mapped at once: faulting them in one by one cost 2.4 s at 10M
    logvar = prefaulted_empty((n, k), np.float32, order="F")
    index = np.empty(n, np.int32)
    split = np.empty(n, np.uint8)
    label = np.zeros(n, np.int32)
    columns = ["index", "split", *(["label"] if has_labels else []), *(f"mu_{d}" for d in range(k)),
               *(f"logvar_{d}" for d in range(k))]
    targets = {"index": index, "split": split, "label": label,
               **{f"mu_{d}": mu[:, d] for d in range(k)}, **{f"logvar_{d}": logvar[:, d] for d in range(k)}}
    steps, done, start = len(groups) * len(columns), 0, 0
    for g, rows in enumerate(groups):
        for column in columns:
            if should_stop is not None and should_stop():
                raise Cancelled("Opening the table was stopped.")
            try:
                chunk = pf.read_row_group(g, columns=[column], use_threads=False).column(0)
            except (pa.ArrowException, OSError, ValueError, MemoryError) as exc:
                raise LatentLabError(f"{name} is damaged: row group {g} of column {column} cannot be read "
                                     f"({reason(exc, 100)}).") from None
            if len(chunk) != rows:
                raise LatentLabError(f"{name} is damaged: row group {g} of column {column} holds {len(chunk):,} "
                                     f"rows instead of {rows:,}.")
            _copy_column(pa, column, chunk, targets[column][start:start + rows], name)
            done += 1
            if progress is not None:
                progress(done / steps)
        start += rows
    label = _checked_labels(label, names, name) if has_labels else label
    _checked_index(index, name)
    if not has_labels:
        names = ("no label",)
    return TableColumns(mu, logvar, split, index, label, names or _default_names(label), has_labels, source=name)


def _checked_schema(pa, schema, name: str) -> tuple[int, dict]:
    """K and each column's Arrow type; one sentence for a schema that is not a latent table's."""
    names = list(schema.names)
    if len(names) != len(set(names)):
        raise LatentLabError(f"{name} is not a latent table: some column names appear twice.")
    types = dict(zip(names, schema.types))
    missing = [c for c in ("index", "split", "mu_0", "logvar_0") if c not in types]
    if missing:
        raise LatentLabError(f"{name} is not a latent table: it has no {', '.join(missing)} column.")
    dims: dict[str, list[int]] = {"mu": [], "logvar": []}
    for column in names:
        m = _DIM.fullmatch(column)
        if m:
            dims[m.group(1)].append(int(m.group(2)))
        elif column.startswith(("mu_", "logvar_")):
            raise LatentLabError(f"{name} is not a latent table: it has a column named {quote(column)}.")
    k = len(dims["mu"])
    if k > MAX_K:
        raise LatentLabError(f"{name} has {k:,} latent dimensions; a table may have at most {MAX_K:,}.")
    for kind in ("mu", "logvar"):
        if sorted(dims[kind]) != list(range(k)):
            raise LatentLabError(f"{name} is not a latent table: its columns are not mu_0..mu_{k - 1} and "
                                 f"logvar_0..logvar_{k - 1} (it has {len(dims['mu'])} mu and {len(dims['logvar'])} "
                                 "logvar columns).")
    t = pa.types
    for column, typ in types.items():
        if column in ("index", "label") and not t.is_integer(typ):
            raise LatentLabError(f"{name} is not a latent table: column {column} holds {quote(str(typ))}, not integers.")
        if column == "split":
            value = typ.value_type if t.is_dictionary(typ) else typ
            if not (t.is_string(value) or t.is_large_string(value)):
                raise LatentLabError(f"{name} is not a latent table: column split holds {quote(str(typ))}, not text.")
        if _DIM.fullmatch(column) and not t.is_floating(typ):
            raise LatentLabError(f"{name} is not a latent table: column {column} holds {quote(str(typ))}, not numbers.")
    return k, types


def _label_names(metadata: dict, name: str) -> tuple[str, ...]:
    """The names from the `latentlab` block (as `latentlab encode` writes them), else from the plain
    list under `latentlab.label_names` (a table written by another tool), else none."""
    block = metadata.get(METADATA_KEY)
    raw = block if block is not None else metadata.get(NAMES_KEY)
    if raw is None:
        return ()
    if len(raw) > MAX_NAMES_JSON:
        raise LatentLabError(f"{name}: its label names take {len(raw):,} bytes; at most {MAX_NAMES_JSON:,} are read.")
    try:
        names = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise LatentLabError(f"{name}: its label names are not a JSON list.") from None
    if block is not None:
        if not isinstance(names, dict):
            raise LatentLabError(f"{name}: its latentlab metadata is not a JSON object.")
        version = names.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            shown = str(version) if isinstance(version, int) else quote(str(version), 20)
            raise LatentLabError(f"{name} is a latent table of version {shown}; this latentlab reads version {FORMAT_VERSION}.")
        names = names.get("label_names", [])
    if not isinstance(names, list) or len(names) > MAX_LABELS or not all(isinstance(v, str) for v in names):
        raise LatentLabError(f"{name}: its label names are not a JSON list of at most {MAX_LABELS:,} strings.")
    return tuple(short(v, 200) for v in names)


def _copy_column(pa, column: str, chunk, out: np.ndarray, name: str) -> None:
    """One row group of one column into `out`, converted and checked."""
    if column == "split":
        at = 0
        for part in chunk.chunks:
            # a dictionary's few values are looked up once, then its indices taken
            values = part.dictionary if pa.types.is_dictionary(part.type) else part
            codes = pa.compute.index_in(values, value_set=pa.array(SPLIT_NAMES, values.type))
            if codes.null_count or (pa.types.is_dictionary(part.type) and part.indices.null_count):
                raise LatentLabError(f"{name} is not a latent table: split holds values other than train and test.")
            codes = codes.to_numpy()
            out[at:at + len(part)] = codes[part.indices.to_numpy()] if pa.types.is_dictionary(part.type) else codes
            at += len(part)
        return
    if chunk.null_count and not column.startswith(("mu_", "logvar_")):
        raise LatentLabError(f"{name} is not a latent table: column {column} has missing values.")
    at = 0
    for part in chunk.chunks:   # each Arrow array as numpy without a copy (ChunkedArray.to_numpy copies slowly)
        values = part.to_numpy(zero_copy_only=False)   # float nulls become NaN: dropped with the other non-finite rows
        if column in ("index", "label") and len(values):
            lo, hi = int(values.min()), int(values.max())
            bound = MAX_INDEX if column == "index" else MAX_LABELS
            if lo < 0 or hi >= bound:
                raise LatentLabError(f"{name} is not a latent table: column {column} holds {lo if lo < 0 else hi:,}, "
                                     f"outside 0..{bound - 1:,}.")
        np.copyto(out[at:at + len(values)], values, casting="unsafe")
        at += len(values)


def _checked_labels(label: np.ndarray, names: tuple[str, ...], name: str) -> np.ndarray:
    label = np.asarray(label)
    if not np.issubdtype(label.dtype, np.integer):
        raise LatentLabError(f"{name} is not a latent table: its labels are not integers.")
    top = int(label.max()) if len(label) else 0
    if len(label) and (int(label.min()) < 0 or top >= MAX_LABELS):
        raise LatentLabError(f"{name} is not a latent table: its labels are not in 0..{MAX_LABELS - 1:,}.")
    if names and top >= len(names):
        raise LatentLabError(f"{name}: label {top} has no name ({len(names)} label names are given).")
    return label.astype(np.int32, copy=False)


def _checked_index(index: np.ndarray, name: str) -> np.ndarray:
    index = np.asarray(index)
    if len(index) and (int(index.min()) < 0 or int(index.max()) >= MAX_INDEX):
        raise LatentLabError(f"{name} is not a latent table: its index column holds rows below 0 or beyond {MAX_INDEX:,}.")
    return index.astype(np.int32, copy=False)


def _default_names(label: np.ndarray) -> tuple[str, ...]:
    return tuple(str(v) for v in range(int(label.max()) + 1 if len(label) else 1))


def _finite_rows(t: TableColumns) -> TableColumns:
    """The table without rows whose mean or log-variance is not finite (or a log-variance whose exp
    overflows), compacted in place one column at a time: no second copy of the table."""
    keep = np.ones(len(t), bool)
    for d in range(t.latent_dim):
        keep &= np.isfinite(t.mu[:, d])
        keep &= np.abs(t.logvar[:, d]) <= MAX_ABS_LOGVAR   # False for NaN as well
    kept = int(keep.sum())
    if kept == len(t):
        return t
    if kept == 0:
        raise LatentLabError(f"{t.source} holds no row whose mean and log-variance are finite numbers.")
    for column in (*(t.mu[:, d] for d in range(t.latent_dim)), *(t.logvar[:, d] for d in range(t.latent_dim)),
                   t.split, t.index, t.label):
        column[:kept] = column[keep]
    return TableColumns(t.mu[:kept], t.logvar[:kept], t.split[:kept], t.index[:kept], t.label[:kept], t.label_names,
                        t.has_labels, dropped=len(t) - kept, source=t.source)


def read_table(path):
    """A table written by write_table (or `latentlab encode`) as a LatentTable, every column checked
    as for the window, every row kept as written; one-sentence errors."""
    from latentlab.core.data.checks import open_regular

    from .latent_table import FORMATS, LatentTable  # here: that module imports torch, this one need not

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise LatentLabError(f"Cannot tell the format of {path}: name it .csv, .npz or .parquet.")
    if suffix == ".parquet":
        with open_regular(path, LatentLabError, "latent table"):
            pass   # a FIFO or a device is one sentence here; Arrow's own open would wait on it
        t = _read_parquet(path, short(str(path)), None, None)
        return LatentTable(index=t.index.astype(np.int64), split=np.asarray(SPLIT_NAMES)[t.split].astype("<U5"),
                           label=t.label.astype(np.int64), mu=np.ascontiguousarray(t.mu),
                           logvar=np.ascontiguousarray(t.logvar), label_names=t.label_names if t.has_labels else ())
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
    from .latent_table import LatentTable

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


def _validated(path: Path, cols: dict, names: tuple[str, ...]):
    n = len(cols["index"])
    mu, logvar = cols["mu"], cols["logvar"]
    if mu.ndim != 2 or mu.shape != logvar.shape or len(mu) != n:
        raise LatentLabError(f"{path} is not a latent table: mu and logvar are not two (N, K) arrays for {n} rows.")
    if any(len(cols[key]) != n or cols[key].ndim != 1 for key in ("split", "label")):
        raise LatentLabError(f"{path} is not a latent table: its columns have different lengths.")
    if not np.isin(cols["split"], SPLIT_NAMES).all():
        raise LatentLabError(f"{path} is not a latent table: split holds values other than train and test.")
    if not (np.issubdtype(cols["index"].dtype, np.integer) and np.issubdtype(cols["label"].dtype, np.integer)):
        raise LatentLabError(f"{path} is not a latent table: index and label must be integers.")
    from .latent_table import LatentTable

    return LatentTable(index=cols["index"].astype(np.int64), split=cols["split"].astype("<U5"),
                       label=cols["label"].astype(np.int64), mu=mu.astype(np.float32),
                       logvar=logvar.astype(np.float32), label_names=names)
