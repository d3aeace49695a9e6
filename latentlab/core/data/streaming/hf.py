"""`hf:DIR`: a Hugging Face `datasets` folder (save_to_disk: a Dataset, or a DatasetDict with train and
test splits, as Arrow files) or a folder of Parquet files (`train*`/`test*` names, also under
DIR/data), streamed instead of loaded: core.data.streamed decodes a batch at a time.

Arrow files are memory-mapped and read by pyarrow without copying; the pages a batch touched are
handed back to the page cache now and then, so the process's resident memory stays bounded however
large the files. Parquet is read a row group at a time (it is compressed), through a small cache of
row groups; its epochs are shuffled within windows of row groups so that reads stay sequential.
The image column is `image` (or `img`): encoded bytes, or a struct with `bytes`; an integer `label`
column is optional, its class names come from the files' Hugging Face metadata when they have it.
"""

from __future__ import annotations

import json
import mmap
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from latentlab.core.errors import DatasetError
from latentlab.core.text import reason

from ..checks import open_error, open_regular, require_folder
from ..dataset import Dataset, split_indices
from ..image_arrays import labels_from_array
from .streamed import BytesChunk, StreamedPixels, first_image_shape, image_bytes

IMAGE_COLUMNS = ("image", "img")
MAX_JSON_BYTES = 1 << 20
MAX_FILES = 10_000
MAX_CLASSES = 100_000
# Resident pages of a memory-mapped file allowed before they are handed back (MADV_DONTNEED).
RESIDENT_BUDGET = 32 << 20
# Parquet: decompressed row groups kept, and the most one row group's image column may claim.
GROUP_CACHE_BYTES = 256 << 20
MAX_GROUP_BYTES = 1 << 30
# What one read of a memory-mapped row may make resident: the kernel maps the pages around a fault
# that are already cached ("fault-around", 64 kB by default), not the row's page alone.
FAULT_AROUND = 64 << 10


def load_hf(spec: str, folder: Path) -> Dataset:
    require_folder(folder)
    with open_error(folder):
        splits = _find_splits(folder)
    sources = {name: _open_source(files, kind, f"{folder}/{name}" if len(splits) > 1 else str(folder))
               for name, (kind, files) in splits.items()}
    train, test = sources["train"], sources.get("test")
    shape = first_image_shape(train.encoded(np.zeros(1, np.int64))[0], train.where)
    names = _label_names(folder, sources)
    y_train, y_test = (None if s is None else s.labels for s in (train, test))
    if test is not None and (y_train is None) != (y_test is None):
        raise DatasetError(f"In {folder}, one split has a label column and the other has none.")
    if y_train is None:
        names = names or ("unlabelled",)
        y_train = np.zeros(len(train), np.int64)
        y_test = None if test is None else np.zeros(len(test), np.int64)
    elif names:
        top = max(int(y.max(initial=-1)) for y in (y_train, y_test) if y is not None)
        if top >= len(names):
            raise DatasetError(f"In {folder}, a label is {top} but the metadata names only {len(names)} classes.")
    else:
        values = np.unique(np.concatenate([y for y in (y_train, y_test) if y is not None]))
        names = tuple(str(v) for v in values)
        y_train = np.searchsorted(values, y_train)
        y_test = None if y_test is None else np.searchsorted(values, y_test)
    if test is None:
        # One split: the fixed 20% every loader holds out, each part kept in file order for reading.
        tr, te = (np.sort(r) for r in split_indices(len(train), str(folder)))
        x_train, x_test = StreamedPixels(train, shape, tr), StreamedPixels(train, shape, te)
        y_train, y_test = y_train[tr], y_train[te]
    else:
        x_train, x_test = StreamedPixels(train, shape), StreamedPixels(test, shape)
        if len(train) == 0:
            raise DatasetError(f"The train split of {folder} is empty.")
    return Dataset(spec=spec, name=f"hf: {folder.name}", x_train=x_train, y_train=y_train, x_test=x_test,
                   y_test=np.asarray(y_test, np.int64), label_names=names)


