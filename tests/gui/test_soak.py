"""Soak of the GUI: rapid β changes and Train/Stop cycles, closing mid-training, memory over many
runs, and thousands of random clicks and drags on the latent view while training runs.

Everything goes through the real widgets (the β slider and its spin box, the Train/Stop button,
mouse events on the latent plot). pytest-qt fails a test on any exception raised in the Qt event
loop, which is left on here: a soak that only "did not crash" must also not have thrown.
"""

from __future__ import annotations

import gc
import random
import threading
import warnings

import numpy as np
import pytest
from gui_helpers import click_view, send_mouse, view_to_widget, wait_idle
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

pytestmark = pytest.mark.slow   # seconds each; `-m "not slow"` skips them locally

LEFT = QtCore.Qt.MouseButton.LeftButton
NO_MOD = QtCore.Qt.KeyboardModifier.NoModifier
SHIFT = QtCore.Qt.KeyboardModifier.ShiftModifier
Key = QtCore.Qt.Key


def pool() -> QtCore.QThreadPool:
    return QtCore.QThreadPool.globalInstance()


def thread_warnings(qtlog) -> list[str]:
    """Qt's complaints about threads: a QThread destroyed while running, timers across threads, ..."""
    return [r.message for r in qtlog.records
            if "thread" in r.message.lower() or "Destroyed while" in r.message]


