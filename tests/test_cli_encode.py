"""`latentlab encode` and the latent table it writes, on every dataset kind, round-tripped."""

import gzip

import numpy as np
import pytest
from PIL import Image

from latentlab.cli import main
from latentlab.core.data.specs import load_dataset
from latentlab.core.errors import Cancelled, LatentLabError
from latentlab.core.files.checkpoint import load_checkpoint, save_checkpoint
from latentlab.core.inference.analysis import encode
from latentlab.core.models.config import ModelConfig
from latentlab.core.models.vae import build_model
from latentlab.core.tables.latent_table import encode_table, write_table
from latentlab.core.tables.table_reader import read_table


def idx_folder(folder, hw=(6, 5)):
    rng = np.random.default_rng(0)
    for part, n in (("train", 30), ("t10k", 12)):
        x = rng.integers(0, 256, size=(n, *hw), dtype=np.uint8)
        y = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, array in (("images-idx3", x), ("labels-idx1", y)):
            header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
            (folder / f"{part}-{kind}-ubyte.gz").write_bytes(gzip.compress(header + array.tobytes()))
    return f"mnist:{folder}"


def images_folder(folder):
    rng = np.random.default_rng(1)
    for name in ("cat", "dog", "eel"):
        (folder / name).mkdir(parents=True)
        for i in range(7):
            Image.fromarray(rng.integers(0, 256, (5, 4), dtype=np.uint8), "L").save(folder / name / f"{i}.png")
    return f"images:{folder}"


def npz_file(path):
    rng = np.random.default_rng(2)
    np.savez(path, x=rng.uniform(0, 1, (25, 3, 4, 4)).astype(np.float32), y=rng.integers(0, 4, 25),
             x_test=rng.uniform(0, 1, (9, 3, 4, 4)).astype(np.float32), y_test=rng.integers(0, 4, 9))
    return f"npz:{path}"


def hf_folder(folder):
    from hf_folders import image_table, small_images, write_dataset_dict

    x = small_images(29, size=6, seed=3)
    write_dataset_dict(folder, {"train": image_table(x[:20], np.arange(20) % 3, ["a", "b", "c"]),
                                "test": image_table(x[20:], np.arange(9) % 3, ["a", "b", "c"])})
    return f"hf:{folder}"


DATASETS = {"digits": lambda tmp: "digits", "sprites": lambda tmp: "sprites",
            "npz": lambda tmp: npz_file(tmp / "d.npz"), "idx": lambda tmp: idx_folder(tmp),
            "images": lambda tmp: images_folder(tmp / "imgs"), "hf": lambda tmp: hf_folder(tmp / "hf")}


def checkpoint_for(tmp_path, spec, k=3):
    data = load_dataset(spec)
    model = build_model(ModelConfig(image_shape=data.image_shape, latent_dim=k, hidden=(16,)), seed=0)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, dataset=spec)
    return path, data


@pytest.mark.parametrize("kind", sorted(DATASETS))
@pytest.mark.parametrize("suffix", [".csv", ".npz", ".parquet"])
def test_encode_writes_every_image_of_every_dataset_kind(tmp_path, capsys, kind, suffix):
    spec = DATASETS[kind](tmp_path)
    ckpt_path, data = checkpoint_for(tmp_path, spec)
    out = tmp_path / f"latents{suffix}"
    assert main(["encode", str(ckpt_path), "--dataset", spec, "--out", str(out), "--device", "cpu",
                 "--batch-size", "7"]) == 0
    assert f"wrote {len(data.x_train) + len(data.x_test):,} rows" in capsys.readouterr().err
    table = read_table(out)
    model = load_checkpoint(ckpt_path).model
    for split in ("train", "test"):
        rows = table.split == split
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        mu, logvar = encode(model, x)
        np.testing.assert_array_equal(table.index[rows], np.arange(len(x)))
        np.testing.assert_array_equal(table.label[rows], y)
        np.testing.assert_allclose(table.mu[rows], mu, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(table.logvar[rows], logvar, rtol=1e-6, atol=1e-6)
    assert table.mu.shape[1] == 3
    if suffix == ".csv":
        header = out.read_text().splitlines()[0]
        assert header == "index,split,label,mu_0,mu_1,mu_2,logvar_0,logvar_1,logvar_2"
    elif suffix == ".npz":
        assert table.label_names == tuple(data.label_names)
        with np.load(out, allow_pickle=False) as z:   # plain arrays: no pickle needed to read any of it
            assert all(z[key].dtype != object for key in z.files)
    else:
        import pyarrow.parquet as pq

        assert table.label_names == tuple(data.label_names)
        assert pq.read_schema(out).names == ["index", "split", "label", "mu_0", "mu_1", "mu_2",
                                             "logvar_0", "logvar_1", "logvar_2"]


def test_encode_defaults_to_the_checkpoints_dataset(tmp_path, capsys):
    ckpt_path, data = checkpoint_for(tmp_path, "digits", k=2)
    out = tmp_path / "t.npz"
    assert main(["encode", str(ckpt_path), "--out", str(out)]) == 0
    assert len(read_table(out)) == len(data.x_train) + len(data.x_test)


@pytest.mark.parametrize("args, words", [
    (["--out", "{tmp}/t.txt"], ["--out", ".csv, .npz or .parquet"]),
    (["--out", "{tmp}/t.csv", "--dataset", "sprites"], ["expects images of shape", "sprites"]),
    (["--out", "{tmp}/t.csv", "--dataset", "nonsense"], ["Unknown dataset"]),
    (["--out", "{tmp}/missing-folder/t.csv"], ["Cannot write"]),
])
def test_encode_errors_are_one_sentence_and_exit_2(tmp_path, capsys, args, words):
    ckpt_path, _ = checkpoint_for(tmp_path, "digits", k=2)
    code = main(["encode", str(ckpt_path), *(a.format(tmp=tmp_path) for a in args)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("latentlab: error: ") and "Traceback" not in "".join(err)
    assert all(w in err[-1] for w in words), err


def test_encode_of_a_missing_checkpoint_exits_2(tmp_path, capsys):
    assert main(["encode", str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "t.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_encode_table_reports_progress_and_stops_when_asked():
    data = load_dataset("digits")
    model = build_model(ModelConfig(image_shape=data.image_shape, latent_dim=2, hidden=(8,)), seed=0)
    seen = []
    table = encode_table(model, data, batch=500, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 4   # 1438 train (3 batches) + 359 test
    assert len(table) == len(data.x_train) + len(data.x_test)
    calls = []
    with pytest.raises(Cancelled):
        encode_table(model, data, batch=500, progress=calls.append, should_stop=lambda: len(calls) >= 2)
    assert len(calls) == 2


def test_written_table_replaces_atomically_and_reading_validates(tmp_path):
    data = load_dataset("digits")
    model = build_model(ModelConfig(image_shape=data.image_shape, latent_dim=2, hidden=(8,)), seed=0)
    table = encode_table(model, data)
    out = tmp_path / "t.csv"
    out.write_text("old")
    write_table(out, table)
    assert len(read_table(out)) == len(table)
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]     # no temporary file left beside it
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(LatentLabError, match="not a latent table"):
        read_table(bad)
    np.savez(tmp_path / "bad.npz", mu=np.zeros((2, 2)))
    with pytest.raises(LatentLabError, match="has no index"):
        read_table(tmp_path / "bad.npz")
    hostile = tmp_path / "hostile.npz"
    with open(hostile, "wb") as f:
        np.savez(f, index=np.array([object()], dtype=object))
    with pytest.raises(LatentLabError):
        read_table(hostile)
