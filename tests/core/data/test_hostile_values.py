"""Values a file holds that a careless reader turns into other values: 16-bit images clipped at 255,
unsigned labels beyond int64 wrapping to negative classes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from latentlab.core.data.specs import load_dataset
from latentlab.core.errors import DatasetError


@settings(max_examples=15, deadline=None)
@given(level=st.integers(0, 65535))
def test_16_bit_grey_images_are_scaled_not_clipped(tmp_path_factory, level):
    folder = tmp_path_factory.mktemp("deep")
    for cls in ("a", "b"):
        (folder / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((4, 4), level, np.uint16)).save(folder / cls / f"{i}.png")
    assert Image.open(folder / "a" / "0.png").mode.startswith("I;16")
    data = load_dataset(f"images:{folder}")
    seen = np.unique(np.concatenate([data.x_train[:].ravel(), data.x_test[:].ravel()]))
    assert seen == pytest.approx([round(level / 257) / 255], abs=1e-6)


@pytest.mark.parametrize("dtype", [np.uint64, np.uint32])
def test_unsigned_labels_keep_their_value_or_are_refused(tmp_path, dtype):
    path = tmp_path / "d.npz"
    y = np.array([1, 2, np.iinfo(dtype).max, 1, 2, 1, 2, 1, 2, 1], dtype=dtype)
    np.savez(path, x=np.zeros((10, 4, 4), np.uint8), y=y)
    if dtype == np.uint64:   # 2**64 - 1 does not fit int64: it would become -1
        with pytest.raises(DatasetError, match="18,446,744,073,709,551,615"):
            load_dataset(f"npz:{path}")
    else:
        data = load_dataset(f"npz:{path}")
        assert str(np.iinfo(dtype).max) in data.label_names and min(data.y_train.min(), data.y_test.min()) >= 0
