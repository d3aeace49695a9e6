"""The Python API on hostile arguments gets the command line's checks: huge labels, datasets and
memory maps are refused or handled within bounded memory (measured in a fresh interpreter whose
free memory is capped), iw_samples is bounded, a NaN result is a sentence, a model too wide for
the window is refused before it opens."""

import numpy as np
import pytest
from hostile_io import GB, measured, sparse
from hostile_models import NaNAfterTheCheck, Wide

import latentlab
from latentlab.api import as_dataset
from latentlab.core.data.specs import load_dataset
from latentlab.core.errors import LatentLabError

PRELUDE = """
import sys
sys.path.insert(0, {tests!r})
import numpy as np, torch
import latentlab
from latentlab.api import as_dataset
from latentlab.api import as_dataset
from hostile_models import Small
"""


def run(body, tmp_path, limit_as=2 * GB, setup=""):
    from pathlib import Path

    return measured(body, prelude=PRELUDE.format(tests=str(Path(__file__).parent)) + setup, limit_as=limit_as,
                    timeout=120)


def test_labels_of_a_billion_are_classes_not_a_billion_names(tmp_path):
    result = run("""
        ds = as_dataset(np.random.default_rng(0).random((100, 8, 8), dtype=np.float32), np.full(100, 10 ** 9))
        result["names"] = list(ds.label_names)
    """, tmp_path)
    assert result.get("names") == ["1000000000"], result
    assert result["growth_mb"] < 64, result


def test_a_torch_dataset_of_a_hundred_million_items_is_refused_before_reading_them(tmp_path):
    result = run("""
        class Huge(torch.utils.data.Dataset):
            def __len__(self):
                return 10 ** 8
            def __getitem__(self, i):
                return torch.zeros(1, 8, 8), 0
        as_dataset(Huge())
    """, tmp_path)
    assert result.get("error", "").startswith("DatasetError") and "needs about" in result["error"], result
    assert result["growth_mb"] < 64, result


def test_a_memory_map_of_a_billion_values_is_refused_before_it_is_copied(tmp_path):
    path = sparse(tmp_path / "x.f32", 4 * 10 ** 9)
    # mapped before the address space is capped: the map itself costs address space, not memory
    result = run("""
        latentlab.evaluate(Small(), x, iw_samples=0)
    """, tmp_path, setup=f"x = np.memmap({str(path)!r}, dtype=np.float32, mode='r', shape=(10 ** 9 // 64, 8, 8))\n")
    assert result.get("error", "").startswith("DatasetError") and "needs about" in result["error"], result
    assert result["growth_mb"] < 64, result


def test_iw_samples_are_bounded_as_on_the_command_line():
    with pytest.raises(ValueError, match="from 0 to 1,000,000"):
        latentlab.evaluate(NaNAfterTheCheck(), load_dataset("digits"), iw_samples=10 ** 9)


def test_a_nan_result_is_a_sentence():
    with pytest.raises(LatentLabError, match="NaN or infinite"):
        latentlab.evaluate(NaNAfterTheCheck(), load_dataset("digits"), iw_samples=0)


def test_a_label_beyond_int64_is_refused_not_wrapped():
    x = np.zeros((10, 8, 8), np.uint8)
    y = np.zeros(10, np.uint64)
    y[3] = 2 ** 64 - 1
    with pytest.raises(LatentLabError, match="18,446,744,073,709,551,615"):
        as_dataset(x, y)


def test_explore_refuses_a_model_too_wide_for_the_window_before_it_opens():
    with pytest.raises(LatentLabError, match="200,000 latent dimensions"):
        latentlab.explore(Wide(), load_dataset("digits"))
