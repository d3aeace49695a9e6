"""The chunked encode loop: every row once, in place, on a range of rows, stoppable, with progress."""

import numpy as np
import pytest

from latentlab.core.data.pixels import Pixels
from latentlab.core.errors import Cancelled
from latentlab.core.inference import analysis
from latentlab.core.inference.batches import each_chunk, encode_rows
from latentlab.core.models.config import ModelConfig
from latentlab.core.models.vae import build_model


def _model():
    return build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=(16,)), seed=0).eval()


def _images(n=250):
    return np.random.default_rng(0).integers(0, 256, (n, 1, 8, 8), dtype=np.uint8)


def test_each_chunk_visits_every_row_of_the_range_once_in_order_and_reports_after_each():
    seen, fractions = [], []
    each_chunk(range(10, 33), 5, seen.append, progress=fractions.append)
    assert seen == [slice(10, 15), slice(15, 20), slice(20, 25), slice(25, 30), slice(30, 33)]
    assert fractions == pytest.approx([5 / 23, 10 / 23, 15 / 23, 20 / 23, 1.0])
    each_chunk(0, 5, seen.append, progress=fractions.append)   # nothing to do: neither called
    assert len(seen) == 5 and len(fractions) == 5


def test_each_chunk_stops_before_the_next_chunk_with_the_callers_sentence():
    seen = []
    with pytest.raises(Cancelled, match="The thing was stopped"):
        each_chunk(100, 10, seen.append, should_stop=lambda: len(seen) >= 3, stopped="The thing was stopped.")
    assert len(seen) == 3


def test_encode_rows_equals_one_encode_of_the_same_rows():
    model, x = _model(), _images()
    mu, logvar = analysis.encode(model, Pixels(x)[:])
    got = encode_rows(model, Pixels(x), batch=16, chunk=40)   # uint8 read as stored, converted per batch
    np.testing.assert_allclose(got[0], mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], logvar, rtol=1e-5, atol=1e-6)


def test_encode_rows_of_a_range_fills_the_given_arrays_in_place():
    model, x = _model(), _images()
    mu, logvar = analysis.encode(model, x)
    out = (np.full((300, 3), np.nan, np.float32), np.full((300, 3), np.nan, np.float32))
    rows = range(37, 201)
    got = encode_rows(model, x, rows, batch=50, out=(out[0][5:5 + len(rows)], out[1][5:5 + len(rows)]))
    assert got[0].base is out[0]
    np.testing.assert_allclose(out[0][5:5 + len(rows)], mu[37:201], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1][5:5 + len(rows)], logvar[37:201], rtol=1e-5, atol=1e-6)
    assert np.isnan(out[0][:5]).all() and np.isnan(out[0][5 + len(rows):]).all()


def test_encode_rows_reads_only_its_chunk_of_rows_at_a_time():
    """A store that reads rows when sliced (a streamed dataset) is asked for one chunk at a time."""
    x = _images()
    asked = []

    class Rows:
        def __len__(self):
            return len(x)

        def __getitem__(self, part):
            asked.append((part.start, part.stop))
            return x[part]

    encode_rows(_model(), Rows(), batch=64, chunk=100)
    assert asked == [(0, 100), (100, 200), (200, 250)]
