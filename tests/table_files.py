"""Latent tables for tests, written with pyarrow as another tool would write them: the columns
`latentlab encode --out FILE.parquet` writes (index, split, label, mu_0.., logvar_0..), the label
names as a plain JSON list under the schema metadata key `latentlab.label_names`."""

from __future__ import annotations

import json

import numpy as np


def table_columns(n: int, k: int, *, train: int | None = None, test: int | None = None, labels: int = 10,
                  seed: int = 0) -> dict:
    """Clusters of means, one per label; rows split 80/20, each split's index cycling through
    `train` / `test` dataset rows (default: as many as the split has)."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, labels, n)
    centres = rng.standard_normal((labels, k)).astype(np.float32) * 1.5
    mu = (centres[label] + 0.5 * rng.standard_normal((n, k))).astype(np.float32)
    logvar = np.full((n, k), -2.0, np.float32) + 0.1 * rng.standard_normal((n, k)).astype(np.float32)
    split = np.where(np.arange(n) < int(0.8 * n), "train", "test")
    index = np.empty(n, np.int64)
    for name, size in (("train", train), ("test", test)):
        rows = np.flatnonzero(split == name)
        index[rows] = np.arange(len(rows)) % (size or max(len(rows), 1))
    return {"index": index, "split": split, "label": label.astype(np.int32), "mu": mu, "logvar": logvar,
            "label_names": [f"class {i}" for i in range(labels)]}


def write_parquet(path, cols: dict, *, dictionary_split: bool = True, row_group_size: int = 65536,
                  drop: tuple = (), metadata: dict | None = None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    k = cols["mu"].shape[1]
    split = pa.array(cols["split"])
    arrays = {"index": pa.array(cols["index"]), "split": split.dictionary_encode() if dictionary_split else split,
              "label": pa.array(cols["label"])}
    arrays.update({f"mu_{d}": pa.array(cols["mu"][:, d]) for d in range(k)})
    arrays.update({f"logvar_{d}": pa.array(cols["logvar"][:, d]) for d in range(k)})
    for name in drop:
        arrays.pop(name)
    meta = {"latentlab.label_names": json.dumps(cols["label_names"])} if metadata is None else metadata
    pq.write_table(pa.table(arrays).replace_schema_metadata(meta), path, row_group_size=row_group_size)
