"""Dataset specs and loaders: shapes, determinism, and a clear DatasetError for every bad input."""

from __future__ import annotations

import gzip
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from latentlab.core.data.specs import DATASET_KINDS, Dataset, describe_specs, load_dataset
from latentlab.core.errors import DatasetError


def check_dataset(ds: Dataset, n_classes: int | None = None) -> None:
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        stored = x.stored
        assert stored.dtype in (np.uint8, np.float32) and stored.ndim == 4 and stored.flags.c_contiguous
        assert stored.flags.writeable and y.flags.writeable  # torch.from_numpy warns on read-only arrays
        assert x.shape[1:] == ds.image_shape and ds.image_shape[0] in (1, 3)
        images = x[:]
        assert images.dtype == np.float32 and 0.0 <= images.min() and images.max() <= 1.0
        assert y.dtype == np.int64 and y.shape == (len(x),)
        assert y.min() >= 0 and y.max() < len(ds.label_names)
    assert len(ds.x_test) > 0
    if n_classes is not None:
        assert len(ds.label_names) == n_classes


# --- embedded ---------------------------------------------------------------------------------


def test_digits():
    ds = load_dataset("digits")
    check_dataset(ds, 10)
    assert ds.image_shape == (1, 8, 8)
    assert (len(ds.x_train), len(ds.x_test)) == (1438, 359)
    assert ds.label_names == tuple("0123456789") and ds.name == "digits" and ds.spec == "digits"
    assert ds.x_train[:].max() == 1.0
    again = load_dataset("digits", seed=5)  # the seed never changes a split
    np.testing.assert_array_equal(ds.x_test, again.x_test)
    np.testing.assert_array_equal(ds.y_train, again.y_train)


@pytest.fixture(scope="module")
def sprites() -> Dataset:
    return load_dataset("sprites", seed=0)


def test_sprites(sprites):
    ds = sprites
    check_dataset(ds, 3)
    assert ds.image_shape == (1, 32, 32)
    assert set(np.unique(ds.y_train)) == {0, 1, 2}
    assert not ds.continuous
    for pixels, factors in ((ds.x_train, ds.factors_train), (ds.x_test, ds.factors_test)):
        x = pixels[:]
        assert set(factors) == {"shape", "scale", "rotation", "x", "y"}
        for values in factors.values():
            assert values.dtype == np.float32 and values.shape == (len(x),)
        # Every sprite has ink, and none is cut off by the frame.
        assert (x.reshape(len(x), -1).max(axis=1) == 1.0).all()
        assert x[:, :, [0, -1], :].max() == 0 and x[:, :, :, [0, -1]].max() == 0
    np.testing.assert_array_equal(ds.factors_train["shape"], ds.y_train)
    assert len(np.unique(ds.factors_train["rotation"])) > 4
    assert len(np.unique(ds.factors_train["x"])) > 4


def test_sprites_follow_their_factors(sprites):
    ds = sprites
    f, x = ds.factors_train, ds.x_train[:, 0]
    ink = x.sum(axis=(1, 2))
    rows = np.arange(32)
    centre_y = (x.sum(axis=2) * rows).sum(axis=1) / ink
    centre_x = (x.sum(axis=1) * rows).sum(axis=1) / ink
    assert np.corrcoef(centre_x, f["x"])[0, 1] > 0.95
    assert np.corrcoef(centre_y, f["y"])[0, 1] > 0.95
    for shape in range(3):  # bigger scale, more ink
        m = f["shape"] == shape
        assert np.corrcoef(ink[m], f["scale"][m])[0, 1] > 0.9


def test_sprites_deterministic_per_seed(sprites):
    same = load_dataset("sprites", seed=0)
    np.testing.assert_array_equal(sprites.x_train, same.x_train)
    np.testing.assert_array_equal(sprites.factors_test["rotation"], same.factors_test["rotation"])
    other = load_dataset("sprites", seed=1)
    assert not np.array_equal(sprites.x_train, other.x_train)


