"""Saving the model from the window: written on a worker while the window keeps answering, one save
at a time in the order asked, weights changed meanwhile still unsaved, and closing the window waits
for a save still being written."""

import threading
import time

import numpy as np
import pytest
from gui_helpers import train_briefly
from PySide6 import QtCore

from latentlab.core.files import model_spec
from latentlab.core.files.checkpoint import load_checkpoint


@pytest.fixture
def slow_saves(monkeypatch):
    """save_model made slow (as for a model of hundreds of MB), recording where and when each ran."""
    calls = []
    real = model_spec.save_model

    def save_model(path, model, **kw):
        start = time.monotonic()
        time.sleep(0.4)
        out = real(path, model, **kw)
        calls.append((path, threading.current_thread() is threading.main_thread(), start, time.monotonic()))
        return out

    monkeypatch.setattr(model_spec, "save_model", save_model)
    return calls


def test_a_save_is_written_on_a_worker_while_the_window_answers(window, qtbot, slow_saves, tmp_path):
    s = train_briefly(window)
    ticks = []
    timer = QtCore.QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    target = tmp_path / "trained.safetensors"
    s.save_checkpoint(target)
    assert s.analyses.saver.busy and s.model_data.unsaved and not target.exists()
    with qtbot.waitSignal(s.model_data.savedChanged, timeout=30_000):
        pass
    timer.stop()
    assert not s.analyses.saver.busy and not s.model_data.unsaved and s.model_data.source == target
    (path, on_gui_thread, start, end), = slow_saves
    assert path == target and not on_gui_thread
    assert any(start < t < end for t in ticks)   # the event loop ran while the file was written
    saved = load_checkpoint(target)
    assert len(saved.history) == len(s.model_data.history)
    for k, v in s.model_data.model.state_dict().items():
        assert np.array_equal(saved.model.state_dict()[k].numpy(), v.numpy()), k


def test_saves_run_one_at_a_time_in_the_order_asked(window, slow_saves, tmp_path):
    s = train_briefly(window)
    targets = [tmp_path / f"m{i}.safetensors" for i in range(3)]
    for t in targets:
        s.save_checkpoint(t)
    assert s.analyses.saver.wait()
    assert [c[0] for c in slow_saves] == targets
    assert all(a[3] <= b[2] for a, b in zip(slow_saves, slow_saves[1:]))   # never two at once
    assert all(t.is_file() for t in targets) and s.model_data.source == targets[-1]


def test_weights_changed_during_a_save_stay_unsaved(window, slow_saves, tmp_path):
    s = train_briefly(window)
    md = s.model_data
    before = {k: v.numpy().copy() for k, v in md.model.state_dict().items()}
    target = tmp_path / "early.safetensors"
    s.save_checkpoint(target)
    md.load_weights({k: v * 0.5 for k, v in before.items()})   # what a training snapshot does
    assert s.analyses.saver.wait()
    assert md.unsaved and md.source == target   # the file holds the weights asked for, not these
    saved = load_checkpoint(target).model.state_dict()
    assert all(np.array_equal(saved[k].numpy(), v) for k, v in before.items())


def test_a_failed_save_says_why_and_the_next_one_still_runs(window, qtbot, tmp_path):
    s = train_briefly(window)
    blocker_file = tmp_path / "a_file"
    blocker_file.write_text("not a folder")
    with qtbot.waitSignal(s.errorRaised, timeout=30_000) as err:
        s.save_checkpoint(blocker_file / "m.safetensors")   # a folder that is a file: the write fails
        s.save_checkpoint(tmp_path / "ok.safetensors")
    assert "Cannot write" in err.args[0] and "\n" not in err.args[0]
    assert s.analyses.saver.wait()
    assert (tmp_path / "ok.safetensors").is_file() and not s.model_data.unsaved


def test_closing_the_window_waits_for_the_saves_asked_for(window, slow_saves, tmp_path):
    s = train_briefly(window)
    targets = [tmp_path / "first.safetensors", tmp_path / "last.safetensors"]
    for t in targets:
        s.save_checkpoint(t)
    assert s.analyses.saver.busy
    window.close()
    assert [c[0] for c in slow_saves] == targets
    assert all(load_checkpoint(t).history for t in targets)
