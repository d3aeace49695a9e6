"""8-bit images stay uint8 in memory and reach every consumer as float32 in [0, 1], batch by batch."""

import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from latentlab.core.data.pixels import Pixels, batch_tensor, unit_tensor
from latentlab.core.data.specs import Dataset, load_dataset
from latentlab.core.inference.analysis import encode, evaluate
from latentlab.core.models.config import ModelConfig, TrainConfig
from latentlab.core.models.vae import build_model
from latentlab.core.training.loop import train


def bytes_images(n, h=6, w=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


def as_floats(raw):
    """The values every loader produced before: float32 bytes divided by 255 in float32."""
    out = raw.astype(np.float32)
    out /= 255.0
    return out


def write_idx(folder, x):
    n, h, w = x.shape
    (folder / "train-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, h, w) + x.tobytes())
    (folder / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + bytes(n))


def test_every_byte_value_reads_back_as_before():
    raw = np.arange(256, dtype=np.uint8).reshape(4, 1, 8, 8)
    p = Pixels(raw)
    assert p.stored is raw and p.dtype == np.float32 and p.shape == raw.shape and len(p) == 4
    np.testing.assert_array_equal(p[:], as_floats(raw))
    np.testing.assert_array_equal(p[[3, 1]], as_floats(raw[[3, 1]]))
    np.testing.assert_array_equal(unit_tensor(torch.from_numpy(raw)).numpy(), as_floats(raw))
    np.testing.assert_array_equal(batch_tensor(p, 1, 3, "cpu").numpy(), as_floats(raw[1:3]))
    np.testing.assert_array_equal(np.asarray(p), as_floats(raw))


@pytest.mark.parametrize("kind", ["idx", "npz", "images"])
def test_an_8_bit_source_stays_uint8_and_batches_come_out_float(tmp_path, kind):
    raw = bytes_images(20)
    if kind == "idx":
        write_idx(tmp_path, raw)
        spec = f"mnist:{tmp_path}"
    elif kind == "npz":
        np.savez(tmp_path / "d.npz", x=raw[:15], x_test=raw[15:])
        spec = f"npz:{tmp_path / 'd.npz'}"
    else:
        for i, img in enumerate(raw):
            (tmp_path / "c" / "a").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(tmp_path / "c" / "a" / f"{i:02d}.png")
        spec = f"images:{tmp_path / 'c'}"
    ds = load_dataset(spec)
    for pixels in (ds.x_train, ds.x_test):
        assert pixels.stored.dtype == np.uint8 and pixels.stored.nbytes == len(pixels) * 30
        batch = pixels[:]
        assert batch.dtype == np.float32 and 0 <= batch.min() and batch.max() <= 1
    # Every image comes back exactly as the float32 loaders made it, whichever split it landed in.
    shown = np.concatenate([ds.x_train[:], ds.x_test[:]])[:, 0]
    expected = as_floats(raw)
    assert sorted(map(bytes, (shown * 255).round().astype(np.uint8))) == sorted(map(bytes, raw))
    for img in shown:
        assert any(np.array_equal(img, e) for e in expected)


def test_integer_and_float_arrays_keep_their_meaning(tmp_path):
    binary = np.random.default_rng(1).integers(0, 2, (10, 4, 4))          # int64 0/1: read as 0..1
    np.savez(tmp_path / "b.npz", x=binary)
    ds = load_dataset(f"npz:{tmp_path / 'b.npz'}")
    assert ds.x_train.stored.dtype == np.uint8
    assert set(np.unique(np.concatenate([ds.x_train[:], ds.x_test[:]]))) == {0.0, 1.0}
    grey = np.random.default_rng(2).random((10, 4, 4))                     # floats stay float32
    np.savez(tmp_path / "f.npz", x=grey, x_test=grey)
    ds = load_dataset(f"npz:{tmp_path / 'f.npz'}")
    assert ds.x_test.stored.dtype == np.float32
    np.testing.assert_array_equal(ds.x_test[:][:, 0], grey.astype(np.float32))


def test_training_on_uint8_equals_training_on_the_same_images_as_float32():
    raw = bytes_images(300, 8, 8)[:, None]
    y = np.zeros(300, np.int64)

    def run(x_train, x_test):
        data = Dataset("t", "t", x_train, y[:250], x_test, y[250:], ("0",))
        model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=2, hidden=(16,)), seed=0)
        # 250 rows at batch 64: three full batches and a short one; a live subset and a test set.
        snaps = list(train(model, data, TrainConfig(epochs=2, batch_size=64, device="cpu", scatter_points=50)))
        return model, snaps[-1]

    m8, s8 = run(raw[:250], raw[250:])
    m32, s32 = run(as_floats(raw[:250]), as_floats(raw[250:]))
    for (name, a), b in zip(m8.state_dict().items(), m32.state_dict().values()):
        assert torch.equal(a, b), name
    def numbers(history):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history]

    assert numbers(s8.history) == numbers(s32.history) and np.array_equal(s8.latent, s32.latent)
    e8, e32 = evaluate(m8, Pixels(raw[250:])), evaluate(m8, as_floats(raw[250:]))
    assert e8 == e32
    np.testing.assert_array_equal(encode(m8, Pixels(raw))[0], encode(m8, as_floats(raw))[0])


def test_loading_and_encoding_many_images_never_holds_a_float_copy(tmp_path):
    """Peak-RSS growth of loading 120,000 uint8 28×28 images (94 MB) and encoding them all, in a fresh
    process: well under the 376 MB that one float32 copy of them would take (it was 500 MB and more)."""
    n = 120_000
    x = np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "big.npz", x=x[:100_000], x_test=x[100_000:])
    float_bytes = n * 784 * 4
    script = textwrap.dedent(f"""
        import resource
        import numpy as np, torch
        from latentlab.core.inference.analysis import active_units, encode, mean_kl_per_dim
        from latentlab.core.models.config import ModelConfig
        from latentlab.core.data.specs import load_dataset
        from latentlab.core.tables.latent_table import encode_table
        from latentlab.core.models.vae import build_model
        model = build_model(ModelConfig(image_shape=(1, 28, 28), latent_dim=2), seed=0).eval()
        encode(model, np.zeros((8192, 1, 28, 28), np.uint8))   # warm up torch's allocators and threads
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        data = load_dataset({f"npz:{tmp_path / 'big.npz'}"!r})
        table = encode_table(model, data)
        mean_kl_per_dim(table.mu, table.logvar), active_units(table.mu)
        print("stored", data.x_train.stored.dtype, len(table))
        print("growth_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "stored uint8 120000" in out.stdout
    growth = int(out.stdout.split("growth_kb")[1]) * 1024
    assert growth < 0.6 * float_bytes, (growth, float_bytes)