def rss_mb() -> float | None:
    """Resident set size of this process in MiB (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


@pytest.fixture
def train_spy(monkeypatch):
    """Wraps core.training.train (which the session imports at call time) to count the training
    runs that are live at once, measured inside the worker threads themselves."""
    import latentlab.core.training.loop as training

    real = training.train
    lock = threading.Lock()
    state = {"live": 0, "max": 0, "runs": 0}

    def spy(*args, **kwargs):
        with lock:
            state["live"] += 1
            state["runs"] += 1
            state["max"] = max(state["max"], state["live"])
        try:
            yield from real(*args, **kwargs)
        finally:
            with lock:
                state["live"] -= 1

    monkeypatch.setattr(training, "train", spy)
    return state


# ----- rapid β changes and Train/Stop -----------------------------------------------------------

def test_rapid_beta_changes_and_train_stop_cycles(window, qtbot, qtlog, train_spy):
    from latentlab.gui.views.training import BETA_DEBOUNCE_MS

    s = window.session
    c = window.controls
    slider = window.findChild(QtWidgets.QSlider, "betaSlider")
    button = window.findChild(QtWidgets.QPushButton, "trainButton")
    box = c.beta.box
    rng = random.Random(20240611)
    errors, finals = [], []
    s.errorRaised.connect(errors.append)
    s.runs.progress.connect(lambda snap: finals.append(bool(snap.cancelled)) if snap.done else None)
    counts = {"slider": 0, "box": 0, "button": 0}
    max_active = 0
    # Between the checks after each action, sample the pool every few milliseconds as well.
    sampled = {"max": 0}
    sampler = QtCore.QTimer(interval=3)
    sampler.timeout.connect(lambda: sampled.__setitem__("max", max(sampled["max"], pool().activeThreadCount())))
    # Warm-up: a process's first run pays for lazy imports (torch._dynamo via fused Adam, ~3 s), which
    # would swallow the whole soak; one short run to its end first.
    c.epochs.setValue(1)
    QTest.mouseClick(button, LEFT)
    qtbot.waitUntil(lambda: not s.runs.training, timeout=60000)
    wait_idle(s, stop=True)
    c.epochs.setValue(3)  # ~36 steps on digits: runs often finish on their own between clicks
    train_spy["runs"] = 0
    finals.clear()
    sampler.start()

    for _ in range(30):
        action = rng.choice(("slider", "box", "button", "button"))
        counts[action] += 1
        if action == "slider":
            slider.setFocus()
            key = rng.choice((Key.Key_Right, Key.Key_Left, Key.Key_PageUp, Key.Key_PageDown))
            for _ in range(rng.randint(1, 6)):
                QTest.keyClick(slider, key)
        elif action == "box":
            beta = round(10 ** rng.uniform(-2, 1.3), 3)
            box.setFocus()
            QTest.keyClick(box, Key.Key_A, QtCore.Qt.KeyboardModifier.ControlModifier)
            QTest.keyClicks(box, f"{beta:g}")
            QTest.keyClick(box, Key.Key_Return)  # editingFinished: commits β, which (re)trains
            assert box.value() == pytest.approx(beta, abs=1e-3)
        else:
            QTest.mouseClick(button, LEFT)
        qtbot.wait(rng.randint(0, 100))
        active = pool().activeThreadCount()
        max_active = max(max_active, active)
        assert active <= 2, "more than one training worker + one encode job on the pool"
        assert train_spy["max"] <= 1, "two training runs were live at the same time"
        assert not s.runs.training or not s.jobs.idle, "training, yet no job on the runner"
        assert button.text() == ("Stop" if s.runs.training else "Train")

    sampler.stop()
    assert sampled["max"] <= 2, f"{sampled['max']} pool threads were busy at once"
    # Let a pending slider debounce commit (it would start one more run), then one run to its end.
    qtbot.wait(BETA_DEBOUNCE_MS + 100)
    wait_idle(s, stop=True)
    QTest.mouseClick(button, LEFT)
    assert s.runs.training
    qtbot.waitUntil(lambda: not s.runs.training, timeout=30000)
    assert finals and finals[-1] is False, "the last run did not finish on its own"
    wait_idle(s, stop=True)

    print(f"\nsoak: actions {counts}, training runs {train_spy['runs']}, finished on their own "
          f"{finals.count(False)}, cancelled {finals.count(True)}, max busy pool threads {max(max_active, sampled['max'])}")
    assert train_spy["runs"] >= 5, "the training spy saw almost no runs (does the session still call core.training.train?)"
    assert train_spy["max"] == 1 and train_spy["live"] == 0
    assert pool().activeThreadCount() == 0
    assert s.runs.training is False and s.jobs.idle
    assert button.text() == "Train" and not window.progress.isVisible()
    assert errors == []
    assert not thread_warnings(qtlog)
    import torch

    assert all(torch.isfinite(p).all() for p in s.model_data.model.parameters())
    click_view(window.latent.plot, -0.8, 0.6)
    assert s.cursor.z == pytest.approx([-0.8, 0.6], abs=0.05)
    assert np.isfinite(window.decoded.current_image).all()


def test_stop_also_cancels_a_queued_beta_retrain(window, qtbot):
    """While a run is going, a β commit queues a retrain and stops the run; a click on Stop that
    comes before the run has wound down must win: no training afterwards."""
    s = window.session
    c = window.controls
    c.epochs.setValue(100000)
    QTest.mouseClick(c.button, LEFT)
    qtbot.waitUntil(lambda: s.runs.last_snapshot is not None, timeout=20000)
    c.beta.box.setFocus()
    QTest.keyClick(c.beta.box, Key.Key_A, QtCore.Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(c.beta.box, "4")
    QTest.keyClick(c.beta.box, Key.Key_Return)  # queues a β = 4 retrain, stops the current run
    assert s.runs.training and c.button.text() == "Stop"
    with qtbot.waitSignal(s.runs.trainingChanged, timeout=30000, check_params_cb=lambda running: not running):
        QTest.mouseClick(c.button, LEFT)  # the user says Stop
    # A queued retrain would have started in the same call that announced the end of the run.
    stopped = not s.runs.training
    wait_idle(s, stop=True)
    assert stopped, "a queued retrain started after the user pressed Stop"


# ----- work that overlaps --------------------------------------------------------------------------

def test_a_late_encode_does_not_overwrite_newer_points(window, qtbot, monkeypatch):
    """Run A ends and its full encode starts; run B trains and ends, its encode returns first; then A's
    encode returns. What the scatter shows must be the current model's encoding, not A's."""
    import latentlab.gui.state.work as work
    from latentlab.core.inference.analysis import encode

    real = work.encode_all
    gate = threading.Event()
    state = {"calls": 0, "done": 0}

    def gated(model, x, *args, **kwargs):
        state["calls"] += 1
        if state["calls"] == 1:
            gate.wait(30)  # run A's encode is slow
        try:
            return real(model, x, *args, **kwargs)
        finally:
            state["done"] += 1

    monkeypatch.setattr(work, "encode_all", gated)
    s = window.session
    window.controls.epochs.setValue(1)
    try:
        QTest.mouseClick(window.controls.button, LEFT)  # run A
        qtbot.waitUntil(lambda: not s.runs.training and state["calls"] == 1, timeout=60000)
        QTest.mouseClick(window.controls.button, LEFT)  # run B, warm-started from A
        qtbot.waitUntil(lambda: not s.runs.training and state["done"] == 1, timeout=60000)
        qtbot.waitUntil(lambda: s.latent.full, timeout=30000)  # B's encode result is shown
        assert np.allclose(s.latent.points, encode(s.model_data.model, s.model_data.data.x_train)[0], atol=1e-4)  # right so far
    finally:
        gate.set()
    qtbot.waitUntil(lambda: state["done"] == 2, timeout=30000)
    wait_idle(s, stop=True)
    current, _ = encode(s.model_data.model, s.model_data.data.x_train)
    assert s.latent.points.shape == current.shape
    assert np.allclose(s.latent.points, current, atol=1e-4), "the scatter shows an older model's encoding"


def test_opening_a_checkpoint_while_training(window, qtbot, tmp_path):
    import torch

    from latentlab.core.files.bundled import default_checkpoint
    from latentlab.core.files.checkpoint import load_checkpoint

    s = window.session
    c = window.controls
    c.hidden.setText("64")
    c.warm.setChecked(False)
    c.epochs.setValue(100000)
    QTest.mouseClick(c.button, LEFT)
    qtbot.waitUntil(lambda: s.runs.last_snapshot is not None, timeout=30000)
    assert s.model_data.model.cfg.hidden == (64,)
    with qtbot.waitSignal(s.loaded, timeout=60000):
        window.open_checkpoint(default_checkpoint())
    qtbot.wait(800)  # several live frames of the old run would be published by now
    expected = load_checkpoint(default_checkpoint()).model.state_dict()
    running = s.runs.training
    wait_idle(s, stop=True)
    assert not running, "the old run kept training after another checkpoint was opened"
    assert s.model_data.model.cfg == load_checkpoint(default_checkpoint()).config
    assert all(torch.equal(v, expected[k]) for k, v in s.model_data.model.state_dict().items()), \
        "the opened checkpoint's weights were overwritten by the old run"


# ----- closing mid-training, reopening ----------------------------------------------------------

def open_window(qtbot):
    from latentlab.gui.main_window import MainWindow

    w = MainWindow()
    w.show()
    with qtbot.waitSignal(w.session.loaded, timeout=60000):
        w.session.load()
    return w


@pytest.fixture
def worker_log(monkeypatch):
    """The name of every function a session hands to the thread pool, in order."""
    import superqt.utils

    log = []
    real = superqt.utils.create_worker

    def spy(fn, *args, **kwargs):
        log.append(getattr(fn, "__name__", repr(fn)))
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(superqt.utils, "create_worker", spy)  # the session imports it at call time
    return log


def test_close_during_training_and_reopen_repeatedly(qtbot, tmp_path, qtlog):
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(tmp_path))
    assert pool().waitForDone(30000)
    baseline = threading.active_count()
    rng = random.Random(7)
    for round_ in range(4):
        w = open_window(qtbot)
        x = -1.0 + 0.5 * round_
        click_view(w.latent.plot, x, 0.5)  # the reopened window works
        assert w.session.cursor.z == pytest.approx([x, 0.5], abs=0.05)
        w.controls.epochs.setValue(100000)
        QTest.mouseClick(w.controls.button, LEFT)
        assert w.session.runs.training
        qtbot.waitUntil(lambda w=w: w.session.runs.last_snapshot is not None, timeout=20000)
        qtbot.wait(rng.randint(0, 100))
        w.close()
        assert pool().activeThreadCount() == 0, "closeEvent returned while a worker still ran"
        QtCore.QCoreApplication.processEvents()  # late signals of the stopped run arrive (see the next test)
        assert pool().waitForDone(10000)
        w.deleteLater()
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
        assert pool().waitForDone(10000)
        assert pool().activeThreadCount() == 0
        assert threading.active_count() <= baseline + pool().maxThreadCount()
    gc.collect()
    assert not thread_warnings(qtlog), thread_warnings(qtlog)


def test_a_closed_window_starts_no_more_work(qtbot, tmp_path, worker_log):
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(tmp_path))
    w = open_window(qtbot)
    w.controls.epochs.setValue(100000)
    QTest.mouseClick(w.controls.button, LEFT)
    qtbot.waitUntil(lambda: w.session.runs.last_snapshot is not None, timeout=20000)
    w.close()
    n = len(worker_log)
    QtCore.QCoreApplication.processEvents()  # deliver what the stopped run sent before it ended
    late = worker_log[n:]
    assert pool().waitForDone(10000)
    w.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    assert not late, f"the closed window's session put {late} on the thread pool after closeEvent"


# ----- memory --------------------------------------------------------------------------------------

@pytest.mark.skipif(rss_mb() is None, reason="reads VmRSS from /proc/self/status (Linux only)")
def test_memory_growth_over_train_stop_cycles_is_bounded(window, qtbot):
    s = window.session
    button = window.controls.button
    window.controls.epochs.setValue(100000)
    snaps = []
    s.runs.progress.connect(snaps.append)

    def cycle():
        n = len(snaps)
        QTest.mouseClick(button, LEFT)
        assert s.runs.training
        qtbot.waitUntil(lambda: len(snaps) >= n + 1, timeout=20000)
        QTest.mouseClick(button, LEFT)
        qtbot.waitUntil(lambda: not s.runs.training, timeout=10000)
        wait_idle(s, stop=True)
        snaps.clear()

    cycle()  # warm-up: lazy imports, allocator pools, pyqtgraph caches
    gc.collect()
    before = rss_mb()
    for _ in range(20):
        cycle()
    gc.collect()
    after = rss_mb()
    print(f"\nRSS before {before:.1f} MiB, after 20 train/stop cycles {after:.1f} MiB, growth {after - before:+.1f} MiB")
    assert after - before < 150


def test_finished_jobs_release_their_models(window, qtbot):
    """Every stopped run ends in a full-dataset encode of a deep copy of the model; once it has
    returned, nothing may keep that copy (or the array it encoded) alive."""
    from latentlab.core.models.vae import VAE

    s = window.session
    window.controls.epochs.setValue(100000)
    snaps = []
    s.runs.progress.connect(snaps.append)

    def live_models():
        gc.collect()
        with warnings.catch_warnings():  # isinstance() on some of torch's lazy module objects warns
            warnings.simplefilter("ignore")
            return sum(type(o) is VAE for o in gc.get_objects())

    before = live_models()
    for _ in range(4):
        n = len(snaps)
        QTest.mouseClick(window.controls.button, LEFT)
        qtbot.waitUntil(lambda n=n: len(snaps) >= n + 1, timeout=30000)
        QTest.mouseClick(window.controls.button, LEFT)
        wait_idle(s, stop=True)
    after = live_models()
    print(f"\nlive VAE objects: {before} before, {after} after 4 train/stop cycles")
    assert after <= before + 1, f"{after - before} model copies outlived their jobs"


# ----- random input on the latent view while training ----------------------------------------------

def test_random_clicks_and_drags_on_the_latent_view_while_training(window, qtbot):
    s = window.session
    plot = window.latent.plot
    vp = plot.viewport()
    window.controls.epochs.setValue(100000)
    QTest.mouseClick(window.controls.button, LEFT)
    qtbot.waitUntil(lambda: s.runs.last_snapshot is not None, timeout=20000)
    (x0, x1), (y0, y1) = plot.viewbox.viewRange()
    rng = np.random.default_rng(11)
    snaps = []
    s.runs.progress.connect(snaps.append)
    stats = {"click": 0, "shift": 0, "outside prior": 0, "off widget": 0, "drag": 0}

    def random_point():
        r = rng.random()
        if r < 0.15:  # beyond the prior's 3σ circle, still in view when the view allows
            angle, radius = rng.uniform(0, 2 * np.pi), rng.uniform(3.0, 6.0)
            stats["outside prior"] += 1
            return radius * np.cos(angle), radius * np.sin(angle)
        return rng.uniform(x0, x1), rng.uniform(y0, y1)

    for i in range(2500):
        mod = SHIFT if rng.random() < 0.1 else NO_MOD
        stats["shift"] += mod == SHIFT
        kind = rng.random()
        if kind < 0.85:
            x, y = random_point()
            QTest.mouseClick(vp, LEFT, mod, view_to_widget(plot, x, y))
            stats["click"] += 1
        elif kind < 0.87:  # a click just outside the plot's viewport
            pos = QtCore.QPoint(int(rng.integers(-30, 0)) if rng.random() < 0.5 else vp.width() + int(rng.integers(1, 30)),
                                int(rng.integers(-30, vp.height() + 30)))
            QTest.mouseClick(vp, LEFT, mod, pos)
            stats["off widget"] += 1
        else:
            pts = [view_to_widget(plot, *random_point()) for _ in range(int(rng.integers(2, 6)))]
            send_mouse(vp, QtCore.QEvent.Type.MouseButtonPress, pts[0], LEFT, mod)
            for p in pts[1:]:
                if rng.random() < 0.3:
                    qtbot.wait(11)  # pyqtgraph drops moves closer than 10 ms apart; some get through
                send_mouse(vp, QtCore.QEvent.Type.MouseMove, p, LEFT, mod)
            send_mouse(vp, QtCore.QEvent.Type.MouseButtonRelease, pts[-1], QtCore.Qt.MouseButton.NoButton, mod)
            stats["drag"] += 1
        if i % 10 == 0:
            QtWidgets.QApplication.processEvents()
        if i % 150 == 0:
            qtbot.wait(int(rng.integers(1, 70)))  # let the publish timer deliver training snapshots
    assert s.runs.training, "training stopped during the random input"
    assert snaps, "no training snapshot was published while the view was being clicked"
    wait_idle(s, stop=True)
    print(f"\nrandom input: {stats}, snapshots published meanwhile {len(snaps)}")

    assert np.isfinite(s.cursor.image).all() and np.isfinite(window.decoded.current_image).all()
    before = window.decoded.current_image.copy()
    z_before = None if s.cursor.z is None else s.cursor.z.copy()
    target = (0.7, -0.4) if z_before is None or np.abs(z_before - [0.7, -0.4]).max() > 0.3 else (-1.2, 1.1)
    click_view(plot, *target)
    assert s.cursor.z == pytest.approx(target, abs=0.05)
    assert np.isfinite(window.decoded.current_image).all()
    assert not np.allclose(window.decoded.current_image, before)
