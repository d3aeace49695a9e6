"""The one loop that walks a model over many rows: a range of rows in chunks, stoppable between chunks,
reporting progress after each.

Rows are read a chunk at a time by slicing (`x[start:stop]`), so the images may be an array held in
memory, the uint8 store of a Pixels, or any object that reads the rows it is sliced for; a caller
that owns only some rows (one rank of several) passes their range.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from latentlab.core.data.pixels import stored
from latentlab.core.errors import Cancelled

from . import analysis


def each_chunk(rows: range | int, chunk: int, fn: Callable[[slice], None], *,
               progress: Callable[[float], None] | None = None, should_stop: Callable[[], bool] | None = None,
               stopped: str = "Encoding was stopped.") -> None:
    """Call fn(slice) for each run of at most `chunk` consecutive rows of `rows` (a range, or a count
    from 0), in order. should_stop() is asked before each call (Cancelled(stopped) when it answers
    True); progress(fraction of `rows` done) follows each call."""
    rows = range(rows) if isinstance(rows, int) else rows
    chunk = max(1, int(chunk))
    for start in range(rows.start, rows.stop, chunk):
        if should_stop is not None and should_stop():
            raise Cancelled(stopped)
        stop = min(start + chunk, rows.stop)
        fn(slice(start, stop))
        if progress is not None:
            progress((stop - rows.start) / len(rows))


def encode_rows(model, x, rows: range | None = None, *, batch: int = 4096, chunk: int | None = None,
                progress: Callable[[float], None] | None = None, should_stop: Callable[[], bool] | None = None,
                out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances of `rows` of x (default: all), (len(rows), K) float32 each,
    written into `out` when given. Each chunk of `chunk` rows (default: one batch) is read as stored
    (uint8 stays uint8 until analysis.encode converts it a batch of `batch` at a time on the model's
    device); see each_chunk for progress and stopping."""
    rows = range(len(x)) if rows is None else rows
    k = model.latent_dim
    mu, logvar = out if out is not None else (np.empty((len(rows), k), np.float32), np.empty((len(rows), k), np.float32))

    def step(part: slice) -> None:
        at = slice(part.start - rows.start, part.stop - rows.start)
        mu[at], logvar[at] = analysis.encode(model, stored(x)[part], batch=batch)

    each_chunk(rows, chunk or batch, step, progress=progress, should_stop=should_stop)
    return mu, logvar
