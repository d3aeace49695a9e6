"""Small files that claim a lot: every loader, the trainer's settings and the save path either work
within bounded memory or stop with one sentence, never a traceback or the OOM killer."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hostile_io import dataset_refusal

from latentlab.cli import main
from latentlab.core.data.specs import load_dataset
from latentlab.core.errors import ResourceError
from latentlab.core.models.config import ModelConfig
from latentlab.core.training.budget import check_training_fits, training_bytes, window_refusal


def idx_header(magic: int, *shape: int) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in shape)


def load_in_a_fresh_process(spec: str) -> subprocess.CompletedProcess:
    """Load `spec` in a new interpreter that prints the refusal and its peak-RSS growth in kB (the
    test runner's own peak would hide it)."""
    script = textwrap.dedent(f"""
        import resource
        from latentlab.core.data.specs import load_dataset
        from latentlab.core.errors import DatasetError
        import PIL.Image  # imported before the measurement starts
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            load_dataset({spec!r})
        except DatasetError as exc:
            print("refused:", exc)
        print("growth_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


def write_labels(folder, n):
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_header(2049, n) + bytes(n))


# --- IDX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_header_claiming_a_billion_images_is_refused_before_reading(tmp_path, gz):
    data = idx_header(2051, 10 ** 9, 28, 28) + bytes(1000)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    (tmp_path / name).write_bytes(gzip.compress(data) if gz else data)
    write_labels(tmp_path, 10)
    # Raw: the file is smaller than the claim. Gzipped: the claim cannot fit in memory.
    dataset_refusal(f"mnist:{tmp_path}", "truncated" if not gz else "GB")


def test_idx_gzip_bomb_stops_at_the_claimed_size(tmp_path):
    """10 images claimed, gigabytes of zeros behind them: reading stops one byte past the claim."""
    # A gzip file may hold many members, read as one stream: one member of 1 MiB of zeros, repeated,
    # inflates to 2 GiB from about 2 MB on disk (compressing 2 GiB itself took 9 s of the test).
    zeros = gzip.compress(bytes(1 << 20), compresslevel=9)
    first = gzip.compress(idx_header(2051, 10, 28, 28) + bytes(1 << 20), compresslevel=9)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(first + zeros * 2047)
    write_labels(tmp_path, 10)
    result = load_in_a_fresh_process(f"mnist:{tmp_path}")
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "refused:" in result.stdout and "beyond" in result.stdout
    assert int(result.stdout.split("growth_kb")[1]) < 200_000  # not the 2 GiB the stream inflates to


def test_a_fifo_or_device_is_refused_in_dataset_refusal(tmp_path):
    fifo = tmp_path / "train-images-idx3-ubyte"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    write_labels(tmp_path, 10)
    dataset_refusal(f"mnist:{tmp_path}")
    dataset_refusal("npz:/dev/zero", "not a file")
    os.mkfifo(tmp_path / "x.npz")
    dataset_refusal(f"npz:{tmp_path / 'x.npz'}", "not a file")


# --- npz ---------------------------------------------------------------------------------------


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_npz_object_arrays_are_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    arr = np.empty(2, dtype=object)
    arr[0] = Payload(marker)
    np.savez(tmp_path / "evil.npz", x=np.zeros((4, 8, 8)), y=arr)
    dataset_refusal(f"npz:{tmp_path / 'evil.npz'}", "pickled")
    assert not marker.exists()
    raw = pickle.dumps(Payload(marker))
    (tmp_path / "p.npz").write_bytes(raw)
    dataset_refusal(f"npz:{tmp_path / 'p.npz'}")
    assert not marker.exists()


def test_npz_whose_header_claims_terabytes_is_refused_before_loading(tmp_path):
    # An .npy header is plain text: claim 10^7 images of 1000×1000 and give no data.
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (10000000, 1000, 1000), }"
    header += " " * (118 - len(header)) + "\n"
    (tmp_path / "big.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    big = tmp_path / "big.npz"
    import zipfile

    with zipfile.ZipFile(big, "w") as zf:
        zf.write(tmp_path / "big.npy", "x.npy")
    message = dataset_refusal(f"npz:{big}", "GB")
    assert "machine has" in message


@pytest.mark.parametrize("arrays, fragment", [
    (dict(x=np.zeros((0, 8, 8))), "empty"),
    (dict(x=np.zeros((1, 8, 8))), "at least 2"),
    (dict(x=np.full((4, 8, 8), np.nan)), "NaN"),
    (dict(x=np.zeros((4, 8, 8)), y=np.zeros(3, dtype=int)), "3 labels for 4"),
    (dict(x=np.zeros((2, 2, 3, 8, 8))), "shape"),
    (dict(x=np.zeros((4, 8, 8)), x_test=np.zeros((2, 9, 9))), "x_test"),
], ids=["none", "one", "nan", "labels", "5d", "test_shape"])
def test_npz_sweep(tmp_path, arrays, fragment):
    np.savez(tmp_path / "d.npz", **arrays)
    dataset_refusal(f"npz:{tmp_path / 'd.npz'}", fragment)


def test_an_npz_of_a_few_huge_images_is_refused_before_building_the_model(tmp_path, capsys):
    np.savez(tmp_path / "big.npz", x=np.zeros((4, 3, 1024, 1024), dtype=np.uint8))
    code = main(["train", "--dataset", f"npz:{tmp_path / 'big.npz'}", "--out", str(tmp_path / "m.safetensors"),
                 "--hidden", "65536,4096", "--epochs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "needs about" in err[0] and "GB" in err[0], err
    assert not (tmp_path / "m.safetensors").exists()


# --- image folders -------------------------------------------------------------------------------


def test_image_folder_sweep(tmp_path):
    from PIL import Image

    a = tmp_path / "mixed" / "a"
    a.mkdir(parents=True)
    Image.new("L", (8, 8)).save(a / "1.png")
    Image.new("L", (9, 8)).save(a / "2.png")
    dataset_refusal(f"images:{tmp_path / 'mixed'}", "same size")

    b = tmp_path / "corrupt" / "a"
    b.mkdir(parents=True)
    Image.new("L", (8, 8)).save(b / "1.png")
    (b / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 10)
    dataset_refusal(f"images:{tmp_path / 'corrupt'}", "2.png")


def test_an_image_bomb_is_refused_before_decoding(tmp_path):
    from PIL import Image

    c = tmp_path / "bomb" / "a"
    c.mkdir(parents=True)
    Image.new("1", (6_000, 6_000)).save(c / "big.png")  # 36 megapixels in a few kB, under Pillow's own limit
    Image.new("1", (8, 8)).save(c / "small.png")
    result = load_in_a_fresh_process(f"images:{tmp_path / 'bomb'}")
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr, result.stderr[-2000:]
    assert "refused:" in result.stdout and "6,000×6,000" in result.stdout
    assert int(result.stdout.split("growth_kb")[1]) < 50_000  # 108 MB of RGB if it were decoded


def test_a_walk_of_a_huge_tree_ends_in_dataset_refusal(tmp_path, monkeypatch):
    import latentlab.core.data.image_folder as image_folder

    monkeypatch.setattr(image_folder, "MAX_FOLDER_ENTRIES", 20)
    d = tmp_path / "tree" / "a"
    d.mkdir(parents=True)
    for i in range(30):
        (d / f"{i}.txt").write_text("x")
    dataset_refusal(f"images:{tmp_path / 'tree'}", "more than 20")


# --- training parameters and the save path -------------------------------------------------------


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("flag, value", [
    ("--epochs", "0"), ("--batch-size", "0"), ("--latent-dim", "0"), ("--beta", "-1"), ("--lr", "nan"),
    ("--lr", "inf"), ("--lr", "0"), ("--hidden", ""), ("--hidden", "99999999999999999999"), ("--hidden", "1,-2"),
    ("--seed", "-1"), ("--seed", "1" * 5000), ("--free-bits", "nan"), ("--epochs", "100000000000000000000"),
    ("--latent-dim", "x" * 100_000),
])
def test_training_parameters_are_range_checked_before_torch(tmp_path, capsys, flag, value):
    code, _, err = run(capsys, "train", "--dataset", "digits", "--out", str(tmp_path / "m.safetensors"), flag, value)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("latentlab: error:") and flag in lines[0], err[:500]
    assert len(lines[0]) <= 320
    assert not (tmp_path / "m.safetensors").exists()


def test_eval_iw_samples_is_range_checked(capsys):
    from latentlab.core.files.bundled import default_checkpoint

    code, _, err = run(capsys, "eval", str(default_checkpoint()), "--iw-samples", "-1")
    assert code == 2 and len(err.strip().splitlines()) == 1


def save_problem(tmp_path, capsys, out) -> str:
    code, _, err = run(capsys, "train", "--dataset", "digits", "--out", str(out), "--epochs", "1", "--hidden", "8")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_save_path_problems_are_one_sentence_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert "file is in the way" in save_problem(tmp_path, capsys, tmp_path / "file" / "m.safetensors")
    assert "Not a directory" in save_problem(tmp_path, capsys, tmp_path / "file" / "sub" / "m.safetensors")
    (tmp_path / "dir.safetensors").mkdir()
    assert "is a folder" in save_problem(tmp_path, capsys, tmp_path / "dir.safetensors")
    assert "Cannot create" in save_problem(tmp_path, capsys, "/proc/latentlab-test/m.safetensors")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_a_read_only_folder_is_dataset_refusal(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert "not writable" in save_problem(tmp_path, capsys, ro / "m.safetensors")
        assert "Cannot create" in save_problem(tmp_path, capsys, ro / "sub" / "m.safetensors")
    finally:
        ro.chmod(0o700)


def test_saved_checkpoints_get_the_umask_and_keep_an_old_mode(tmp_path):
    from latentlab.core.files.checkpoint import save_checkpoint
    from latentlab.core.models.vae import build_model

    model = build_model(ModelConfig(image_shape=(1, 4, 4), hidden=(2,)), seed=0)
    old = os.umask(0o027)
    try:
        path = save_checkpoint(tmp_path / "m.safetensors", model, dataset="digits")
        assert (path.stat().st_mode & 0o777) == 0o640
        path.chmod(0o604)
        save_checkpoint(path, model, dataset="digits")
        assert (path.stat().st_mode & 0o777) == 0o604
    finally:
        os.umask(old)


# --- memory estimates ----------------------------------------------------------------------------


def test_a_model_that_cannot_fit_is_refused_in_dataset_refusal(monkeypatch):
    import latentlab.core.training.budget as budget

    cfg = ModelConfig(image_shape=(3, 64, 64), latent_dim=16, hidden=(100_000, 50_000))
    monkeypatch.setattr(budget, "available_bytes", lambda device="cpu": 24 * 1024 ** 3)
    with pytest.raises(ResourceError) as info:
        check_training_fits(cfg, 1000, 128)
    assert "needs about" in str(info.value) and "24.0 GB" in str(info.value)
    small = ModelConfig(image_shape=(1, 28, 28), latent_dim=2)
    check_training_fits(small, 70_000, 128)  # MNIST's default model fits
    assert training_bytes(small, 70_000, 128) < 1024 ** 3


def test_the_estimate_covers_what_training_really_allocates():
    """Peak RSS growth of a real (small) run stays below the estimate."""
    script = textwrap.dedent("""
        import resource, torch
        from latentlab.core.training.budget import training_bytes
        from latentlab.core.models.config import ModelConfig, TrainConfig
        from latentlab.core.data.specs import load_dataset
        from latentlab.core.models.vae import build_model
        from latentlab.core.training.loop import train
        torch.set_num_threads(1)
        data = load_dataset("digits")
        cfg = ModelConfig(image_shape=data.image_shape, latent_dim=8, hidden=(2048, 2048))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        model = build_model(cfg)
        for _ in train(model, data, TrainConfig(epochs=1, batch_size=512, device="cpu", scatter_points=0)):
            pass
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        print(json.dumps([growth, training_bytes(cfg, 1797, 512)]))
    """).replace("import resource, torch", "import json, resource, torch")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    growth, estimate = json.loads(result.stdout)
    assert growth < estimate, (growth, estimate)


def test_window_refuses_a_huge_latent_space_in_dataset_refusal():
    assert window_refusal(ModelConfig(image_shape=(1, 8, 8), latent_dim=2), 1797) is None
    message = window_refusal(ModelConfig(image_shape=(1, 8, 8), latent_dim=100_000), 1797)
    assert message and "100,000" in message and "\n" not in message


# --- saved settings ------------------------------------------------------------------------------


def test_saved_settings_are_validated_value_by_value(tmp_path):
    from latentlab.core.files.settings import MAX_RECENT, usable_recent, validate_settings

    good = tmp_path / "m.safetensors"
    good.write_bytes(b"x")
    values, problems = validate_settings({
        "epochs": str(10 ** 20), "lr": "nan", "warm_start": "maybe", "geometry": "garbage", "recent": 3})
    assert values == {} and len(problems) == 5
    values, problems = validate_settings({"epochs": "40", "lr": "0.002", "warm_start": "false",
                                          "geometry": b"\x01\xd9", "recent": [str(good)] * 20 + [5]})
    assert problems == [] and values["epochs"] == 40 and values["lr"] == 0.002 and values["warm_start"] is False
    assert values["geometry"] == b"\x01\xd9" and len(values["recent"]) == MAX_RECENT
    assert usable_recent([str(good), str(tmp_path), "/dev/zero", "/nope", "x" * 10_000]) == [str(good)]
    assert usable_recent(str(good)) == [str(good)]


def test_a_long_image_folder_load_can_be_cancelled(tmp_path):
    from PIL import Image

    from latentlab.core.errors import Cancelled

    d = tmp_path / "imgs" / "a"
    d.mkdir(parents=True)
    for i in range(600):
        Image.new("L", (4, 4), i % 256).save(d / f"{i}.png")
    polls = []

    def stop():
        polls.append(1)
        return len(polls) >= 2  # the second poll, after 256 images

    with pytest.raises(Cancelled):
        load_dataset(f"images:{tmp_path / 'imgs'}", should_stop=stop)
    assert len(polls) == 2
    assert len(load_dataset(f"images:{tmp_path / 'imgs'}", should_stop=lambda: False).x_train) == 480


@pytest.mark.parametrize("named, opens, note", [
    ("digits", True, None),
    ("images:/", True, "top-level"),
    ("npz:/dev/zero", True, "not a regular file"),
    ("npz:/nope/x.npz", True, "cannot be found"),
    ("", True, "does not name"),
    ("sprites", True, "shape"),
])
def test_a_checkpoints_dataset_is_a_suggestion(named, opens, note):
    from latentlab.core.data.specs import open_checkpoint_dataset

    data, why = open_checkpoint_dataset(named, (1, 8, 8))
    assert (data is not None) == opens and data.spec == "digits"
    assert (why is None) == (note is None) and (note is None or note in why)
    assert why is None or ("\n" not in why and len(why) <= 300)


def test_no_data_when_the_default_does_not_fit():
    from latentlab.core.data.specs import open_checkpoint_dataset

    data, why = open_checkpoint_dataset("images:/", (3, 32, 32))
    assert data is None and "without data" in why


def test_8_bit_data_counts_one_byte_a_pixel_in_the_training_budget(monkeypatch, tmp_path):
    """950,000 MNIST-sized uint8 images (745 MB) fit where their float32 copy (2.9 GB) would not."""
    import latentlab.core.training.budget as budget

    cfg = ModelConfig(image_shape=(1, 28, 28), latent_dim=20, hidden=(400,))
    n = 950_000
    assert training_bytes(cfg, n, 128) - training_bytes(cfg, n, 128, pixel_bytes=1) == 3 * 784 * n
    monkeypatch.setattr(budget, "available_bytes", lambda device="cpu": 2 * 1024 ** 3)
    with pytest.raises(ResourceError):
        check_training_fits(cfg, n, 128)
    check_training_fits(cfg, n, 128, pixel_bytes=1)
    from latentlab.core.data.dataset import Dataset

    x = np.zeros((10, 1, 28, 28), np.uint8)
    y = np.zeros(10, np.int64)
    assert Dataset("s", "s", x, y, x, y, ("a",)).pixel_bytes == 1
    assert Dataset("s", "s", x.astype(np.float32), y, x.astype(np.float32), y, ("a",)).pixel_bytes == 4


@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 15, 13)])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_activation_bytes_scale_with_the_batch_as_a_direct_count_does(arch, shape):
    """The budget counts one image's activations from the model's layers and scales them (cached per
    config, since Train checks it on the GUI thread): equal to counting every module output of a
    whole batch run on the meta device, odd image sizes included."""
    import torch

    from latentlab.core.models.vae import VAE
    from latentlab.core.training.budget import activation_bytes

    cfg = ModelConfig(image_shape=shape, latent_dim=3, hidden=(32, 16), arch=arch,
                      **({"conv_channels": (4, 8)} if arch == "conv" else {}))
    batch, total = 37, [0]

    def count(_m, _i, out):
        total[0] += sum(t.numel() * t.element_size() for t in (out if isinstance(out, tuple) else (out,))
                        if isinstance(t, torch.Tensor))

    with torch.device("meta"):
        model = VAE(cfg)
        for m in model.modules():
            if not list(m.children()):
                m.register_forward_hook(count)
        mu, _ = model.encode(torch.empty((batch, *cfg.image_shape)))
        model.decode(mu)
    assert activation_bytes(cfg, batch) == total[0] + 4 * batch * (cfg.latent_dim + int(np.prod(shape))) * 4