# --- IDX --------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def write_idx(folder: Path, part: str, n: int, *, gz=False, seed=0, hw=(6, 5)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, *hw), dtype=np.uint8)
    y = rng.integers(0, 10, size=n, dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for kind, array in (("images-idx3", x), ("labels-idx1", y)):
        data = idx_bytes(array)
        name = f"{part}-{kind}-ubyte"
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return x, y


@pytest.mark.parametrize("kind, sub", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
@pytest.mark.parametrize("layout", ["flat", "torchvision"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_train_and_test(tmp_path, kind, sub, layout, gz):
    folder = tmp_path if layout == "flat" else tmp_path / sub / "raw"
    x_tr, y_tr = write_idx(folder, "train", 30, gz=gz, seed=1)
    x_te, y_te = write_idx(folder, "t10k", 12, gz=gz, seed=2)
    ds = load_dataset(f"{kind}:{tmp_path}")
    check_dataset(ds, 10)
    assert ds.image_shape == (1, 6, 5)
    np.testing.assert_allclose(ds.x_train[:, 0], x_tr / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.x_test[:, 0], x_te / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_train, y_tr)
    np.testing.assert_array_equal(ds.y_test, y_te)


def test_idx_label_names(tmp_path):
    write_idx(tmp_path, "train", 10)
    assert load_dataset(f"fashion-mnist:{tmp_path}").label_names[9] == "Ankle boot"
    assert load_dataset(f"kmnist:{tmp_path}").label_names[:2] == ("o", "ki")
    assert load_dataset(f"MNIST:{tmp_path}").name == "MNIST"


@pytest.mark.parametrize("part", ["train", "t10k"])
def test_idx_single_pair_is_split(tmp_path, part):
    x, y = write_idx(tmp_path, part, 50)
    ds = load_dataset(f"mnist:{tmp_path}")
    check_dataset(ds, 10)
    assert (len(ds.x_train), len(ds.x_test)) == (40, 10)
    # The split is a fixed permutation of all examples, the same every time.
    both = np.concatenate([ds.x_train, ds.x_test])[:, 0]
    assert sorted(map(bytes, (both * 255).round().astype(np.uint8))) == sorted(map(bytes, x))
    np.testing.assert_array_equal(ds.y_test, load_dataset(f"mnist:{tmp_path}").y_test)


def test_idx_mnist_sized_loads(tmp_path):
    write_idx(tmp_path, "train", 6000, gz=True, hw=(28, 28))
    write_idx(tmp_path, "t10k", 1000, hw=(28, 28))
    ds = load_dataset(f"mnist:{tmp_path}")
    assert ds.x_train.shape == (6000, 1, 28, 28)


def expect_error(spec: str, *fragments: str) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(spec)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message
    return message


def test_idx_wrong_magic(tmp_path):
    write_idx(tmp_path, "train", 10)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((10, 6, 5)), magic=1234))
    expect_error(f"mnist:{tmp_path}", "train-images-idx3-ubyte", "magic number 1234", "2051")


def test_idx_labels_and_images_swapped(tmp_path):
    write_idx(tmp_path, "train", 10)
    images = tmp_path / "train-images-idx3-ubyte"
    labels = tmp_path / "train-labels-idx1-ubyte"
    data = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(data)
    expect_error(f"mnist:{tmp_path}", "magic number 2049")


def test_idx_truncated(tmp_path):
    write_idx(tmp_path, "train", 10)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    expect_error(f"mnist:{tmp_path}", "truncated", "316", "100")
    path.write_bytes(path.read_bytes()[:10])
    expect_error(f"mnist:{tmp_path}", "truncated")


def test_idx_trailing_bytes(tmp_path):
    write_idx(tmp_path, "train", 10)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"xx")
    expect_error(f"mnist:{tmp_path}", "train-labels-idx1-ubyte", "2 bytes beyond")


def test_idx_count_mismatch(tmp_path):
    write_idx(tmp_path, "train", 10)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(9)))
    expect_error(f"mnist:{tmp_path}", "10 images", "9 labels")


