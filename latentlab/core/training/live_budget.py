"""How many points the live scatter can encode while training, from measured times.

Encoding the scatter steals time from training. The budget keeps it to a share (10%) of the training
time between two snapshots: with c seconds to encode one point and T seconds of training between
snapshots, a snapshot encodes n = share · T / c points, never fewer than a floor that keeps the
picture readable and never more than there are. On a GPU, encoding all points is cheap next to a
training step, so it encodes them all. Times are measured with an injected clock so that tests can
drive it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SHARE = 0.10
FLOOR = 2_000   # the fewest training points re-encoded for a live scatter frame


def live_points(total: int, seconds_per_point: float | None, training_seconds: float, *, share: float = SHARE,
                floor: int = FLOOR, on_gpu: bool = False) -> int:
    """Points to encode for the next snapshot (see the module docstring)."""
    if total <= 0:
        return 0
    if on_gpu:
        return total
    low = min(floor, total)
    if not seconds_per_point or seconds_per_point <= 0 or training_seconds <= 0:
        return low   # nothing measured yet: start small
    return max(low, min(total, int(share * training_seconds / seconds_per_point)))


class LiveBudget:
    """Measures training and encoding time as they alternate and answers `points()` for the next snapshot.

    Call `encoding_started()` just before encoding a snapshot and `encoding_done(n)` after encoding n
    points; the time in between two snapshots counts as training. The per-point cost is smoothed over
    snapshots (the first ones are noisy: caches, allocation)."""

    def __init__(self, total: int, *, share: float = SHARE, floor: int = FLOOR, on_gpu: bool = False,
                 clock: Callable[[], float] = time.perf_counter, smoothing: float = 0.5):
        self.total, self.share, self.floor, self.on_gpu = total, share, floor, on_gpu
        self.clock, self.smoothing = clock, smoothing
        self.seconds_per_point: float | None = None
        self.training_seconds = 0.0
        self._mark = clock()
        self._encode_start: float | None = None

    def encoding_started(self) -> None:
        now = self.clock()
        self.training_seconds = now - self._mark
        self._encode_start = now

    def encoding_done(self, n: int) -> None:
        now = self.clock()
        elapsed = now - (self._encode_start if self._encode_start is not None else now)
        if n > 0 and elapsed > 0:
            cost = elapsed / n
            old = self.seconds_per_point
            self.seconds_per_point = cost if old is None else self.smoothing * old + (1 - self.smoothing) * cost
        self._mark = now
        self._encode_start = None

    def points(self) -> int:
        return live_points(self.total, self.seconds_per_point, self.training_seconds, share=self.share,
                           floor=self.floor, on_gpu=self.on_gpu)

