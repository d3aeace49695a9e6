"""Reading latent tables for the window: round trips through Parquet, CSV and NPZ, rows that are not
finite numbers dropped with a notice, and broken or hostile files refused in one sentence."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from table_files import table_columns, write_parquet

from latentlab.core.errors import LatentLabError
from latentlab.core.tables import table_reader
from latentlab.core.tables.latent_table import LatentTable, write_table
from latentlab.core.tables.table_reader import read_latent_table

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def one_sentence(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text and "Traceback" not in text and len(text) <= 300, text
    return text


@pytest.mark.parametrize("dictionary_split", [True, False])
def test_parquet_round_trip_in_row_groups(tmp_path, dictionary_split):
    cols = table_columns(3000, 5, train=100, test=40)
    path = tmp_path / "t.parquet"
    write_parquet(path, cols, dictionary_split=dictionary_split, row_group_size=700)
    t = read_latent_table(path)
    assert len(t) == 3000 and t.latent_dim == 5 and t.dropped == 0 and t.notes == ()
    np.testing.assert_array_equal(t.mu, cols["mu"])
    np.testing.assert_array_equal(t.logvar, cols["logvar"])
    np.testing.assert_array_equal(t.index, cols["index"])
    np.testing.assert_array_equal(t.split, (cols["split"] == "test").astype(np.uint8))
    np.testing.assert_array_equal(t.label, cols["label"])
    assert t.label_names == tuple(cols["label_names"]) and t.has_labels
    assert t.mu.dtype == np.float32 and t.mu.flags.f_contiguous   # one contiguous column per dimension


def test_a_table_written_as_encode_writes_it_keeps_its_label_names(tmp_path):
    """`latentlab encode --out FILE.parquet` keeps the names in its own metadata block; the window
    showed the labels' numbers instead."""
    from latentlab.core.tables.parquet_table import ParquetTableWriter

    cols = table_columns(300, 2, labels=3)
    with ParquetTableWriter(tmp_path / "t.parquet", 2, ("square", "ellipse", "heart")) as w:
        w.write(cols["index"], cols["split"], cols["label"], cols["mu"], cols["logvar"])
    t = read_latent_table(tmp_path / "t.parquet")
    assert t.label_names == ("square", "ellipse", "heart") and t.has_labels
    np.testing.assert_array_equal(t.label, cols["label"])


def test_float64_columns_are_read_as_float32(tmp_path):
    cols = table_columns(50, 2)
    arrays = {"index": pa.array(cols["index"]), "split": pa.array(cols["split"])}
    arrays.update({f"mu_{d}": pa.array(cols["mu"][:, d].astype(np.float64)) for d in range(2)})
    arrays.update({f"logvar_{d}": pa.array(cols["logvar"][:, d].astype(np.float64)) for d in range(2)})
    pq.write_table(pa.table(arrays), tmp_path / "t.parquet")
    t = read_latent_table(tmp_path / "t.parquet")
    np.testing.assert_array_equal(t.mu, cols["mu"])


def test_a_table_without_labels_or_names_opens(tmp_path):
    cols = table_columns(200, 3)
    write_parquet(tmp_path / "t.parquet", cols, drop=("label",), metadata={})
    t = read_latent_table(tmp_path / "t.parquet")
    assert not t.has_labels and t.label_names == ("no label",) and (t.label == 0).all()
    write_parquet(tmp_path / "u.parquet", cols, metadata={})   # labels without names: named by their numbers
    assert read_latent_table(tmp_path / "u.parquet").label_names == tuple(str(i) for i in range(10))


def test_rows_that_are_not_finite_are_dropped_and_counted(tmp_path):
    cols = table_columns(400, 3)
    cols["mu"][[5, 17], 1] = np.nan
    cols["logvar"][30, 2] = np.inf
    cols["logvar"][31, 0] = 500.0   # exp() of it overflows float32
    write_parquet(tmp_path / "t.parquet", cols)
    t = read_latent_table(tmp_path / "t.parquet")
    keep = np.setdiff1d(np.arange(400), [5, 17, 30, 31])
    assert t.dropped == 4 and len(t) == 396 and "4 row(s)" in t.notes[0]
    np.testing.assert_array_equal(t.mu, cols["mu"][keep])
    np.testing.assert_array_equal(t.index, cols["index"][keep])
    np.testing.assert_array_equal(t.label, cols["label"][keep])