def test_idx_label_out_of_range(tmp_path):
    write_idx(tmp_path, "train", 10)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(10, 10)))
    expect_error(f"mnist:{tmp_path}", "label 10")


def test_idx_missing_labels_file(tmp_path):
    write_idx(tmp_path, "train", 10)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    expect_error(f"mnist:{tmp_path}", "train-labels-idx1-ubyte")


def test_idx_shape_mismatch_between_train_and_test(tmp_path):
    write_idx(tmp_path, "train", 10, hw=(6, 5))
    write_idx(tmp_path, "t10k", 10, hw=(5, 5))
    expect_error(f"mnist:{tmp_path}", "5×6", "5×5")


def test_idx_missing_folder_and_files(tmp_path):
    expect_error(f"mnist:{tmp_path / 'nowhere'}", "does not exist")
    expect_error(f"kmnist:{tmp_path}", "No KMNIST files found", str(tmp_path), "KMNIST/raw")
    (tmp_path / "file").write_text("x")
    expect_error(f"mnist:{tmp_path / 'file'}", "not a folder")


def test_idx_corrupt_gzip(tmp_path):
    write_idx(tmp_path, "train", 10, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    expect_error(f"mnist:{tmp_path}", "gzip", "train-images-idx3-ubyte.gz")
    path.write_bytes(b"not gzip at all")
    expect_error(f"mnist:{tmp_path}", "gzip")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=400),
    which=st.sampled_from(["images", "labels"]),
    gz=st.booleans(),
    valid_magic=st.booleans(),
)
def test_idx_random_bytes_never_crash(data, which, gz, valid_magic):
    if valid_magic:  # get past the magic number check to reach the header and size checks
        data = (2051 if which == "images" else 2049).to_bytes(4, "big") + data
    if gz:
        data = gzip.compress(data) if valid_magic else data
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_idx(folder, "train", 4, hw=(3, 3))
        path = folder / f"train-{which}-idx{3 if which == 'images' else 1}-ubyte"
        path.unlink()
        if gz:  # random bytes as a .gz file, or random IDX content inside valid gzip
            path.with_name(path.name + ".gz").write_bytes(data)
        else:
            path.write_bytes(data)
        try:
            load_dataset(f"mnist:{folder}")
        except DatasetError:
            pass


# --- npz --------------------------------------------------------------------------------------


def save_npz(tmp_path: Path, **arrays) -> str:
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


@pytest.mark.parametrize(
    "shape, image_shape",
    [
        ((20, 7, 6), (1, 7, 6)),
        ((20, 1, 7, 6), (1, 7, 6)),
        ((20, 3, 7, 6), (3, 7, 6)),
        ((20, 7, 6, 3), (3, 7, 6)),
        ((20, 7, 6, 1), (1, 7, 6)),
    ],
)
def test_npz_layouts(tmp_path, shape, image_shape):
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    ds = load_dataset(save_npz(tmp_path, x=x))
    check_dataset(ds, 1)
    assert ds.image_shape == image_shape
    assert (len(ds.x_train), len(ds.x_test)) == (16, 4)
    assert ds.name == "npz: data.npz"
    # Values in [0, 1] are kept as they are, only moved to channels-first.
    channels_last = len(shape) == 4 and shape[1] not in (1, 3)
    original = x.transpose(0, 3, 1, 2) if channels_last else x.reshape(len(x), *image_shape)
    np.testing.assert_array_equal(np.sort(np.concatenate([ds.x_train, ds.x_test]).ravel()), np.sort(original.ravel()))


