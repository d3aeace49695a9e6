"""How many threads torch's CPU work uses: LATENTLAB_THREADS, or the cores other processes left free
while the process started (core.cpu_load)."""

import os
import subprocess
import sys
import time

import pytest
import torch

from latentlab.core import cpu_load
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
    monkeypatch.setattr(cpu_load, "busy_now", lambda: 5.6)
    assert device.cpu_threads() == 2   # 8 cores, 6 of them busy
    assert device.cpu_threads(leave=1) == 1
    monkeypatch.setattr(cpu_load, "busy_now", lambda: 0.0)
    assert device.cpu_threads() == 2   # decided once per process: its own work later must not halve it


def test_an_idle_machine_keeps_torchs_default(monkeypatch):
    monkeypatch.setattr(cpu_load, "busy_now", lambda: 0.0)
    assert device.cpu_threads() == min(torch.get_num_threads(), os.cpu_count())
    assert device.cpu_threads(leave=64) == 1


def test_a_machine_that_cannot_say_keeps_torchs_default(monkeypatch):
    monkeypatch.setattr(cpu_load, "busy_now", lambda: None)   # no /proc/stat (not Linux)
    assert device.cpu_threads() == min(torch.get_num_threads(), os.cpu_count())


def test_a_finished_run_does_not_count_as_load(monkeypatch):
    """The load average still counts a run that ended seconds ago; free cores must not."""
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    monkeypatch.setattr(cpu_load, "busy_now", lambda: 0.1)
    assert device.cpu_threads() == min(torch.get_num_threads(), os.cpu_count())


def test_asked_too_early_it_neither_waits_nor_decides(monkeypatch):
    """The window asks on its GUI thread: no sleep there. Too soon after the first reading to tell,
    torch's default is used and the question is asked again next time."""
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    monkeypatch.setattr(cpu_load, "_FIRST", cpu_load.reading())   # just now
    monkeypatch.setattr(cpu_load.time, "sleep", lambda s: pytest.fail(f"slept {s} s"))
    if cpu_load.reading() is not None:
        assert cpu_load.busy_now() is None
    assert device.cpu_threads() == 8 and device.cpu_threads(leave=1) == 7
    assert device._free_cores is None
    monkeypatch.setattr(cpu_load, "busy_now", lambda: 6.0)
    assert device.cpu_threads() == 2   # now it can tell


def test_own_work_is_not_counted_as_others():
    """Between two readings, the machine's work less this process's is the others' work."""
    first = (100.0, 5.0, 50.0)   # machine CPU s, own CPU s, wall s
    assert cpu_load.busy_elsewhere(first, (103.0, 7.0, 52.0)) == pytest.approx(0.5)   # 3 s of work, 2 ours, in 2 s
    assert cpu_load.busy_elsewhere(first, (102.0, 7.0, 52.0)) == 0.0                  # all of it ours
    assert cpu_load.busy_elsewhere(first, (101.0, 5.0, 50.0)) == 0.0                  # no time passed


@pytest.mark.skipif(cpu_load.reading() is None, reason="no /proc/stat here")
def test_a_spinning_process_is_seen_and_this_ones_own_work_is_not():
    spin = subprocess.Popen([sys.executable, "-c", "import time\nprint('spinning', flush=True)\n"
                             "end = time.time() + 20\nwhile time.time() < end: pass"], stdout=subprocess.PIPE, text=True)
    try:
        assert spin.stdout.readline().strip() == "spinning"   # the child is running, however slowly it started
        first = cpu_load.reading()
        end = time.monotonic() + 0.6
        while time.monotonic() < end:   # this process spins too, and must not count
            pass
        busy = cpu_load.busy_elsewhere(first, cpu_load.reading())
    finally:
        spin.kill()
        spin.wait()
    # The child keeps one core busy; other tests running beside this one can only add to it, and this
    # process's own second of spinning is not in it (it would make 2 on a machine of 2 cores).
    assert busy >= 0.6
    assert busy <= (os.cpu_count() or 1) + 0.2
