"""`hf:DIR` datasets: save_to_disk folders and Parquet folders round-trip bit for bit, are read a batch
at a time with bounded memory, and broken or hostile files are refused in one sentence."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
from hf_folders import image_table, png_bytes, small_images, write_arrow_split, write_dataset_dict, write_parquet_split
from hostile_io import dataset_refusal

from latentlab.core.data.dataset import split_indices
from latentlab.core.data.specs import load_dataset

pa = pytest.importorskip("pyarrow")


# --- round trips -------------------------------------------------------------------------------


def test_a_dataset_dict_round_trips_images_labels_and_class_names(tmp_path):
    x, y = small_images(130), np.arange(130) % 4
    names = ["zero", "one", "two", "three"]
    write_dataset_dict(tmp_path, {"train": image_table(x[:100], y[:100], names),
                                  "test": image_table(x[100:], y[100:], names)})
    data = load_dataset(f"hf:{tmp_path}")
    assert data.label_names == tuple(names) and data.image_shape == (1, 8, 8)
    np.testing.assert_array_equal(data.x_train.stored[:], x[:100, None])
    np.testing.assert_array_equal(data.x_test.stored[:], x[100:, None])
    np.testing.assert_array_equal(data.y_train, y[:100])
    np.testing.assert_array_equal(data.y_test, y[100:])
    rows = np.array([7, 3, 99, 3])
    np.testing.assert_array_equal(data.x_train.stored[rows], x[rows, None])       # any order, repeats
    np.testing.assert_array_equal(data.x_train[rows], x[rows, None] / np.float32(255))
    assert data.x_train[5].shape == (1, 8, 8) and data.x_train[-1].dtype == np.float32
    assert data.pixel_bytes == 0            # nothing is held: the training budget counts no dataset


def test_one_split_in_several_files_is_split_like_every_loader(tmp_path):
    x, y = small_images(150, seed=1), np.array([3, 7] * 75)
    table, features = image_table(x, y, struct=False)
    write_arrow_split(tmp_path, table, features, files=3, chunk=40)
    data = load_dataset(f"hf:{tmp_path}")
    train, test = (np.sort(r) for r in split_indices(150, "x"))
    np.testing.assert_array_equal(data.x_train.stored[:], x[train, None])
    np.testing.assert_array_equal(data.x_test.stored[:], x[test, None])
    assert data.label_names == ("3", "7")               # no class names: the values, made contiguous
    np.testing.assert_array_equal(data.y_train, (y[train] == 7).astype(int))


def test_parquet_files_round_trip_rgb_images_and_names_from_dataset_info(tmp_path):
    x = small_images(90, seed=2, channels=3)
    table, _ = image_table(x[:70], np.arange(70) % 2, ["cat", "dog"])
    write_parquet_split(tmp_path / "data", "train", table, row_group=16, files=2)
    write_parquet_split(tmp_path / "data", "test", image_table(x[70:], np.arange(20) % 2, ["cat", "dog"])[0])
    data = load_dataset(f"hf:{tmp_path}")
    assert data.image_shape == (3, 8, 8) and data.label_names == ("cat", "dog")
    np.testing.assert_array_equal(data.x_train.stored[:], x[:70].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data.x_test.stored[::-1], x[70:][::-1].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data.y_test, np.arange(20) % 2)


def test_a_parquet_epoch_visits_every_row_once_reading_row_groups_in_windows(tmp_path):
    import torch

    write_parquet_split(tmp_path, "train", image_table(small_images(300), struct=False)[0], row_group=25)
    data = load_dataset(f"hf:{tmp_path}")
    gen = torch.Generator().manual_seed(0)
    order = data.x_train.epoch_order(gen)
    assert sorted(order.tolist()) == list(range(len(data.x_train)))
    assert not np.array_equal(order, np.sort(order))


def test_training_from_arrow_files_gives_the_weights_of_the_same_images_in_memory(tmp_path):
    from latentlab.core.data.dataset import Dataset
    from latentlab.core.models.config import ModelConfig, TrainConfig
    from latentlab.core.models.vae import build_model
    from latentlab.core.training.sharded import train

    x, y = small_images(400, seed=3), np.arange(400) % 2
    write_dataset_dict(tmp_path, {"train": image_table(x[:320], y[:320]), "test": image_table(x[320:], y[320:])})
    streamed = load_dataset(f"hf:{tmp_path}")
    held = Dataset("m", "m", x[:320, None], y[:320], x[320:, None], y[320:], ("0", "1"))
    cfg = TrainConfig(epochs=2, batch_size=48, device="cpu", scatter_points=0, free_bits=0.05)
    out = []
    for data in (streamed, held):
        model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=(16,)), seed=0)
        snaps = list(train(model, data, cfg))
        assert snaps[-1].error is None
        out.append(snaps[-1])
    # The same permutation, noise and sums; in memory the MLP's gradient is the written-out one
    # (core.training.mlp_step), the streamed loop's autograd's: equal to float32 rounding.
    for name, value in out[1].weights.items():
        np.testing.assert_allclose(out[0].weights[name], value, rtol=1e-4, atol=1e-6)
    assert out[0].history[-1]["test_elbo"] == pytest.approx(out[1].history[-1]["test_elbo"], rel=1e-5)


# --- bounded memory ----------------------------------------------------------------------------


def test_streaming_a_file_larger_than_the_resident_budget_keeps_memory_bounded(tmp_path):
    """8,000 rows of 8 kB: a 64 MB Arrow file, read whole, batch by batch, in a fresh process (with an
    8 MB budget of resident pages) whose resident memory grows by well under the file's size (the pages
    read are handed back as it goes; without that, every mapped page it touched would count)."""
    rng = np.random.default_rng(0)
    blob = png_bytes(rng.integers(0, 256, (90, 90), dtype=np.uint8))
    n = 64_000_000 // len(blob)
    table = pa.table({"image": pa.array([blob] * n, type=pa.binary())})
    write_arrow_split(tmp_path, table, {"image": {"_type": "Image"}}, chunk=1000)
    size = sum(p.stat().st_size for p in tmp_path.glob("*.arrow"))
    script = textwrap.dedent(f"""
        def rss_kb():
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        import latentlab.core.data.streaming.hf as hf
        from latentlab.core.data.specs import load_dataset
        hf.RESIDENT_BUDGET = 8 << 20
        data = load_dataset("hf:{tmp_path}")
        x = data.x_train.stored
        x[:64]
        before = peak = rss_kb()
        total = 0
        for i in range(0, len(x), 512):
            total += int(x[i:i + 512].shape[0])
            peak = max(peak, rss_kb())
        print(total, peak - before)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows, growth_kb = map(int, done.stdout.split())
    assert rows == len(split_indices(n, "x")[0]) and size > 60e6
    assert growth_kb * 1024 < size / 2, f"peak RSS grew by {growth_kb / 1024:.0f} MB reading a {size / 1e6:.0f} MB file"