def test_npz_scaling(tmp_path):
    x8 = np.full((10, 4, 4), 255, dtype=np.uint8)
    x8[0] = 1  # uint8 is always bytes, even when every value is 0 or 1 ...
    ds = load_dataset(save_npz(tmp_path, x=np.ones((10, 4, 4), dtype=np.uint8)))
    assert ds.x_train[:].max() == pytest.approx(1 / 255)
    ds = load_dataset(save_npz(tmp_path, x=x8))
    assert ds.x_train[:].max() == 1.0
    ds = load_dataset(save_npz(tmp_path, x=np.full((10, 4, 4), 127.5)))  # ... other types only when > 1
    assert ds.x_train[:].max() == pytest.approx(0.5)
    ds = load_dataset(save_npz(tmp_path, x=np.full((10, 4, 4), 0.25, dtype=np.float64)))
    assert ds.x_train[:].max() == pytest.approx(0.25) and ds.x_train.stored.dtype == np.float32
    ds = load_dataset(save_npz(tmp_path, x=np.ones((10, 4, 4), dtype=bool)))
    assert ds.x_train[:].max() == 1.0


def test_npz_labels(tmp_path):
    x = np.zeros((30, 4, 4), dtype=np.uint8)
    y = np.repeat([3, 7, 12], 10)
    ds = load_dataset(save_npz(tmp_path, x=x, y=y))
    check_dataset(ds, 3)
    assert ds.label_names == ("3", "7", "12")
    assert sorted(np.concatenate([ds.y_train, ds.y_test]).tolist()) == [0] * 10 + [1] * 10 + [2] * 10


def test_npz_explicit_test_set_and_label_names(tmp_path):
    rng = np.random.default_rng(0)
    spec = save_npz(
        tmp_path,
        x=rng.random((12, 5, 5)),
        y=rng.integers(0, 2, 12),
        x_test=rng.random((5, 5, 5)),
        y_test=rng.integers(0, 3, 5),
        label_names=np.array(["cat", "dog", "bird"]),
    )
    ds = load_dataset(spec)
    check_dataset(ds, 3)
    assert (len(ds.x_train), len(ds.x_test)) == (12, 5)
    assert ds.label_names == ("cat", "dog", "bird")


def test_npz_plain_npy_is_x(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((10, 4, 4), dtype=np.uint8))
    assert load_dataset(f"npz:{path}").image_shape == (1, 4, 4)


@pytest.mark.parametrize(
    "arrays, fragment",
    [
        ({"images": np.zeros((4, 4, 4))}, "no array named 'x'"),
        ({"x": np.full((4, 4, 4), np.nan)}, "NaN"),
        ({"x": np.full((4, 4, 4), np.inf)}, "NaN or infinite"),
        ({"x": -np.ones((4, 4, 4))}, "negative"),
        ({"x": np.full((4, 4, 4), 1000.0)}, "1000"),
        ({"x": np.zeros((4, 4))}, "shape (4, 4)"),
        ({"x": np.zeros((4, 5, 5, 5))}, "channels"),
        ({"x": np.zeros((0, 4, 4))}, "empty"),
        ({"x": np.zeros((1, 4, 4))}, "at least 2"),
        ({"x": np.array(["a", "b"])}, "dtype"),
        ({"x": np.zeros((4, 4, 4), dtype=complex)}, "dtype"),
        ({"x": np.zeros((4, 4, 4)), "y": np.zeros(3, dtype=int)}, "3 labels for 4 images"),
        ({"x": np.zeros((4, 4, 4)), "y": np.array([0, 1, -1, 0])}, "negative label -1"),
        ({"x": np.zeros((4, 4, 4)), "y": np.zeros(4)}, "integers"),
        ({"x": np.zeros((4, 4, 4)), "y": np.zeros(4, int), "label_names": np.array([1, 2])}, "strings"),
        ({"x": np.zeros((4, 4, 4)), "y": np.full(4, 2), "label_names": np.array(["a", "b"])}, "names only 2 classes"),
        ({"x": np.zeros((4, 4, 4)), "x_test": np.zeros((2, 5, 5))}, "x_test"),
        ({"x": np.zeros((4, 4, 4)), "y": np.zeros(4, int), "x_test": np.zeros((2, 4, 4))}, "y_test"),
        ({"x": np.zeros((4, 4, 4)), "y_test": np.zeros(4, int)}, "no x_test"),
    ],
)
def test_npz_bad_contents(tmp_path, arrays, fragment):
    expect_error(save_npz(tmp_path, **arrays), fragment, "data.npz")


