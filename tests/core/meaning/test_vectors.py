"""Vector files: round trip, and broken or hostile files refused in one sentence without running code."""

import io
import pickle
import zipfile

import numpy as np
import pytest

from latentlab.core.errors import LatentLabError
from latentlab.core.meaning.attributes import vector_between, vector_for_factor
from latentlab.core.meaning.vectors import load_vector, save_vector


@pytest.fixture
def vector():
    rng = np.random.default_rng(0)
    return vector_between(rng.standard_normal((200, 4)), rng.standard_normal((100, 4)) + 1, names=("cats", "dogs"))


def test_round_trip_keeps_every_field(vector, tmp_path):
    path = save_vector(tmp_path / "v.npz", vector, model="m.safetensors", dataset="digits")
    back, meta = load_vector(path)
    np.testing.assert_allclose(back.direction, vector.direction, atol=1e-6)
    assert back.summary() == pytest.approx(vector.summary()) and meta == {"model": "m.safetensors", "dataset": "digits"}
    with np.load(path, allow_pickle=False) as z:   # plain arrays, readable by anyone
        assert z["direction"].dtype == np.float32 and str(z["from"]) == "cats"


def test_a_factor_vector_keeps_its_r2(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.random(300)
    f = vector_for_factor(np.c_[y, rng.random(300)], y, "x")
    back, _ = load_vector(save_vector(tmp_path / "f.npz", f))
    assert back.r2 == pytest.approx(f.r2) and back.kind == "factor"


def arrays_of(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write(path, arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize("change, words", [
    (lambda a: a.pop("direction"), "no direction"),
    (lambda a: a.update(direction=np.zeros(4, np.float32)), "zero or not finite"),
    (lambda a: a.update(direction=np.array([1.0, np.nan], np.float32)), "zero or not finite"),
    (lambda a: a.update(direction=np.ones((2, 2), np.float32)), "1-D float"),
    (lambda a: a.update(direction=np.array(["a", "b"])), "1-D float"),
    (lambda a: a.update(format=np.int64(99)), "format is 99"),
    (lambda a: a.update(kind=np.str_("bogus")), "kind must be"),
    (lambda a: a.update(length=np.float64(-1)), "length"),
    (lambda a: a.update(length=np.float64(np.inf)), "length"),
    (lambda a: a.update(auc=np.float64(3.0)), "auc"),
    (lambda a: a.update(r2=np.float64(0.5)), "r2"),
    (lambda a: a.update(n_from=np.int64(-5)), "count"),
    (lambda a: a.update(to=np.str_("x" * 5000)), "longer than"),
    (lambda a: a.update(to=np.str_("a\x00b")), "printable"),
    (lambda a: a.update(model=np.array(["a", "b"])), "single string"),
])
def test_broken_fields_are_refused(vector, tmp_path, change, words):
    arrays = arrays_of(save_vector(tmp_path / "v.npz", vector))
    change(arrays)
    with pytest.raises(LatentLabError, match=words) as info:
        load_vector(write(tmp_path / "bad.npz", arrays))
    assert "\n" not in str(info.value)


def test_a_pickle_inside_is_never_unpickled(tmp_path, vector):
    ran = tmp_path / "ran"

    class Boom:
        def __reduce__(self):
            return (open, (str(ran), "w"))

    arrays = arrays_of(save_vector(tmp_path / "v.npz", vector))
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in arrays.items():
            if k == "direction":
                continue
            buf = io.BytesIO()
            np.save(buf, v)
            zf.writestr(f"{k}.npy", buf.getvalue())
        buf = io.BytesIO()
        np.save(buf, np.array([Boom()], dtype=object), allow_pickle=True)
        zf.writestr("direction.npy", buf.getvalue())
    with pytest.raises(LatentLabError, match="pickled"):
        load_vector(path)
    assert not ran.exists()


@pytest.mark.parametrize("content", [b"", b"not a zip at all", pickle.dumps({"direction": [1.0]}), b"PK\x03\x04garbage"])
def test_files_that_are_not_vectors(tmp_path, content):
    path = tmp_path / "v.npz"
    path.write_bytes(content)
    with pytest.raises(LatentLabError):
        load_vector(path)


def test_missing_file_and_folder_and_suffix(tmp_path, vector):
    with pytest.raises(LatentLabError, match="does not exist"):
        load_vector(tmp_path / "nope.npz")
    with pytest.raises(LatentLabError):
        load_vector(tmp_path)
    with pytest.raises(LatentLabError, match=".npz"):
        save_vector(tmp_path / "v.txt", vector)


def test_an_oversized_file_is_not_read(tmp_path, monkeypatch):
    from latentlab.core.meaning import vectors

    path = tmp_path / "big.npz"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 2000)
    monkeypatch.setattr(vectors, "MAX_BYTES", 1000)
    with pytest.raises(LatentLabError, match="far larger"):
        load_vector(path)