def test_null_means_count_as_not_finite(tmp_path):
    cols = table_columns(20, 2)
    table = pa.table({"index": cols["index"], "split": cols["split"], "mu_0": pa.array([None] + [1.0] * 19, pa.float32()),
                      "mu_1": cols["mu"][:, 1], "logvar_0": cols["logvar"][:, 0], "logvar_1": cols["logvar"][:, 1]})
    pq.write_table(table, tmp_path / "t.parquet")
    assert read_latent_table(tmp_path / "t.parquet").dropped == 1


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_csv_and_npz_tables_open_the_same_way(tmp_path, suffix):
    cols = table_columns(120, 3)
    table = LatentTable(index=cols["index"], split=cols["split"], label=cols["label"].astype(np.int64), mu=cols["mu"],
                        logvar=cols["logvar"], label_names=tuple(cols["label_names"]))
    write_table(tmp_path / f"t{suffix}", table)
    t = read_latent_table(tmp_path / f"t{suffix}")
    np.testing.assert_array_equal(t.mu, cols["mu"])
    np.testing.assert_array_equal(t.split, (cols["split"] == "test").astype(np.uint8))


def hostile(tmp_path, name: str) -> Path:
    """A table broken in the way `name` says."""
    cols = table_columns(60, 3)
    path = tmp_path / "bad.parquet"
    if name == "garbage":
        path.write_bytes(b"PAR1" + bytes(range(256)) * 20)
    elif name == "truncated":
        write_parquet(path, cols)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif name == "csv text named parquet":
        path.write_text("index,split\n1,train\n")
    elif name == "no logvar":
        write_parquet(path, cols, drop=("logvar_0", "logvar_1", "logvar_2"))
    elif name == "uneven counts":
        write_parquet(path, cols, drop=("logvar_2",))
    elif name == "gap in dims":
        write_parquet(path, cols, drop=("mu_1", "logvar_1"))
    elif name == "stray dim column":
        write_parquet(path, cols)
        t = pq.read_table(path)
        pq.write_table(t.append_column("mu_x", pa.array(np.zeros(60, np.float32))), path)
    elif name == "duplicate column":
        t = pa.table({"index": cols["index"], "split": cols["split"], "mu_0": cols["mu"][:, 0],
                      "logvar_0": cols["logvar"][:, 0]})
        pq.write_table(pa.Table.from_arrays(t.columns + [t.column("mu_0")], names=t.column_names + ["mu_0"]), path)
    elif name == "text means":
        t = pa.table({"index": cols["index"], "split": cols["split"], "mu_0": pa.array(["1"] * 60),
                      "logvar_0": cols["logvar"][:, 0]})
        pq.write_table(t, path)
    elif name == "float index":
        t = pa.table({"index": cols["index"].astype(float), "split": cols["split"], "mu_0": cols["mu"][:, 0],
                      "logvar_0": cols["logvar"][:, 0]})
        pq.write_table(t, path)
    elif name == "other split":
        cols["split"][3] = "validation"
        write_parquet(path, cols)
    elif name == "null split":
        t = pa.table({"index": cols["index"], "split": pa.array(["train", None] * 30), "mu_0": cols["mu"][:, 0],
                      "logvar_0": cols["logvar"][:, 0]})
        pq.write_table(t, path)
    elif name == "negative index":
        cols["index"][7] = -1
        write_parquet(path, cols)
    elif name == "null index":
        t = pa.table({"index": pa.array([None] + list(range(59)), pa.int64()), "split": cols["split"],
                      "mu_0": cols["mu"][:, 0], "logvar_0": cols["logvar"][:, 0]})
        pq.write_table(t, path)
    elif name == "huge label":
        cols["label"][2] = 2_000_000_000
        write_parquet(path, cols)
    elif name == "label without a name":
        cols["label_names"] = ["a", "b"]
        write_parquet(path, cols)
    elif name == "names not json":
        write_parquet(path, cols, metadata={"latentlab.label_names": "{not json"})
    elif name == "names not strings":
        write_parquet(path, cols, metadata={"latentlab.label_names": json.dumps([1, 2, 3])})
    elif name == "too many names":
        write_parquet(path, cols, metadata={"latentlab.label_names": json.dumps(["x"] * 20_000)})
    elif name == "block not an object":
        write_parquet(path, cols, metadata={"latentlab": json.dumps(["a", "b"])})
    elif name == "block names not strings":
        write_parquet(path, cols, metadata={"latentlab": json.dumps({"label_names": [{"x": 1}] * 10})})
    elif name == "block nested deeply":
        write_parquet(path, cols, metadata={"latentlab": "[" * 100_000 + "]" * 100_000})
    elif name == "too many dimensions":
        k = table_reader.MAX_K + 1
        arrays = {"index": pa.array([0]), "split": pa.array(["train"])}
        arrays.update({f"mu_{d}": pa.array([0.0], pa.float32()) for d in range(k)})
        arrays.update({f"logvar_{d}": pa.array([0.0], pa.float32()) for d in range(k)})
        pq.write_table(pa.table(arrays), path)
    elif name == "no rows":
        write_parquet(path, {**cols, **{key: cols[key][:0] for key in ("index", "split", "label", "mu", "logvar")}})
    elif name == "all rows nan":
        cols["mu"][:] = np.nan
        write_parquet(path, cols)
    elif name == "wrong suffix":
        path = tmp_path / "t.feather"
        path.write_bytes(b"x")
    elif name == "missing":
        path = tmp_path / "none.parquet"
    return path