def _find_splits(folder: Path) -> dict[str, tuple[str, list[Path]]]:
    """{'train': (kind, files), 'test': ...} where kind is 'arrow' or 'parquet'."""
    if (folder / "dataset_dict.json").is_file():
        listed = _json(folder / "dataset_dict.json").get("splits")
        if not isinstance(listed, list) or not all(isinstance(s, str) and s and "/" not in s and s[0] != "." for s in listed):
            raise DatasetError(f"{folder / 'dataset_dict.json'} does not list its splits as names.")
        found = {s: ("arrow", _arrow_files(folder / s)) for s in ("train", "test") if s in listed}
        if "train" not in found:
            raise DatasetError(f"{folder} holds the splits {', '.join(listed[:8])} but no train split.")
        return found
    if any(folder.glob("*.arrow")) or (folder / "state.json").is_file():
        return {"train": ("arrow", _arrow_files(folder))}
    if all((folder / s / "state.json").is_file() for s in ("train", "test")):
        return {s: ("arrow", _arrow_files(folder / s)) for s in ("train", "test")}
    for where in (folder, folder / "data"):
        files = sorted(p for p in where.glob("*.parquet") if p.is_file())[:MAX_FILES + 1] if where.is_dir() else []
        if files:
            by_split = {s: [p for p in files if p.name.startswith(s)] for s in ("train", "test")}
            if not by_split["train"]:
                if by_split["test"]:
                    raise DatasetError(f"{where} holds test*.parquet files but no train*.parquet.")
                by_split["train"] = files
            return {s: ("parquet", f) for s, f in by_split.items() if f}
    raise DatasetError(f"{folder} is not a Hugging Face dataset folder: it has no dataset_dict.json, state.json, "
                       "*.arrow or *.parquet files.")


def _arrow_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"The split folder {folder} does not exist.")
    if (folder / "state.json").is_file():
        listed = _json(folder / "state.json").get("_data_files")
        if not isinstance(listed, list) or not listed or len(listed) > MAX_FILES or not all(
                isinstance(d, dict) and isinstance(d.get("filename"), str) for d in listed):
            raise DatasetError(f"{folder / 'state.json'} does not list its data files.")
        names = [d["filename"] for d in listed]
        if any("/" in n or "\\" in n or n.startswith(".") for n in names):
            raise DatasetError(f"{folder / 'state.json'} names data files outside its folder.")
        return [folder / n for n in names]
    files = sorted(folder.glob("*.arrow"))
    if not files:
        raise DatasetError(f"{folder} holds no .arrow files.")
    return files[:MAX_FILES]


def _json(path: Path) -> dict:
    with open_error(path), open_regular(path) as f:
        text = f.read(MAX_JSON_BYTES + 1)
    if len(text) > MAX_JSON_BYTES:
        raise DatasetError(f"{path} is larger than {MAX_JSON_BYTES >> 20} MB, too large for a dataset description.")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise DatasetError(f"{path} is not valid JSON.") from None
    if not isinstance(value, dict):
        raise DatasetError(f"{path} does not hold a JSON object.")
    return value


def _label_names(folder: Path, sources: dict) -> tuple[str, ...]:
    """Class names from the first source's Hugging Face schema metadata, else dataset_info.json."""
    info = None
    meta = sources["train"].metadata.get(b"huggingface")
    if meta is not None and len(meta) <= MAX_JSON_BYTES:
        try:
            info = json.loads(meta).get("info")
        except (ValueError, RecursionError, AttributeError):
            info = None
    if not isinstance(info, dict):
        path = next((p for p in (folder / "dataset_info.json", folder / "train" / "dataset_info.json") if p.is_file()), None)
        info = _json(path) if path is not None else {}
    label = (info.get("features") or {}).get("label") if isinstance(info.get("features"), dict) else None
    names = label.get("names") if isinstance(label, dict) else None
    if names is None:
        return ()
    if not isinstance(names, list) or len(names) > MAX_CLASSES or not all(isinstance(n, str) for n in names):
        raise DatasetError(f"The class names in {folder}'s metadata are not a list of at most {MAX_CLASSES:,} names.")
    return tuple(n[:200] for n in names)


