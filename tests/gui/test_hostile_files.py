"""Hostile input opened in the real window: checkpoint metadata, the dataset a checkpoint names,
saved settings, models too big to show or train, and closing while a long load runs.

Every case opens (with at most a one-sentence banner) or is refused in one short sentence; nothing
prints a traceback, memory stays bounded (peak RSS growth), and the views draw only clean data.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from gui_helpers import wait_idle
from hostile_metadata import ROW, histories, specs, train_configs, with_meta, worst_cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6 import QtCore

from latentlab.core.files.checkpoint import save_checkpoint
from latentlab.core.models.config import ModelConfig
from latentlab.core.models.vae import build_model
from latentlab.core.text import MESSAGE_LIMIT

K = 3
TRACEBACK = re.compile(r"Traceback|Signal source has been deleted|Error:|Exception")


def peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def use_settings_dir(path) -> None:
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(path))


def make_window(qtbot):
    from latentlab.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    return w


def assert_sentence(msg: str) -> None:
    assert isinstance(msg, str) and 10 < len(msg) <= MESSAGE_LIMIT, repr(msg[:400])
    assert "\n" not in msg and "Traceback" not in msg, repr(msg[:400])
    assert msg.endswith((".", "…", ")")), repr(msg)


class Opened:
    """What one open of a checkpoint produced: loaded or not, and every banner sentence."""

    def __init__(self, window, path):
        s = window.session
        self.messages, self.loads = [], []
        slots = ((s.errorRaised, self.messages.append), (s.notice, self.messages.append), (s.loaded, self._loaded))
        for signal, slot in slots:
            signal.connect(slot)
        try:
            window.open_checkpoint(path)
            wait_idle(s, 120000)
        finally:
            for signal, slot in slots:
                signal.disconnect(slot)
        assert self.loads or self.messages, "the open ended with neither a model nor a sentence"
        for m in self.messages:
            assert_sentence(m)
        if self.messages:
            assert window.banner.isVisible() and window.banner.label.text() == self.messages[-1]

    def _loaded(self) -> None:
        self.loads.append(1)


def assert_views_clean(window) -> None:
    """What the window shows after any open: bounded text, only finite curves, a usable model."""
    assert len(window.windowTitle()) <= 160 and len(window.status_label.text()) <= MESSAGE_LIMIT
    assert len(window.banner.label.text()) <= MESSAGE_LIMIT
    curves = window.curves
    assert len(curves.dim_curves) <= 32
    for curve in curves.curves.values():
        x, y = curve.getData()
        if x is not None and len(x):
            assert np.isfinite(x).all() and np.isfinite(y).all()


@pytest.fixture(scope="module")
def base_path(tmp_path_factory):
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=K, hidden=(8,)), seed=0)
    return save_checkpoint(tmp_path_factory.mktemp("hostile") / "base.safetensors", model, dataset="digits",
                           history=[ROW])


@pytest.fixture(scope="module")
def base(base_path):
    import struct

    data = base_path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


@pytest.fixture(scope="module")
def shared_window(qapp, tmp_path_factory, base_path):
    """One window for the many opens of the fuzz and the named cases (each open replaces the model)."""
    use_settings_dir(tmp_path_factory.mktemp("settings"))
    from latentlab.gui.main_window import MainWindow

    w = MainWindow()
    w.show()
    opened = Opened(w, base_path)
    assert opened.loads and not opened.messages
    yield w
    w.session.shutdown()
    w.close()
    w.deleteLater()


# ----- the fuzz ------------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=histories, spec=specs, train_config=train_configs, model_spec=st.one_of(st.none(), st.text(max_size=10)))
def test_fuzzed_metadata_opens_in_the_window_or_is_refused(shared_window, qtbot, capfd, tmp_path_factory,
                                                           history, spec, train_config, model_spec, base):
    before = peak_rss_kb()
    path = tmp_path_factory.mktemp("fuzz") / "case.safetensors"
    path.write_bytes(with_meta(base, history=json.dumps(history), dataset=spec,
                               train_config=json.dumps(train_config), model_spec=model_spec))
    opened = Opened(shared_window, path)
    path.unlink()
    # Only optional fields were touched: the weights are good, so it always opens.
    assert opened.loads and shared_window.session.model_data.source == path
    assert_views_clean(shared_window)
    err = capfd.readouterr().err
    assert not TRACEBACK.search(err), err[-3000:]
    assert peak_rss_kb() - before < 1_000_000   # files up to ~16 MB; a leak or blow-up is gigabytes


# ----- named regressions ---------------------------------------------------------------------------

@pytest.mark.parametrize("row, why", [
    (dict(ROW, epoch="1"), "epoch"), (dict(ROW, beta="1"), "beta"), ({"epoch": 1}, "no"),
    (dict(ROW, recon=math.nan), "finite"), (dict(ROW, kl=math.inf), "finite"),
    (dict(ROW, kl_per_dim=[0.1] * 200_000), "200,000 values"),
], ids=["string_epoch", "string_beta", "missing_keys", "nan", "infinity", "huge_kl_per_dim"])
def test_a_bad_history_row_opens_with_empty_curves_and_one_sentence(shared_window, qtbot, capfd, tmp_path, base, row, why):
    path = tmp_path / "m.safetensors"
    # json.dumps writes NaN and Infinity as a hostile writer may.
    path.write_bytes(with_meta(base, history=json.dumps([ROW, row])))
    opened = Opened(shared_window, path)
    assert opened.loads and len(opened.messages) == 1 and "history ignored" in opened.messages[0]
    assert why in opened.messages[0]
    assert shared_window.session.model_data.history == []
    x, _ = shared_window.curves.curves["recon"].getData()
    assert x is None or len(x) == 0
    assert_views_clean(shared_window)
    assert not TRACEBACK.search(capfd.readouterr().err)


def test_a_megabyte_dataset_spec_opens_on_the_default_data(shared_window, qtbot, capfd, tmp_path, base):
    path = tmp_path / "m.safetensors"
    path.write_bytes(with_meta(base, dataset="images:/" + "a" * 5_000_000))
    opened = Opened(shared_window, path)
    assert opened.loads and shared_window.session.model_data.dataset_spec == "digits"
    assert any("dataset ignored" in m for m in opened.messages)
    assert_views_clean(shared_window)
    assert not TRACEBACK.search(capfd.readouterr().err)


def test_a_megabyte_dataset_spec_typed_in_gives_bounded_text(shared_window, qtbot, capfd):
    s = shared_window.session
    messages = []
    s.errorRaised.connect(messages.append)
    try:
        shared_window.open_dataset_spec("images:/" + "a" * 5_000_000)
        assert len(shared_window.status_label.text()) <= MESSAGE_LIMIT   # "Loading dataset …"
        wait_idle(s)
    finally:
        s.errorRaised.disconnect(messages.append)
    assert len(messages) == 1 and "…" in messages[0]
    assert_sentence(messages[0])
    assert_views_clean(shared_window)
    assert not TRACEBACK.search(capfd.readouterr().err)


def test_a_long_file_name_gives_a_bounded_title(shared_window, qtbot, tmp_path, base_path):
    path = tmp_path / ("m" * 240 + ".safetensors")
    path.write_bytes(base_path.read_bytes())
    opened = Opened(shared_window, path)
    assert opened.loads and "…" in shared_window.windowTitle() and len(shared_window.windowTitle()) <= 160
    assert shared_window.windowTitle().endswith("on digits")


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("spec", ["images:/", "npz:/dev/zero", "mnist:/proc", "npz:{fifo}", "images:{fifo}",
                                  "mnist:{missing}"])
def test_a_dataset_the_checkpoint_names_is_only_a_suggestion(shared_window, qtbot, capfd, tmp_path, base, fifo, spec):
    path = tmp_path / "m.safetensors"
    path.write_bytes(with_meta(base, dataset=spec.format(fifo=fifo, missing=tmp_path / "gone")))
    opened = Opened(shared_window, path)
    assert opened.loads and shared_window.session.model_data.dataset_spec == "digits"
    assert len(opened.messages) == 1 and "embedded digits data instead" in opened.messages[0]
    s = shared_window.session
    assert s.latent.points.shape == (len(s.model_data.data.x_train), K)
    assert not TRACEBACK.search(capfd.readouterr().err)


@pytest.mark.parametrize("named, why", [("mnist:{gone}", "cannot be found"), ("digits", "(1, 8, 8)")],
                         ids=["missing", "other_image_shape"])
def test_a_checkpoint_whose_data_does_not_fit_opens_without_data(shared_window, qtbot, capfd, tmp_path, named, why):
    model = build_model(ModelConfig(image_shape=(1, 28, 28), latent_dim=2, hidden=(8,)), seed=0)
    path = save_checkpoint(tmp_path / "mnist.safetensors", model, dataset=named.format(gone=tmp_path / "gone"))
    w, s = shared_window, shared_window.session
    opened = Opened(w, path)
    assert opened.loads and len(opened.messages) == 1 and "without data" in opened.messages[0]
    assert why in opened.messages[0]
    assert s.model_data.data is None and s.latent.points is None and w.latent.plot.cloud.count() == 0
    assert w.windowTitle().endswith("on no data") and w.controls.dataset.currentText() == ""
    s.set_z([0.5, -0.5])   # the model itself works: decoding needs no data
    assert s.cursor.image.shape == (1, 28, 28)
    for i in range(w.tools.count()):   # every tool shows the model without data, or nothing
        w.tools.setCurrentIndex(i)
        wait_idle(s)
    w.tools.setCurrentIndex(0)
    s.runs.train()
    assert "dataset" in w.banner.label.text()
    with qtbot.waitSignal(s.loaded, timeout=60000):
        w.open_dataset_spec("digits")   # a dataset opened afterwards gets a model of its own shape
    wait_idle(s)
    assert s.model_data.dataset_spec == "digits" and s.latent.points.shape[0] == len(s.model_data.data.x_train)
    assert not TRACEBACK.search(capfd.readouterr().err)


def test_a_k_100000_checkpoint_is_refused_in_one_sentence(shared_window, qtbot, capfd, tmp_path):
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=100_000, hidden=(4,)), seed=0)
    path = save_checkpoint(tmp_path / "k.safetensors", model, dataset="digits")
    del model
    s = shared_window.session
    kept = s.model_data.model
    before = peak_rss_kb()
    opened = Opened(shared_window, path)
    assert not opened.loads and len(opened.messages) == 1 and "100,000 latent dimensions" in opened.messages[0]
    assert s.model_data.model is kept
    assert peak_rss_kb() - before < 500_000   # the weights are ~5 MB; encoding 1,438 × 100,000 would be ~1 GB
    assert not TRACEBACK.search(capfd.readouterr().err)


def test_training_that_cannot_fit_is_refused_before_building(shared_window, qtbot, monkeypatch):
    from latentlab.core.training import budget
    from latentlab.gui.state.runs import TrainRequest

    s = shared_window.session
    kept, version = s.model_data.model, s.model_data.version
    monkeypatch.setattr(budget, "available_bytes", lambda device="cpu": 1000)
    messages = []
    s.errorRaised.connect(messages.append)
    try:
        s.runs.train(TrainRequest(latent_dim=K, hidden=(8,), epochs=1, warm_start=False))
    finally:
        s.errorRaised.disconnect(messages.append)
    assert not s.runs.busy and s.model_data.model is kept and s.model_data.version == version
    assert len(messages) == 1 and "needs about" in messages[0] and "--" not in messages[0]
    assert_sentence(messages[0])


def test_a_dataset_whose_model_cannot_fit_is_refused_before_building_it(shared_window, qtbot, monkeypatch):
    from latentlab.core.models import vae as model
    from latentlab.core.training import budget

    s = shared_window.session
    kept, spec = s.model_data.model, s.model_data.dataset_spec
    built = []
    monkeypatch.setattr(budget, "available_bytes", lambda device="cpu": 1000)
    monkeypatch.setattr(model, "build_model", lambda *a, **k: built.append(a))
    messages = []
    s.errorRaised.connect(messages.append)
    try:
        shared_window.open_dataset_spec("sprites")   # other images than the open model's: a new model
        wait_idle(s)
    finally:
        s.errorRaised.disconnect(messages.append)
    assert built == [] and s.model_data.model is kept and s.model_data.dataset_spec == spec
    assert len(messages) == 1 and messages[0].startswith("Showing this model on"), messages
    assert_sentence(messages[0])


# ----- saved settings ------------------------------------------------------------------------------

GARBAGE_SETTINGS = """[General]
epochs=100000000000000000000
lr=nan
warm_start=@Variant(\\0\\0\\0\\x7f\\0\\0\\0\\x10QPersistentModelIndex\\0)
geometry=@ByteArray(garbage\\x01\\x02)
recent=/dev/zero, {missing}, {folder}, {good}
"""


@pytest.mark.parametrize("geometry", ["@ByteArray(garbage\\x01\\x02)", "not bytes at all", "1, 2, 3"])
def test_garbage_settings_open_the_window_with_defaults(qtbot, tmp_path, base_path, geometry, capfd):
    from latentlab.gui.state.runs import TrainRequest

    folder = tmp_path / "settings" / "latentlab"
    folder.mkdir(parents=True)
    text = GARBAGE_SETTINGS.format(missing=tmp_path / "gone.safetensors", folder=tmp_path, good=base_path)
    (folder / "latentlab.ini").write_text(text.replace("@ByteArray(garbage\\x01\\x02)", geometry))
    use_settings_dir(tmp_path / "settings")
    w = make_window(qtbot)
    r, default = w.session.runs.request, TrainRequest()
    assert (r.epochs, r.lr, r.warm_start) == (default.epochs, default.lr, default.warm_start)
    assert "saved setting" in w.status_label.text() or "Ignored" in w.status_label.text()
    # Recent files are checked when the list is used: only the regular file is offered.
    w.recent_menu.aboutToShow.emit()
    assert [a.toolTip() for a in w.recent_menu.actions()] == [str(base_path)]
    w.close()
    assert not TRACEBACK.search(capfd.readouterr().err)


def test_settings_saved_by_the_window_read_back(qtbot, tmp_path):
    use_settings_dir(tmp_path / "settings")
    w = make_window(qtbot)
    w.session.runs.set_request(epochs=7, lr=0.002, warm_start=False)
    w.close()
    w2 = make_window(qtbot)
    r = w2.session.runs.request
    assert (r.epochs, r.lr, r.warm_start) == (7, 0.002, False)
    w2.close()


# ----- closing while a long load runs -------------------------------------------------------------

def test_closing_during_a_long_load_cancels_it(qtbot, tmp_path, base_path, monkeypatch, capfd):
    from latentlab.core.data import specs as core_data
    from latentlab.core.errors import Cancelled

    started, outcome = threading.Event(), []

    def slow_load(spec, *, seed=0, should_stop=None):
        started.set()
        for _ in range(6000):   # a 128k-image folder: about a minute unless stopped
            if should_stop is not None and should_stop():
                outcome.append("cancelled")
                raise Cancelled("Loading was cancelled.")
            time.sleep(0.01)
        outcome.append("ran to the end")
        raise AssertionError("the load was never told to stop")

    monkeypatch.setattr(core_data, "load_dataset", slow_load)
    use_settings_dir(tmp_path / "settings")
    w = make_window(qtbot)
    errors = []
    w.session.errorRaised.connect(errors.append)
    w.session.load(checkpoint=base_path, dataset="images:/a/slow/folder")
    qtbot.waitUntil(started.is_set, timeout=30000)
    w.close()
    # close() returned with the pool idle, and the load ended because it was told to.
    assert outcome == ["cancelled"]
    assert QtCore.QThreadPool.globalInstance().activeThreadCount() == 0
    w.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    QtCore.QCoreApplication.processEvents()
    assert errors == []
    assert not TRACEBACK.search(capfd.readouterr().err)


def test_closing_during_a_long_encode_cancels_it(qtbot, tmp_path, base_path, monkeypatch, capfd):
    from latentlab.core.inference import analysis
    from latentlab.gui.state import work

    use_settings_dir(tmp_path / "settings")
    w = make_window(qtbot)
    w.session.load(checkpoint=base_path)
    wait_idle(w.session)
    real, calls = analysis.encode, []

    def slow_encode(model, x, batch=4096):
        calls.append(len(x))
        time.sleep(0.05)
        return real(model, x, batch)

    monkeypatch.setattr(analysis, "encode", slow_encode)
    monkeypatch.setattr(work, "ENCODE_CHUNK", 1)   # 1,438 chunks: over a minute unless stopped
    w.session.encode_all()
    qtbot.waitUntil(lambda: len(calls) > 0, timeout=30000)
    w.close()
    assert QtCore.QThreadPool.globalInstance().activeThreadCount() == 0
    assert 0 < len(calls) < 400, len(calls)   # stopped at the next chunk, not run to the end
    QtCore.QCoreApplication.processEvents()
    assert not TRACEBACK.search(capfd.readouterr().err)


def test_the_window_exits_promptly_when_closed_mid_load(tmp_path, base_path):
    """The whole process, with a load that only a stop request ends: it exits with no traceback."""
    script = textwrap.dedent(f"""
        import os, sys, threading, time
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6 import QtCore, QtWidgets
        QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, {str(tmp_path)!r})
        from latentlab.core.data import specs as data
        from latentlab.core.errors import Cancelled
        started = threading.Event()
        def slow(spec, *, seed=0, should_stop=None):
            started.set()
            while not should_stop():
                time.sleep(0.01)
            print("cancelled", flush=True)
            raise Cancelled("cancelled")
        data.load_dataset = slow
        app = QtWidgets.QApplication([])
        from latentlab.gui.main_window import MainWindow
        w = MainWindow()
        w.show()
        w.session.load(checkpoint={str(base_path)!r}, dataset="images:/slow")
        def close_when_started():
            if started.is_set():
                w.close()
                app.quit()
            else:
                QtCore.QTimer.singleShot(20, close_when_started)
        QtCore.QTimer.singleShot(20, close_when_started)
        app.exec()
        w.deleteLater()
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
        print("exited", flush=True)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["cancelled", "exited"], result.stdout
    assert not TRACEBACK.search(result.stderr), result.stderr[-3000:]


