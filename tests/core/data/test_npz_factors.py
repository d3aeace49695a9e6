"""Ground-truth factors in an npz dataset: read, split with their images, and every bad form refused
in one sentence."""

import numpy as np
import pytest

from latentlab.core.data.specs import load_dataset
from latentlab.core.errors import DatasetError


def save(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


def images(n):
    return np.random.default_rng(0).random((n, 6, 6)).astype(np.float32)


def test_factors_follow_their_images_through_the_split(tmp_path):
    x = images(50)
    marker = np.arange(50, dtype=np.float32)
    x[:, 0, 0] = marker / 100   # each image remembers its row
    factors = np.c_[marker, marker % 3]
    data = load_dataset(save(tmp_path, x=x, factors=factors, factor_names=np.array(["row", "mod3"])))
    assert set(data.factors_train) == {"row", "mod3"} and data.factors_train["row"].dtype == np.float32
    for pixels, f in ((data.x_train, data.factors_train), (data.x_test, data.factors_test)):
        np.testing.assert_allclose(pixels[:][:, 0, 0, 0] * 100, f["row"], atol=1e-3)
        np.testing.assert_array_equal(f["mod3"], f["row"] % 3)
    assert len(data.factors_test["row"]) == len(data.x_test) == 10


def test_factors_with_a_test_set_and_default_names(tmp_path):
    data = load_dataset(save(tmp_path, x=images(20), factors=np.arange(20), x_test=images(5),
                             factors_test=np.arange(5)))
    assert list(data.factors_train) == ["factor 1"] and list(data.factors_test["factor 1"]) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("extra, words", [
    ({"factors": np.zeros((19, 2))}, "19 rows for the 20 images"),
    ({"factors": np.zeros((20, 2, 2))}, "one row per image"),
    ({"factors": np.array(["a"] * 20)}, "expected numbers"),
    ({"factors": np.full((20, 1), np.nan)}, "NaN"),
    ({"factors": np.zeros((20, 65))}, "1 to 64"),
    ({"factors": np.zeros((20, 2)), "factor_names": np.array(["a"])}, "names 1 factors"),
    ({"factors": np.zeros((20, 2)), "factor_names": np.array(["a", "a"])}, "repeats"),
    ({"factors": np.zeros((20, 1)), "factor_names": np.array(["label"])}, "reserved"),
    ({"factors": np.zeros((20, 1)), "factor_names": np.array([""])}, "empty"),
    ({"factors": np.zeros((20, 1)), "factor_names": np.array([1])}, "strings"),
    ({"factor_names": np.array(["a"])}, "no factors"),
    ({"factors": np.zeros((20, 1)), "factors_test": np.zeros((5, 1))}, "no x_test"),
    ({"factors": np.zeros((20, 1)), "x_test": images(5)}, "no factors_test"),
    ({"factors": np.zeros((20, 1)), "x_test": images(5), "factors_test": np.zeros((5, 2))}, "columns"),
])
def test_bad_factors_are_one_sentence(tmp_path, extra, words):
    with pytest.raises(DatasetError, match=words) as info:
        load_dataset(save(tmp_path, x=images(20), **extra))
    assert "\n" not in str(info.value)