def _open_source(files: list[Path], kind: str, where: str):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise DatasetError("hf: datasets need pyarrow: pip install 'latentlab[hf]'.") from None
    for path in files:
        if not path.is_file():
            raise DatasetError(f"The data file {path} does not exist.")
    return (ArrowSource if kind == "arrow" else ParquetSource)(files, where)


def _column(schema, where: str):
    names = schema.names
    image = next((c for c in IMAGE_COLUMNS if c in names), None)
    if image is None:
        raise DatasetError(f"{where} has no image column (its columns: {', '.join(names[:12]) or 'none'}).")
    return image


def _labels(table, where: str) -> np.ndarray | None:
    import pyarrow as pa

    if "label" not in table.schema.names:
        return None
    col = table.column("label")
    if not pa.types.is_integer(col.type):
        raise DatasetError(f"In {where}, the label column holds {col.type}; expected integers.")
    if col.null_count:
        raise DatasetError(f"In {where}, some rows have no label.")
    y = col.to_numpy()
    return labels_from_array(y, len(y), where, "the label column")   # negative or beyond int64: one sentence


class ArrowSource:
    """The image column of save_to_disk Arrow files (IPC stream, or IPC file), memory-mapped."""

    def __init__(self, files: list[Path], where: str):
        import pyarrow as pa

        self.where = where
        self._maps, chunks, labels, self.metadata = [], [], [], {}
        for path in files:
            with open_error(path), open_regular(path) as fh:
                try:
                    mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                except ValueError:
                    raise DatasetError(f"{path} is empty.") from None
            self._maps.append(mm)
            table = _read_ipc(pa, pa.py_buffer(mm), path)
            self.metadata = self.metadata or dict(table.schema.metadata or {})
            name = _column(table.schema, str(path))
            chunks += [BytesChunk(*image_bytes(c, str(path))) for c in table.column(name).chunks]
            labels.append(_labels(table, str(path)))
        if any(y is None for y in labels) and not all(y is None for y in labels):
            raise DatasetError(f"In {where}, some files have a label column and others do not.")
        self.labels = None if labels[0] is None else np.concatenate(labels)
        self._chunks = chunks
        self._starts = np.cumsum([0] + [len(c.offsets) - 1 for c in chunks])
        self._lock = threading.Lock()
        self._touched = 0
        self._release()

    def __len__(self) -> int:
        return int(self._starts[-1])

    def encoded(self, rows: np.ndarray) -> list:
        which = np.searchsorted(self._starts, rows, side="right") - 1
        out = [self._chunks[c].get(int(r - self._starts[c])) for c, r in zip(which, rows)]
        with self._lock:
            self._touched += sum(len(b) + FAULT_AROUND for b in out if b is not None)
            if self._touched > RESIDENT_BUDGET:
                self._release()
        return [None if b is None else bytes(b) for b in out]

    def _release(self) -> None:
        self._touched = 0
        for mm in self._maps:
            if hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
                mm.madvise(mmap.MADV_DONTNEED)

    def epoch_order(self, rows, generator):
        return None


def _read_ipc(pa, buf, path: Path):
    try:
        return pa.ipc.open_stream(buf).read_all()
    except (pa.ArrowException, OSError, ValueError):
        pass
    try:
        return pa.ipc.open_file(buf).read_all()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DatasetError(f"{path} is not a readable Arrow file ({reason(exc)}).") from None