def test_work_that_cannot_be_interrupted_does_not_hold_the_process(tmp_path, base_path):
    """A load that ignores the stop flag (one large file being read) outlives the close: the
    process leaves without waiting for it and without a traceback."""
    script = textwrap.dedent(f"""
        import os, sys, threading, time
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from pathlib import Path
        from PySide6 import QtCore, QtWidgets
        QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, {str(tmp_path)!r})
        from latentlab.core.data import specs as data
        from latentlab.gui import app as app_module
        from latentlab.gui.state import session
        session.SHUTDOWN_WAIT_MS = 300
        started = threading.Event()
        def stubborn(spec, *, seed=0, should_stop=None):
            started.set()
            time.sleep(30)
            print("finished", flush=True)
            raise RuntimeError("the window is gone")
        data.load_dataset = stubborn
        qapp = QtWidgets.QApplication([])
        def close_when_started():
            if not started.is_set():
                QtCore.QTimer.singleShot(20, close_when_started)
                return
            for w in qapp.topLevelWidgets():
                if w.objectName() == "mainWindow":
                    w.close()
        QtCore.QTimer.singleShot(20, close_when_started)
        sys.exit(app_module.run(checkpoint=Path({str(base_path)!r}), dataset="images:/slow"))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "finished" not in result.stdout   # it did not wait for the load
    assert not TRACEBACK.search(result.stderr), result.stderr[-3000:]


# ----- memory of the worst cases, in a fresh process ---------------------------------------------

def test_the_worst_metadata_costs_the_window_bounded_memory(tmp_path, base, base_path):
    """Peak RSS growth of opening the worst files in a fresh window (the runner's own peak would hide it)."""
    cases = worst_cases(base)
    for name, data in cases.items():
        (tmp_path / f"{name}.safetensors").write_bytes(data)
    big = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=100_000, hidden=(4,)), seed=0)
    save_checkpoint(tmp_path / "k100k.safetensors", big, dataset="digits")
    script = textwrap.dedent(f"""
        import os, resource, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from pathlib import Path
        from PySide6 import QtCore, QtWidgets
        QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, {str(tmp_path)!r})
        app = QtWidgets.QApplication([])
        from latentlab.gui.main_window import MainWindow
        w = MainWindow()
        w.show()
        s = w.session
        messages = []
        s.errorRaised.connect(messages.append)
        s.notice.connect(messages.append)
        def open_and_wait(path):
            w.open_checkpoint(path)
            assert s.wait_until_idle(120000)
        open_and_wait({str(base_path)!r})   # imports and the first encode before measuring
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for name in ("kl", "spec", "rows", "k100k"):
            open_and_wait(Path({str(tmp_path)!r}) / f"{{name}}.safetensors")
            print(name, len(s.model_data.history), len(w.curves.dim_curves), flush=True)
        print("growth_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        print("messages", max(len(m) for m in messages), len(messages))
        w.close()
        w.deleteLater()
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=400)
    assert result.returncode == 0 and not TRACEBACK.search(result.stderr), result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert lines["rows"].split()[0] == "100000"   # the newest rows kept, the curves drawn from them
    growth = int(lines["growth_kb"])
    assert growth < 800_000, result.stdout
    longest, count = map(int, lines["messages"].split())
    assert longest <= MESSAGE_LIMIT and count >= 4, result.stdout


def test_a_wide_latent_draws_at_most_32_dimension_curves(shared_window, qtbot, tmp_path):
    k = 200
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=k, hidden=(8,)), seed=0)
    rng = np.random.default_rng(0)
    history = [dict(ROW, epoch=e, kl_per_dim=rng.uniform(0, 0.01, k).tolist()) for e in range(1, 6)]
    history[-1]["kl_per_dim"][150] = 5.0   # the newest epoch's largest KL is among the drawn curves
    path = save_checkpoint(tmp_path / "wide.safetensors", model, dataset="digits", history=history)
    opened = Opened(shared_window, path)
    assert opened.loads and not opened.messages
    curves = shared_window.curves.dim_curves
    assert len(curves) == 32 and "z151" in [c.opts["name"] for c in curves]
    x, y = curves[0].getData()
    assert list(x) == [1, 2, 3, 4, 5] and np.isfinite(y).all()
