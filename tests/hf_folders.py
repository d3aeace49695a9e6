"""Hugging Face dataset folders written with pyarrow alone, in the layouts `datasets` uses:
save_to_disk (state.json, dataset_info.json, data-0000N-of-0000M.arrow as Arrow IPC streams; a
DatasetDict adds dataset_dict.json and one folder per split) and Parquet files named by split."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np


def png_bytes(image: np.ndarray) -> bytes:
    """One uint8 (H, W) or (H, W, 3) image as PNG bytes (lossless, so decoding gives it back)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def small_images(n: int, size: int = 8, seed: int = 0, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, size, size) if channels == 1 else (n, size, size, channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def image_table(images, labels=None, names=None, *, struct: bool = True, blobs=None, chunk: int = 100):
    """A pyarrow Table with an `image` column (struct<bytes, path> as `datasets` writes it, or plain
    binary) and an optional int64 `label`; Hugging Face features in the schema metadata."""
    import pyarrow as pa

    blobs = [png_bytes(im) for im in images] if blobs is None else blobs
    if struct:
        column = pa.array([{"bytes": b, "path": None} for b in blobs],
                          type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    else:
        column = pa.array(blobs, type=pa.binary())
    cols = {"image": column}
    features = {"image": {"_type": "Image"}}
    if labels is not None:
        cols["label"] = pa.array(np.asarray(labels, np.int64))
        features["label"] = {"_type": "ClassLabel", "names": list(names)} if names else {"_type": "Value", "dtype": "int64"}
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    table = pa.table(cols).replace_schema_metadata(meta)
    return table, features


def write_arrow_split(folder: Path, table, features, *, files: int = 1, chunk: int = 100) -> Path:
    """One split as save_to_disk writes it: IPC stream files, state.json, dataset_info.json."""
    import pyarrow as pa

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    bounds = np.linspace(0, len(table), files + 1).astype(int)
    for i in range(files):
        name = f"data-{i:05d}-of-{files:05d}.arrow"
        part = table.slice(bounds[i], bounds[i + 1] - bounds[i])
        with pa.OSFile(str(folder / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
            for batch in part.to_batches(max_chunksize=chunk):
                w.write_batch(batch)
        names.append(name)
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in names],
                                                   "_fingerprint": "0", "_format_type": None, "_split": None}))
    (folder / "dataset_info.json").write_text(json.dumps({"features": features}))
    return folder


def write_dataset_dict(folder: Path, splits: dict) -> Path:
    """A DatasetDict: {split name: (table, features)}."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (table, features) in splits.items():
        write_arrow_split(folder / name, table, features)
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}))
    return folder


def write_parquet_split(folder: Path, name: str, table, *, row_group: int = 50, files: int = 1) -> list[Path]:
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    bounds = np.linspace(0, len(table), files + 1).astype(int)
    for i in range(files):
        path = folder / f"{name}-{i:05d}-of-{files:05d}.parquet"
        pq.write_table(table.slice(bounds[i], bounds[i + 1] - bounds[i]), str(path), row_group_size=row_group)
        out.append(path)
    return out
