"""How many threads torch's CPU work uses: LATENTLAB_THREADS, or the cores free when the process
first asks."""

import os

import pytest
import torch

from latentlab.core.errors import LatentLabError
from latentlab.core.training import device


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(device, "_free_cores", None)
    monkeypatch.delenv(device.THREADS_ENV, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_environment_variable_decides(monkeypatch):
    monkeypatch.setenv(device.THREADS_ENV, "3")
    assert device.cpu_threads() == 3 and device.cpu_threads(leave=1) == 3
    assert device.use_cpu_threads() == 3 and torch.get_num_threads() == 3


@pytest.mark.parametrize("value", ["0", "-1", "two", "1e3", "99999"])
def test_a_bad_value_is_one_sentence(monkeypatch, value):
    monkeypatch.setenv(device.THREADS_ENV, value)
    with pytest.raises(LatentLabError, match="LATENTLAB_THREADS must be a whole number"):
        device.cpu_threads()


def test_a_busy_machine_gets_fewer_threads(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (5.6, 5.0, 4.0))
    assert device.cpu_threads() == 2   # 8 cores, 6 of them busy
    assert device.cpu_threads(leave=1) == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert device.cpu_threads() == 2   # decided once per process: its own work later must not halve it


def test_an_idle_machine_keeps_torchs_default(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert device.cpu_threads() == min(torch.get_num_threads(), os.cpu_count())
    assert device.cpu_threads(leave=64) == 1