HOSTILE = ["garbage", "truncated", "csv text named parquet", "no logvar", "uneven counts", "gap in dims",
           "stray dim column", "duplicate column", "text means", "float index", "other split", "null split",
           "negative index", "null index", "huge label", "label without a name", "names not json",
           "names not strings", "too many names", "block not an object", "block names not strings",
           "block nested deeply", "too many dimensions", "no rows", "all rows nan", "wrong suffix",
           "missing"]


@pytest.mark.parametrize("name", HOSTILE)
def test_broken_and_hostile_tables_are_refused_in_one_sentence(tmp_path, name):
    with pytest.raises(LatentLabError) as excinfo:
        read_latent_table(hostile(tmp_path, name))
    one_sentence(excinfo)


def test_a_file_claiming_more_than_fits_is_refused_before_allocating(tmp_path, monkeypatch):
    write_parquet(tmp_path / "t.parquet", table_columns(100, 3))
    monkeypatch.setattr("latentlab.core.memory.available_bytes", lambda device="cpu": 1000)
    with pytest.raises(LatentLabError) as excinfo:
        read_latent_table(tmp_path / "t.parquet")
    assert "memory" in one_sentence(excinfo)


def test_without_pyarrow_the_sentence_says_how_to_install_it(tmp_path, monkeypatch):
    write_parquet(tmp_path / "t.parquet", table_columns(10, 2))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(LatentLabError) as excinfo:
        read_latent_table(tmp_path / "t.parquet")
    assert "latentlab[tables]" in one_sentence(excinfo)


def test_stopping_the_read_raises_cancelled(tmp_path):
    from latentlab.core.errors import Cancelled

    write_parquet(tmp_path / "t.parquet", table_columns(1000, 2), row_group_size=100)
    seen = []
    with pytest.raises(Cancelled):
        read_latent_table(tmp_path / "t.parquet", progress=seen.append, should_stop=lambda: len(seen) >= 3)
    assert seen == sorted(seen) and 0 < seen[-1] < 1