# --- broken and hostile files ------------------------------------------------------------------


def test_truncated_files_are_refused_in_dataset_refusal(tmp_path):
    table, features = image_table(small_images(40))
    write_parquet_split(tmp_path / "pq", "train", table)
    path = next((tmp_path / "pq").glob("*.parquet"))
    path.write_bytes(path.read_bytes()[:-100])
    dataset_refusal(f"hf:{tmp_path / 'pq'}", "not a readable Parquet file")
    write_arrow_split(tmp_path / "ar", table, features)
    arrow = tmp_path / "ar" / "data-00000-of-00001.arrow"
    arrow.write_bytes(arrow.read_bytes()[:300])
    dataset_refusal(f"hf:{tmp_path / 'ar'}", "not a readable Arrow file")
    arrow.write_bytes(b"")
    dataset_refusal(f"hf:{tmp_path / 'ar'}", "empty")


@pytest.mark.parametrize("columns, fragment", [
    ({"image": pa.array([1, 2, 3])}, "image column holds int64"),
    ({"picture": pa.array([b"x"])}, "no image column"),
    ({"image": pa.array([{"path": "a.png"}], type=pa.struct([("path", pa.string())]))}, "struct without a bytes"),
    ({"image": pa.array([b"x", b"y"]), "label": pa.array([0.5, 1.5])}, "label column holds double"),
    ({"image": pa.array([b"x", b"y"]), "label": pa.array([0, -1])}, "negative label -1"),
])
def test_wrong_column_types_are_refused(tmp_path, columns, fragment):
    write_parquet_split(tmp_path, "train", pa.table(columns))
    dataset_refusal(f"hf:{tmp_path}", fragment)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header that claims width×height pixels, followed by a few bytes of image data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")


@pytest.mark.parametrize("bad, fragments", [
    (_png_claiming(8, 9), ("row 3", "8×9 image", "same size")),
    (_png_claiming(100_000, 100_000), ("row 3", "decompression bomb")),
    (b"this is not an image at all", ("row 3", "not a readable image")),
    (png_bytes(np.zeros((8, 8), np.uint8))[:40], ("row 3", "not a readable image")),
    (None, ("row 3", "no image bytes")),
])
def test_a_broken_image_is_refused_naming_its_row(tmp_path, bad, fragments):
    blobs = [png_bytes(im) for im in small_images(6)]
    blobs[3] = bad
    write_parquet_split(tmp_path / "data", "train", image_table(None, blobs=blobs, struct=False)[0])
    write_parquet_split(tmp_path / "data", "test", image_table(small_images(2))[0])
    dataset_refusal(f"hf:{tmp_path}", *fragments, read=lambda data: data.x_train.stored[:])