class Boom:
    def __reduce__(self):
        return (Path.touch, (Path(tempfile.gettempdir()) / "latentlab-pickle-was-executed",))


def test_npz_pickled_objects_are_refused_not_run(tmp_path):
    marker = Path(tempfile.gettempdir()) / "latentlab-pickle-was-executed"
    marker.unlink(missing_ok=True)
    spec = save_npz(tmp_path, x=np.array([Boom(), Boom()], dtype=object))
    expect_error(spec, "data.npz", "pickled Python objects")
    raw = tmp_path / "raw.npz"  # a bare pickle with an .npz name
    raw.write_bytes(pickle.dumps(Boom()))
    expect_error(f"npz:{raw}", "raw.npz", "not an .npz file")
    assert not marker.exists()


def test_npz_broken_files(tmp_path):
    expect_error(f"npz:{tmp_path / 'missing.npz'}", "does not exist")
    expect_error(f"npz:{tmp_path}", "not a file")
    good = tmp_path / "data.npz"
    np.savez_compressed(good, x=np.random.default_rng(0).random((50, 8, 8)))
    bad = tmp_path / "cut.npz"
    bad.write_bytes(good.read_bytes()[:-200])
    expect_error(f"npz:{bad}", "cut.npz")
    data = bytearray(good.read_bytes())
    data[200:260] = bytes(60)  # corrupt the compressed stream, keep the zip directory
    bad.write_bytes(bytes(data))
    expect_error(f"npz:{bad}", "cut.npz")
    bad.write_bytes(np.random.default_rng(0).bytes(500))
    expect_error(f"npz:{bad}", "neither a zip archive nor an .npy array")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=600), st.binary(max_size=300).map(lambda b: b"PK\x03\x04" + b)))
def test_npz_random_bytes_never_crash(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.npz"
        path.write_bytes(data)
        try:
            load_dataset(f"npz:{path}")
        except DatasetError:
            pass


@settings(max_examples=100, deadline=None)
@given(position=st.integers(0, 10_000), value=st.integers(0, 255))
def test_npz_flipped_byte_never_crashes(position, value):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flipped.npz"
        np.savez_compressed(path, x=np.arange(60, dtype=np.uint8).reshape(5, 3, 4), y=np.arange(5))
        data = bytearray(path.read_bytes())
        data[position % len(data)] = value
        path.write_bytes(bytes(data))
        try:
            load_dataset(f"npz:{path}")
        except DatasetError:
            pass


def test_unreadable_files(tmp_path, monkeypatch):
    write_idx(tmp_path, "train", 10)
    np.savez(tmp_path / "data.npz", x=np.zeros((4, 4, 4)))

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    monkeypatch.setattr(Path, "open", denied)
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: denied(p) if str(tmp_path) in str(p) else real_open(p, *a, **k))
    expect_error(f"mnist:{tmp_path}", "Cannot read", "train-", "Permission denied")
    expect_error(f"npz:{tmp_path / 'data.npz'}", "Cannot read", "data.npz", "Permission denied")


# --- image folders ----------------------------------------------------------------------------


def write_images(folder: Path, classes: dict[str, int], size=(6, 4), mode="L", ext="png") -> None:
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / name / f"{i}.{ext}")


