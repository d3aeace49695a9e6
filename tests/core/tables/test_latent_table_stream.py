"""Latent tables are written as they are made: a CSV a slice of rows at a time, an NPZ an array at a
time, so writing a wide table costs a few tens of MB beyond the table (measured in a fresh
interpreter), and what is read back is what was written."""

import numpy as np
import pytest
from hostile_io import measured

from latentlab.core.tables.latent_table import LatentTable, write_table
from latentlab.core.tables.table_reader import read_table

PRELUDE = """
import numpy as np
from latentlab.core.tables.latent_table import LatentTable, write_table
n, k = {n}, {k}
rng = np.random.default_rng(0)
table = LatentTable(index=np.arange(n), split=np.array(["train"] * n), label=np.zeros(n, np.int64),
                    mu=rng.standard_normal((n, k), dtype=np.float32), logvar=rng.standard_normal((n, k), dtype=np.float32),
                    label_names=("a",))
"""


@pytest.mark.parametrize("suffix, n, k, text_mb", [(".csv", 400, 10_000, 90), (".npz", 1000, 20_000, 160)])
def test_a_wide_table_is_streamed_to_disk(tmp_path, suffix, n, k, text_mb):
    out = tmp_path / f"t{suffix}"
    result = measured(f"write_table({str(out)!r}, table)", prelude=PRELUDE.format(n=n, k=k), timeout=300)
    assert "error" not in result, result
    assert out.stat().st_size > text_mb * 2 ** 20 * 0.8
    assert result["growth_mb"] < 32, result   # the whole file held in memory would be its size or twice


def test_a_streamed_table_reads_back_exactly(tmp_path):
    rng = np.random.default_rng(1)
    n, k = 300, 7
    table = LatentTable(index=np.arange(n), split=np.array(["train", "test"] * (n // 2)), label=rng.integers(0, 3, n),
                        mu=rng.standard_normal((n, k), dtype=np.float32),
                        logvar=rng.standard_normal((n, k), dtype=np.float32), label_names=("a", "b", "c"))
    for suffix in (".csv", ".npz"):
        back = read_table(write_table(tmp_path / f"t{suffix}", table))
        assert np.array_equal(back.mu, table.mu) and np.array_equal(back.logvar, table.logvar)
        assert np.array_equal(back.label, table.label) and list(back.split) == list(table.split)
