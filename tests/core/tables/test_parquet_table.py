"""Latent tables in Parquet: the documented layout, round trips through latentlab, pyarrow and pandas,
writing row group by row group, atomic saves, and files that are not latent tables refused in one
sentence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentlab.core.errors import LatentLabError
from latentlab.core.tables.latent_table import LatentTable, encode_table, write_table
from latentlab.core.tables.table_reader import read_table

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
from latentlab.core.tables import parquet_table  # noqa: E402
from latentlab.core.tables.parquet_table import ParquetTableWriter  # noqa: E402


def table(n=300, k=3, seed=0) -> LatentTable:
    rng = np.random.default_rng(seed)
    n_test = n // 4
    return LatentTable(index=np.concatenate([np.arange(n - n_test), np.arange(n_test)]),
                       split=np.array(["train"] * (n - n_test) + ["test"] * n_test),
                       label=rng.integers(0, 4, n), mu=rng.normal(size=(n, k)).astype(np.float32),
                       logvar=rng.normal(size=(n, k)).astype(np.float32), label_names=("a", "b", "c", "d"))


def assert_same(a: LatentTable, b: LatentTable):
    for col in ("index", "split", "label", "mu", "logvar"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    assert a.label_names == b.label_names


def test_parquet_round_trips_and_has_the_documented_layout(tmp_path):
    t = table()
    write_table(tmp_path / "t.parquet", t)
    assert_same(read_table(tmp_path / "t.parquet"), t)
    schema = pq.read_schema(tmp_path / "t.parquet")
    assert schema.names == ["index", "split", "label", "mu_0", "mu_1", "mu_2", "logvar_0", "logvar_1", "logvar_2"]
    assert [str(schema.field(n).type) for n in schema.names[:4]] == ["int64", "string", "int64", "float"]
    meta = json.loads(schema.metadata[b"latentlab"])
    assert meta == {"format": "latentlab latent table", "version": 1, "latent_dim": 3, "label_names": ["a", "b", "c", "d"]}
    assert pq.ParquetFile(tmp_path / "t.parquet").metadata.num_rows == 300


def test_pandas_reads_it(tmp_path):
    pd = pytest.importorskip("pandas")
    t = table()
    write_table(tmp_path / "t.parquet", t)
    df = pd.read_parquet(tmp_path / "t.parquet")
    assert list(df.columns[:3]) == ["index", "split", "label"] and len(df) == 300
    np.testing.assert_array_equal(df[["mu_0", "mu_1", "mu_2"]].to_numpy(), t.mu)
    assert df["mu_0"].dtype == np.float32
    assert (df["split"] == "test").sum() == 75


def test_rows_are_written_a_row_group_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet_table, "ROW_GROUP_ROWS", 100)
    t = table(n=1000)
    with ParquetTableWriter(tmp_path / "t.parquet", 3, t.label_names) as w:
        for i in range(0, 1000, 64):
            part = slice(i, i + 64)
            w.write(t.index[part], t.split[part], t.label[part], t.mu[part], t.logvar[part])
            written = w.rows
    assert written == 1000
    meta = pq.ParquetFile(tmp_path / "t.parquet").metadata
    sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    assert sum(sizes) == meta.num_rows == 1000 and max(sizes) < 100 + 64    # never more than one group pending
    assert_same(read_table(tmp_path / "t.parquet"), t)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(path, table(seed=1))
    before = path.read_bytes()
    with pytest.raises(RuntimeError):
        with ParquetTableWriter(path, 3) as w:
            w.write([0], ["train"], [0], np.zeros((1, 3)), np.zeros((1, 3)))
            raise RuntimeError("stopped")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_encode_table_to_parquet_is_the_same_table(tmp_path):
    from latentlab.core.data.specs import load_dataset
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.models.vae import build_model
    from latentlab.core.tables.table_rows import encode_rows

    data = load_dataset("digits")
    model = build_model(ModelConfig(image_shape=data.image_shape, latent_dim=2, hidden=(16,)), seed=0)
    whole = encode_table(model, data, batch=500)
    with ParquetTableWriter(tmp_path / "t.parquet", 2, data.label_names) as w:
        for rows in encode_rows(model, data, batch=500):
            w.write(*rows.columns())
    assert_same(read_table(tmp_path / "t.parquet"), whole)


def _write(path, columns: dict, metadata=None):
    t = pa.table(columns)
    if metadata is not None:
        t = t.replace_schema_metadata({b"latentlab": json.dumps(metadata).encode()})
    pq.write_table(t, path)


GOOD = {"format": "latentlab latent table", "version": 1, "latent_dim": 1, "label_names": []}


@pytest.mark.parametrize("columns, metadata, fragment", [
    ({"x": [1]}, None, "no index, split, mu_0, logvar_0 column"),
    ({"x": [1]}, {"format": "other"}, "no index, split, mu_0, logvar_0 column"),
    ({"index": [0], "split": ["train"], "label": [0], "mu_0": [0.5], "logvar_0": [0.5]}, {**GOOD, "version": 99},
     "version 99"),
    ({"index": [0], "split": ["train"], "label": [0], "mu_0": [0.5], "logvar_0": [0.5]}, ["a"], "not a JSON object"),
    ({"index": [0], "split": ["train"], "label": [0], "mu_0": [0.5], "logvar_0": ["x"]}, GOOD, "not numbers"),
    ({"index": [0.5], "split": ["train"], "label": [0], "mu_0": [0.5], "logvar_0": [0.5]}, GOOD, "not integers"),
    ({"index": [0], "split": ["train"], "label": [0], "mu_0": [0.5], "mu_1": [0.5], "logvar_0": [0.5]}, GOOD,
     "are not mu_0..mu_1"),
])
def test_files_that_are_not_latent_tables_are_refused(tmp_path, columns, metadata, fragment):
    _write(tmp_path / "t.parquet", columns, metadata)
    with pytest.raises(LatentLabError) as info:
        read_table(tmp_path / "t.parquet")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_table_of_float64_means_from_another_tool_reads_as_float32(tmp_path):
    """The reader takes what pandas writes by default (float64, no latentlab block); so does the window."""
    _write(tmp_path / "t.parquet", {"index": [0, 1], "split": ["train", "test"], "label": [1, 0],
                                    "mu_0": [0.5, -0.25], "logvar_0": [-1.0, 0.0]})
    t = read_table(tmp_path / "t.parquet")
    assert t.mu.dtype == np.float32 and t.mu.tolist() == [[0.5], [-0.25]] and t.split.tolist() == ["train", "test"]


def test_truncated_and_bad_values_are_refused(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(path, table())
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(LatentLabError, match="not a readable Parquet file"):
        read_table(path)
    bad = {"index": pa.array([0], pa.int64()), "split": ["elsewhere"], "label": pa.array([0], pa.int64()),
           "mu_0": pa.array([0.5], pa.float32()), "logvar_0": pa.array([0.5], pa.float32())}
    _write(path, bad, GOOD)
    with pytest.raises(LatentLabError, match="other than train and test"):
        read_table(path)


def test_a_fifo_named_as_a_table_is_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "t.parquet"
    os.mkfifo(fifo)
    with pytest.raises(LatentLabError, match="not a regular file"):
        read_table(fifo)