@pytest.mark.parametrize("side, fragment", [(5_000, "5,000×5,000 pixels"), (60_000, "decompression bomb")])
def test_a_first_image_claiming_too_many_pixels_is_refused_before_decoding(tmp_path, side, fragment):
    write_parquet_split(tmp_path, "train", image_table(None, blobs=[_png_claiming(side, side)] * 3)[0])
    dataset_refusal(f"hf:{tmp_path}", fragment)


def test_a_row_group_claiming_gigabytes_is_refused_before_reading(tmp_path, monkeypatch):
    import latentlab.core.data.streaming.hf as hf

    write_parquet_split(tmp_path, "train", image_table(small_images(40))[0])
    monkeypatch.setattr(hf, "MAX_GROUP_BYTES", 100)
    dataset_refusal(f"hf:{tmp_path}", "one row group")


def test_hostile_metadata_is_refused(tmp_path):
    table, features = image_table(small_images(10), np.arange(10) % 2, ["a", "b"])
    write_arrow_split(tmp_path / "a", table, features)
    (tmp_path / "a" / "state.json").write_text(json.dumps({"_data_files": [{"filename": "../../etc/passwd"}]}))
    dataset_refusal(f"hf:{tmp_path / 'a'}", "outside its folder")
    (tmp_path / "a" / "state.json").write_text("{" * 100_000)
    dataset_refusal(f"hf:{tmp_path / 'a'}", "not valid JSON")
    write_dataset_dict(tmp_path / "d", {"test": (table, features)})
    dataset_refusal(f"hf:{tmp_path / 'd'}", "no train split")
    wrong = image_table(small_images(10), np.arange(10) % 5, ["a", "b"])
    write_parquet_split(tmp_path / "p", "train", wrong[0])
    dataset_refusal(f"hf:{tmp_path / 'p'}", "label is 4", "names only 2")
    (tmp_path / "empty").mkdir()
    dataset_refusal(f"hf:{tmp_path / 'empty'}", "not a Hugging Face dataset folder")
    dataset_refusal(f"hf:{tmp_path / 'nowhere'}", "does not exist")


def test_damaged_offsets_in_an_arrow_file_are_refused_not_read_out_of_bounds(tmp_path):
    """An IPC stream whose binary offsets point past the data buffer: validated before any read."""
    blobs = [png_bytes(im) for im in small_images(4)]
    sink = io.BytesIO()
    table = pa.table({"image": pa.array(blobs, type=pa.binary())})
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int32).tobytes()
    raw = sink.getvalue()
    assert raw.count(offsets) == 1
    hostile = np.frombuffer(offsets, np.int32).copy()
    hostile[-1] = 10 ** 6                   # the last image ends a megabyte past the data
    (tmp_path / "data-00000-of-00001.arrow").write_bytes(raw.replace(offsets, hostile.tobytes()))
    dataset_refusal(f"hf:{tmp_path}", "damaged")


def test_sixteen_bit_grey_images_are_scaled_not_clipped(tmp_path):
    """As images:DIR reads them: 65535 is white and 40000 a light grey, not white (a plain convert clips)."""
    from PIL import Image

    grey = np.array([[0, 40000], [65535, 257]], np.uint16)
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, format="PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode.startswith("I")
    write_parquet_split(tmp_path, "train", pa.table({"image": pa.array([buf.getvalue()] * 4)}))
    data = load_dataset(f"hf:{tmp_path}")
    x = np.concatenate([data.x_train.stored[np.arange(len(data.x_train))], data.x_test.stored[np.arange(len(data.x_test))]])
    np.testing.assert_array_equal(x[0, 0], [[0, 156], [255, 1]])


def test_a_label_beyond_int64_is_one_sentence_not_a_negative_label(tmp_path):
    labels = pa.array([0, 2**64 - 1], type=pa.uint64())
    write_parquet_split(tmp_path, "train", pa.table({"image": pa.array([b"x", b"y"]), "label": labels}))
    # fragments the file's path (which holds the test's name) cannot supply
    message = dataset_refusal(f"hf:{tmp_path}", "at most 9,223,372,036,854,775,807")
    assert "negative" not in message