class ParquetSource:
    """The image column of Parquet files, read a row group at a time through an LRU of row groups."""

    def __init__(self, files: list[Path], where: str):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.where = where
        self._files, sizes, self._groups, labels, self.metadata = [], [], [], [], {}
        for path in files:
            try:
                with open_error(path), open_regular(path):
                    pass
                pf = pq.ParquetFile(str(path))
                meta = pf.metadata
                name = _column(pf.schema_arrow, str(path))
                ys = _labels(pf.read(columns=["label"]), str(path)) if "label" in pf.schema_arrow.names else None
            except (pa.ArrowException, OSError) as exc:
                raise DatasetError(f"{path} is not a readable Parquet file ({reason(exc)}).") from None
            self.metadata = self.metadata or dict(pf.schema_arrow.metadata or {})
            for g in range(meta.num_row_groups):
                rg = meta.row_group(g)
                claimed = sum(rg.column(i).total_uncompressed_size for i in range(rg.num_columns)
                              if rg.column(i).path_in_schema.split(".")[0] == name)
                if rg.num_rows < 0 or claimed > MAX_GROUP_BYTES:
                    raise DatasetError(f"{path} claims {claimed:,} bytes of images in one row group; "
                                       f"at most {MAX_GROUP_BYTES >> 20:,} MB are read at a time.")
                self._groups.append((len(self._files), g, claimed))
                sizes.append(rg.num_rows)
            self._files.append((pf, name))
            labels.append(ys)
        if any(y is None for y in labels) and not all(y is None for y in labels):
            raise DatasetError(f"In {where}, some files have a label column and others do not.")
        self.labels = None if labels[0] is None else np.concatenate(labels)
        if self.labels is not None and len(self.labels) != sum(sizes):
            raise DatasetError(f"In {where}, the label column and the row groups disagree on the number of rows.")
        self._starts = np.cumsum([0] + sizes)
        self._cache: OrderedDict[int, list] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _group(self, gid: int) -> list:
        import pyarrow as pa

        with self._lock:
            if gid in self._cache:
                self._cache.move_to_end(gid)
                return self._cache[gid]
        f, g, _ = self._groups[gid]
        pf, name = self._files[f]
        try:
            column = pf.read_row_group(g, columns=[name]).column(0)
        except (pa.ArrowException, OSError) as exc:
            raise DatasetError(f"Row group {g} of {self.where} is not readable ({reason(exc)}).") from None
        if len(column) != self._starts[gid + 1] - self._starts[gid]:
            raise DatasetError(f"Row group {g} of {self.where} holds a different number of rows than it claims.")
        chunks = [BytesChunk(*image_bytes(c, self.where)) for c in column.chunks]
        with self._lock:
            self._cache[gid] = chunks
            self._cached += sum(c.nbytes for c in chunks)
            while self._cached > GROUP_CACHE_BYTES and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cached -= sum(c.nbytes for c in old)
        return chunks

    def encoded(self, rows: np.ndarray) -> list:
        out = []
        which = np.searchsorted(self._starts, rows, side="right") - 1
        for gid, r in zip(which, rows):
            i = int(r - self._starts[gid])
            for chunk in self._group(int(gid)):
                n = len(chunk.offsets) - 1
                if i < n:
                    b = chunk.get(i)
                    out.append(None if b is None else bytes(b))
                    break
                i -= n
        return out

    def epoch_order(self, rows: np.ndarray, generator) -> np.ndarray:
        """Row groups in a random order, taken in windows of about half the cache, each window's rows
        shuffled: every row once per epoch, and each row group read about once."""
        import torch

        group_of = np.searchsorted(self._starts, rows, side="right") - 1
        groups, first = np.unique(group_of, return_index=True)
        ends = np.append(first[1:], len(rows))
        out, window, size = [], [], 0
        for k in torch.randperm(len(groups), generator=generator, device=generator.device).tolist():
            window.append(np.arange(first[k], ends[k]))
            size += self._groups[groups[k]][2]
            if size >= GROUP_CACHE_BYTES // 2:
                out.append(_shuffled(np.concatenate(window), generator))
                window, size = [], 0
        if window:
            out.append(_shuffled(np.concatenate(window), generator))
        return np.concatenate(out) if out else np.zeros(0, np.int64)


def _shuffled(positions: np.ndarray, generator) -> np.ndarray:
    import torch

    return positions[torch.randperm(len(positions), generator=generator, device=generator.device).cpu().numpy()]