def test_images_grayscale(tmp_path):
    write_images(tmp_path, {"b": 6, "a": 4, "c": 5})
    (tmp_path / "empty").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("not an image and not counted")
    ds = load_dataset(f"images:{tmp_path}")
    check_dataset(ds, 3)
    assert ds.label_names == ("a", "b", "c")
    assert ds.image_shape == (1, 4, 6)
    assert (len(ds.x_train), len(ds.x_test)) == (12, 3)
    counts = np.bincount(np.concatenate([ds.y_train, ds.y_test]))
    assert counts.tolist() == [4, 6, 5]
    np.testing.assert_array_equal(ds.x_test, load_dataset(f"images:{tmp_path}").x_test)


def test_images_rgb(tmp_path):
    write_images(tmp_path, {"x": 3}, mode="L", ext="jpg")
    write_images(tmp_path, {"y": 3}, mode="RGB", ext="bmp")
    ds = load_dataset(f"images:{tmp_path}")
    check_dataset(ds, 2)
    assert ds.image_shape == (3, 4, 6)


def test_images_mixed_sizes(tmp_path):
    write_images(tmp_path, {"a": 2}, size=(6, 4))
    write_images(tmp_path, {"b": 2}, size=(5, 5))
    expect_error(f"images:{tmp_path}", "6×4", "5×5", "same size", "0.png")


def test_images_empty_and_missing(tmp_path):
    expect_error(f"images:{tmp_path}", "No images found", str(tmp_path))
    (tmp_path / "a").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "top-level.png")
    expect_error(f"images:{tmp_path}", "sub-folder")
    expect_error(f"images:{tmp_path / 'missing'}", "does not exist")


def test_images_unreadable_file(tmp_path):
    write_images(tmp_path, {"a": 3})
    (tmp_path / "a" / "broken.png").write_bytes(b"this is not a png")
    expect_error(f"images:{tmp_path}", "broken.png", "not a readable image")
    good = (tmp_path / "a" / "0.png").read_bytes()
    (tmp_path / "a" / "broken.png").write_bytes(good[: len(good) // 2])
    expect_error(f"images:{tmp_path}", "broken.png")


# --- specs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("", "Empty dataset spec"),
        ("   ", "Empty dataset spec"),
        ("nope", "Unknown dataset 'nope'"),
        ("nope:/tmp", "Unknown dataset"),
        ("mnist", "mnist:DIR"),
        ("fashion-mnist:", "fashion-mnist:DIR"),
        ("npz:", "npz:FILE"),
        ("images", "images:DIR"),
        ("digits:extra", "takes no argument"),
    ],
)
def test_bad_specs(spec, fragment):
    message = expect_error(spec, fragment)
    assert message.endswith(".")


def test_help_text_lists_every_kind():
    text = describe_specs()
    for kind in DATASET_KINDS:
        assert kind in text


def test_core_data_does_not_import_qt():
    import subprocess
    import sys

    code = "import sys, latentlab.core.data.specs; print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'superqt')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_digits_fast_path_matches_scikit_learn():
    from sklearn.datasets import load_digits

    from latentlab.core.data.embedded import digits_arrays

    images, target = digits_arrays()
    reference = load_digits()
    assert np.array_equal(images, reference.images) and np.array_equal(target, reference.target)


def test_an_npz_entry_flagged_as_encrypted_is_one_sentence(tmp_path):
    """zipfile answers an encrypted entry with RuntimeError; one flipped bit in a header sets that flag."""
    import zipfile

    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((4, 8, 8), np.float32))
    data = bytearray(path.read_bytes())
    for off in (0, data.rfind(b"PK\x01\x02")):   # the local header and the central directory entry
        flag_at = off + (6 if off == 0 else 8)
        data[flag_at] |= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(RuntimeError), zipfile.ZipFile(path) as zf:
        zf.open(zf.namelist()[0]).read()
    with pytest.raises(DatasetError, match="not a readable .npz"):
        load_dataset(f"npz:{path}")
