"""The explorer window driven through its real widgets (offscreen)."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from gui_helpers import click_view, drag_view, wait_idle, where_click_lands
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest

from latentlab.gui.state.session import TrainRequest

NAMES = ("mainWindow", "latentView", "decodedView", "betaSlider", "trainButton", "trainProgress", "curvesView")


def find(window, name):
    if window.objectName() == name:
        return window
    w = window.findChild(QtCore.QObject, name)
    assert w is not None, name
    return w


def test_contract_names_and_default_model_loaded(window):
    for name in NAMES:
        find(window, name)
    s = window.session
    assert s.model_data.data.spec == "digits" and s.model_data.model.latent_dim == 2
    assert window.latent.plot.cloud.count() == len(s.model_data.data.x_train)
    assert len(s.model_data.history) > 0
    recon_curve = window.curves.curves["recon"]
    assert len(recon_curve.xData) == len(s.model_data.history)
    # The training form shows the request held in the state: the loaded model's shape.
    c, r = window.controls, s.runs.request
    assert c.hidden.text() == ",".join(map(str, s.model_data.model.cfg.hidden)) and r.hidden == s.model_data.model.cfg.hidden
    assert (c.latent_dim.value(), c.epochs.value(), c.lr.value()) == (r.latent_dim, r.epochs, r.lr)


def test_click_decodes_the_clicked_point(window, qtbot):
    plot = find(window, "latentView")
    decoded = find(window, "decodedView")
    before = decoded.current_image.copy()
    click_view(plot, 1.5, -1.0)
    z = window.session.cursor.z
    assert z == pytest.approx([1.5, -1.0], abs=0.05)
    assert not np.allclose(decoded.current_image, before)
    landed = where_click_lands(plot, 1.5, -1.0)[0]
    assert f"{landed:+.2f}" in decoded.z_label.text() and "log p(z)" in decoded.z_label.text()
    assert window.latent.plot.marker.data["x"][0] == pytest.approx(z[0])


def test_drag_decodes_continuously(window, qtbot):
    plot = find(window, "latentView")
    seen = []
    window.session.cursor.changed.connect(lambda: seen.append(window.session.cursor.z.copy()))
    drag_view(plot, [(-2.0, 0.0), (-1.0, 0.5), (0.0, 1.0), (1.0, 1.5)])
    assert len(seen) >= 3
    assert seen[-1] == pytest.approx([1.0, 1.5], abs=0.05)


def test_beta_slider_key_press_retrains_and_curves_mark_it(window, qtbot):
    s = window.session
    window.controls.epochs.setValue(2)
    slider = find(window, "betaSlider")
    n_before = len(s.model_data.history)
    markers_before = len(window.curves.markers)
    slider.setFocus()
    with qtbot.waitSignal(s.runs.trainingChanged, timeout=5000):
        for _ in range(60):
            QTest.keyClick(slider, QtCore.Qt.Key.Key_Right)
    new_beta = window.controls.beta.value()
    assert new_beta > 1.5
    wait_idle(s)
    assert len(s.model_data.history) == n_before + 2
    assert s.model_data.history[-1]["beta"] == pytest.approx(new_beta)
    assert len(window.curves.markers) == markers_before + 1
    assert len(window.curves.curves["kl"].xData) == len(s.model_data.history)


def test_train_then_stop(window, qtbot):
    s = window.session
    window.controls.epochs.setValue(100000)
    button = find(window, "trainButton")
    snaps = []
    s.runs.progress.connect(snaps.append)
    QTest.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
    assert s.runs.training and button.text() == "Stop"
    qtbot.waitUntil(lambda: len(snaps) >= 2, timeout=20000)
    assert find(window, "trainProgress").isVisible()
    assert "samples/s" in window.status_label.text()
    QTest.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not s.runs.training, timeout=30000)
    assert button.text() == "Train"
    assert snaps[-1].cancelled


def test_closing_during_training_leaves_no_thread(qtbot, tmp_path, qtlog):
    from latentlab.gui.main_window import MainWindow

    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(tmp_path))
    threads_before = threading.active_count()
    w = MainWindow()
    w.show()
    with qtbot.waitSignal(w.session.loaded, timeout=60000):
        w.session.load()
    w.controls.epochs.setValue(100000)
    w.controls.button.click()
    qtbot.waitUntil(lambda: w.session.runs.last_snapshot is not None, timeout=20000)
    w.close()
    assert QtCore.QThreadPool.globalInstance().activeThreadCount() == 0
    # The run's end is announced (its finished signal was queued before the pool drained).
    qtbot.waitUntil(lambda: not w.session.runs.training, timeout=5000)
    assert w.controls.button.text() == "Train"
    w.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    assert threading.active_count() <= threads_before + 1
    assert not [r for r in qtlog.records if "Destroyed while thread" in r.message]


def test_broken_checkpoint_shows_error_and_keeps_model(window, qtbot, tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 3 + b"not a checkpoint" * 10)
    model = window.session.model_data.model
    with qtbot.waitSignal(window.session.errorRaised, timeout=10000) as blocker:
        window.open_checkpoint(bad)
    message = blocker.args[0]
    assert "broken.safetensors" in message and "\n" not in message
    assert window.banner.isVisible() and window.banner.label.text() == message
    assert window.session.model_data.model is model
    click_view(window.latent.plot, 0.5, 0.5)  # still usable
    assert window.session.cursor.z == pytest.approx([0.5, 0.5], abs=0.05)


def test_divergence_in_the_gui_keeps_finite_weights(window, qtbot):
    s = window.session
    with qtbot.waitSignal(s.errorRaised, timeout=30000) as blocker:
        s.runs.train(TrainRequest(epochs=5, lr=1e6, beta=1.0))
    assert "diverged" in blocker.args[0]
    wait_idle(s)
    import torch

    assert all(torch.isfinite(p).all() for p in s.model_data.model.parameters())
    click_view(window.latent.plot, 0.0, 0.0)
    assert np.isfinite(window.decoded.current_image).all()


def test_wider_latent_lifts_clicks_through_the_anchor(window, qtbot):
    s = window.session
    s.runs.train(TrainRequest(latent_dim=4, epochs=2, warm_start=False, hidden=(64,)))
    wait_idle(s)
    assert s.model_data.model.latent_dim == 4 and s.latent.points.shape[1] == 4
    panel = window.latent
    assert panel.dim_x.isVisible() and panel.anchor_combo.currentText() == "origin"
    panel.dim_y.setValue(3)
    assert s.latent.projection.dims == (0, 2)
    click_view(panel.plot, 1.0, -1.0)
    assert s.cursor.z == pytest.approx([1.0, 0.0, -1.0, 0.0], abs=0.05)
    panel.set_method("pca")
    assert s.latent.projection.kind == "pca" and panel.projection_combo.currentData() == "pca"
    assert np.allclose(s.latent.projection.basis.T @ s.latent.projection.basis, np.eye(2), atol=1e-6)


def test_export_view_and_settings_persist(window, qtbot, tmp_path):
    out = tmp_path / "view.png"
    assert window.export_view(out)
    img = QtGui.QImage(str(out))
    assert img.width() > 100 and img.height() > 100
    window.controls.epochs.setValue(7)
    window.close()
    from latentlab.gui.main_window import MainWindow

    again = MainWindow()
    qtbot.addWidget(again)
    assert again.controls.epochs.value() == 7


def isolated_env(tmp_path):
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}


def test_screenshot_command_renders_the_loaded_window(tmp_path):
    out = tmp_path / "shot.png"
    result = subprocess.run([sys.executable, "-m", "latentlab", "gui", "--screenshot", str(out)],
                            capture_output=True, text=True, timeout=180, env=isolated_env(tmp_path))
    assert result.returncode == 0, result.stderr
    img = QtGui.QImage(str(out))
    assert img.width() >= 1200 and img.height() >= 800
    # The scatter is drawn: many distinct colours, not a blank plot.
    colours = {img.pixel(x, y) for x in range(0, 900, 3) for y in range(60, 640, 3)}
    assert len(colours) > 12


def test_screenshot_with_a_bad_checkpoint_says_so(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"junk")
    result = subprocess.run([sys.executable, "-m", "latentlab", "gui", "--checkpoint", str(bad), "--screenshot",
                             str(tmp_path / "s.png")], capture_output=True, text=True, timeout=180,
                            env=isolated_env(tmp_path))
    assert result.returncode == 2
    assert "x.safetensors" in result.stderr and "Traceback" not in result.stderr


def test_hover_shows_the_nearest_points_label_and_image(window, qtbot):
    from gui_helpers import send_mouse, view_to_widget

    s, plot = window.session, window.latent.plot
    i = 17
    x, y = s.latent.points[i]
    QTest.qWait(20)
    send_mouse(plot.viewport(), QtCore.QEvent.Type.MouseMove, view_to_widget(plot, x, y), QtCore.Qt.MouseButton.NoButton)
    qtbot.waitUntil(plot.hover.isVisible, timeout=2000)
    nearest = int(np.argmin(((s.latent.points - [x, y]) ** 2).sum(1)))
    assert plot.hover.text.text() == f"label {s.model_data.data.label_names[s.model_data.data.y_train[nearest]]}"
    assert plot.hover.image.pixmap().width() == 64
    # Far from every point the card goes away.
    QTest.qWait(20)
    send_mouse(plot.viewport(), QtCore.QEvent.Type.MouseMove, view_to_widget(plot, 3.2, 3.2), QtCore.Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: not plot.hover.isVisible(), timeout=2000)


def test_dropping_a_checkpoint_opens_it(window, qtbot, tmp_path):
    from latentlab.core.files.checkpoint import save_checkpoint
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.models.vae import build_model

    path = tmp_path / "dropped.safetensors"
    save_checkpoint(path, build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=(32,)), seed=1),
                    dataset="digits", history=[{"epoch": 1, "beta": 1.0, "recon": 30.0, "kl": 2.0, "elbo": -32.0}])
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(path))])
    pos = QtCore.QPointF(200, 200)
    enter = QtGui.QDragEnterEvent(pos.toPoint(), QtCore.Qt.DropAction.CopyAction, mime,
                                  QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(pos, QtCore.Qt.DropAction.CopyAction, mime, QtCore.Qt.MouseButton.LeftButton,
                            QtCore.Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.session.loaded, timeout=30000):
        QtWidgets.QApplication.sendEvent(window, drop)
    assert window.session.model_data.model.latent_dim == 3 and window.session.model_data.source == path
    assert "dropped.safetensors" in window.windowTitle()
    assert window.recent_menu.actions()[0].text() == str(path)


def test_losses_legend_leaves_the_curves_visible(window, qtbot):
    """The legend sits where the curves are not: no point of any loss curve is under it."""
    curves = window.curves
    window.tools.setCurrentWidget(curves)
    curves.setCurrentWidget(curves.losses)
    qtbot.waitUntil(lambda: curves.losses.isVisible() and curves.curves["neg_elbo"].xData is not None, timeout=5000)
    QtWidgets.QApplication.processEvents()
    vb = curves.losses.getPlotItem().getViewBox()
    legend = curves.losses.getPlotItem().legend
    box = vb.mapSceneToView(legend.mapToScene(legend.boundingRect())).boundingRect()
    for curve in curves.curves.values():
        x, y = curve.xData, curve.yData
        inside = (x >= box.left()) & (x <= box.right()) & (y >= box.top()) & (y <= box.bottom())
        assert not inside.any(), f"{curve.name()} passes under the legend"


def test_missing_x11_libraries_are_one_sentence(monkeypatch, capsys):
    """Qt's X11 plugin aborts the process when a library it links is missing: latentlab names the
    packages first, in one line, and opens nothing."""
    import ctypes

    from latentlab.gui import app

    real = ctypes.CDLL

    def cdll(name, *args, **kwargs):
        if name in ("libxcb-cursor.so.0", "libxcb-icccm.so.4"):
            raise OSError(f"{name}: cannot open shared object file")
        return real(name, *args, **kwargs)

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", cdll)
    monkeypatch.setattr(app, "X11_LIBRARIES", {"libc.so.6": "libc6", "libxcb-cursor.so.0": "libxcb-cursor0",
                                               "libxcb-icccm.so.4": "libxcb-icccm4"})
    assert app.run() == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("latentlab: error: ") and "\n" not in err
    assert "apt-get install libxcb-cursor0 libxcb-icccm4)" in err and "libc6" not in err
    monkeypatch.setattr(app, "X11_LIBRARIES", {"libc.so.6": "libc6"})
    assert app._missing_display_library(False) is None
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(app, "X11_LIBRARIES", {"libxcb-cursor.so.0": "libxcb-cursor0"})
    assert app._missing_display_library(False) is None   # no X11 plugin involved
