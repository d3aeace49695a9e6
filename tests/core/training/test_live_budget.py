"""The live scatter's point budget, driven by a fake clock."""

import pytest

from latentlab.core.training.live_budget import FLOOR, LiveBudget, live_points


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_live_points_keeps_encoding_to_a_tenth_of_training():
    # 1 µs per point, 0.5 s of training between snapshots: 10% is 50 ms, so 50,000 points
    assert live_points(60_000, 1e-6, 0.5) == 50_000
    assert live_points(60_000, 1e-6, 5.0) == 60_000           # never more than there are
    assert live_points(60_000, 1e-3, 0.5) == FLOOR            # never fewer than the floor
    assert live_points(500, 1e-3, 0.5) == 500                 # nor more than there are, however small
    assert live_points(60_000, None, 0.5) == FLOOR            # nothing measured yet
    assert live_points(950_000, 1e-3, 0.01, on_gpu=True) == 950_000
    assert live_points(0, 1e-6, 1.0) == 0


def test_budget_follows_measured_times_and_holds_the_share():
    clock = FakeClock()
    budget = LiveBudget(950_000, clock=clock)
    assert budget.points() == FLOOR
    cost = 2e-6   # seconds per point on this fake machine
    trained = encoded = 0.0
    for _ in range(30):
        clock.now += 0.4                       # training between snapshots
        trained += 0.4
        budget.encoding_started()
        n = budget.points()
        clock.now += n * cost                  # encoding n points
        encoded += n * cost
        budget.encoding_done(n)
    assert budget.points() == pytest.approx(0.1 * 0.4 / cost, rel=0.01)     # 20,000
    assert encoded / trained == pytest.approx(0.1, abs=0.01)


def test_budget_adapts_when_encoding_gets_slower():
    clock = FakeClock()
    budget = LiveBudget(100_000, clock=clock, smoothing=0.0)
    for cost in (1e-6, 1e-6, 4e-6):
        clock.now += 0.2
        budget.encoding_started()
        n = budget.points()
        clock.now += n * cost
        budget.encoding_done(n)
    assert budget.points() == 5_000            # 0.1 × 0.2 s / 4 µs


def test_budget_on_a_gpu_encodes_everything():
    budget = LiveBudget(70_000, on_gpu=True, clock=FakeClock())
    assert budget.points() == 70_000
