"""Unsaved work is never dropped without a question: a model trained in the window, or a β sweep no
folder holds, before File → Examples, a sweep point, another checkpoint, or quitting. The question
is answered here by replacing the window's one blocking call (`window.unsaved.ask`)."""

import numpy as np
import pytest
from gui_helpers import train_briefly, wait_idle
from PySide6 import QtWidgets

from latentlab.core.files.bundled import default_checkpoint, examples
from latentlab.core.files.checkpoint import load_checkpoint

Button = QtWidgets.QMessageBox.StandardButton


@pytest.fixture
def asked(window, monkeypatch):
    """Every question asked, answered with `asked.answer` (Cancel unless a test says otherwise)."""
    class Calls(list):
        answer = Button.Cancel

    calls = Calls()

    def ask(action, lost):
        calls.append((action, lost))
        return calls.answer

    monkeypatch.setattr(window.unsaved, "ask", ask)
    return calls


def test_nothing_is_asked_without_unsaved_work(window, qtbot, asked):
    example = examples()[-1]
    with qtbot.waitSignal(window.session.loaded, timeout=120_000):
        window.examples_menu.actions()[-1].trigger()
    assert asked == [] and window.session.model_data.dataset_spec == example.dataset
    assert not window.isWindowModified()
    window.close()
    assert asked == [] and not window.isVisible()


def test_cancel_keeps_the_trained_model_and_discard_lets_the_example_open(window, qtbot, asked):
    s = window.session
    train_briefly(window)
    assert window.isWindowModified()   # the title's [*] shows as "*"
    source = s.model_data.source
    weights = {k: v.clone() for k, v in s.model_data.model.state_dict().items()}
    window.examples_menu.actions()[-1].trigger()
    wait_idle(s)
    assert len(asked) == 1 and "model trained here" in asked[0][1][0]
    assert s.model_data.unsaved and s.model_data.source == source
    assert all(np.array_equal(weights[k], v) for k, v in s.model_data.model.state_dict().items())

    asked.answer = Button.Discard
    with qtbot.waitSignal(s.loaded, timeout=120_000):
        window.examples_menu.actions()[-1].trigger()
    assert len(asked) == 2 and s.model_data.source.name == examples()[-1].file.name and not window.isWindowModified()


def test_save_writes_the_model_then_opens_the_checkpoint(window, qtbot, asked, monkeypatch, tmp_path):
    s = window.session
    train_briefly(window)
    target = tmp_path / "trained.safetensors"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    asked.answer = Button.Save
    with qtbot.waitSignal(s.loaded, timeout=120_000):
        window.open_checkpoint(default_checkpoint())
    assert target.is_file() and load_checkpoint(target).history   # the trained model, with its history
    assert len(asked) == 1 and s.model_data.source == default_checkpoint()


def test_a_cancelled_save_dialog_cancels_the_action(window, qtbot, asked, monkeypatch):
    s = window.session
    train_briefly(window)
    trained = len(s.model_data.history)
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: ("", ""))
    asked.answer = Button.Save
    window.open_checkpoint(default_checkpoint())
    wait_idle(s)
    assert s.model_data.unsaved and len(s.model_data.history) == trained   # still the trained model


def test_quitting_asks_about_the_model_and_the_sweep(window, qtbot, asked):
    s = window.session
    train_briefly(window)
    point = sweep_point(s)
    s.runs.set_sweep([point], saved=False)
    window.close()   # Cancel: the window stays
    assert window.isVisible() and len(asked) == 1
    assert any("model trained here" in p for p in asked[0][1]) and any("β sweep of 1 models" in p for p in asked[0][1])
    asked.answer = Button.Discard
    window.close()
    assert not window.isVisible()


def test_a_sweep_point_asks_before_replacing_a_trained_model(window, qtbot, asked):
    s = window.session
    train_briefly(window)
    point = sweep_point(s)
    s.runs.set_sweep([point])
    window.sweep._clicked(None, [FakePoint(0)])
    assert len(asked) == 1 and asked[0][0] == "load a model of the sweep" and s.model_data.unsaved
    asked.answer = Button.Discard
    window.sweep._clicked(None, [FakePoint(0)])
    wait_idle(s)
    assert not s.model_data.unsaved and "β = 3 of the sweep" in window.windowTitle()


def test_a_new_sweep_asks_before_dropping_an_unsaved_one(window, qtbot, asked):
    s = window.session
    s.runs.set_sweep([sweep_point(s)], saved=False)
    window.sweep.toggle()
    assert len(asked) == 1 and asked[0][0] == "start a new sweep" and not s.runs.busy
    assert len(s.runs.sweep_points) == 1


class FakePoint:
    def __init__(self, i):
        self.i = i

    def data(self):
        return self.i


def sweep_point(s):
    from latentlab.core.models.vae import build_model
    from latentlab.core.training.sweep import SweepPoint

    model = build_model(s.model_data.model.cfg, seed=3).eval() if s.model_data.model.cfg else None
    return SweepPoint(beta=3.0, rate=1.0, distortion=20.0, config=model.cfg,
                      weights={k: v.numpy() for k, v in model.state_dict().items()},
                      history=({"epoch": 1, "beta": 3.0, "recon": 20.0, "kl": 1.0, "elbo": -21.0},))
