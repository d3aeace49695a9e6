"""The window on laptop screens: from 1024×640 up every panel fits (rows wrap, the Training form and
the tabs' bodies scroll), no tab grows the window, no axis label is clipped; and the small things
a desktop tool is judged by (the hover card, the splitters, the status bar, the Dataset box)."""

import subprocess
import sys

import numpy as np
import pyqtgraph as pg
import pytest
from gui_helpers import wait_idle
from PySide6 import QtCore, QtWidgets

from latentlab.core.files.bundled import examples

SCREENS = [(1024, 640), (1280, 720), (1366, 768), (1920, 1080)]


def settle(window):
    wait_idle(window.session)
    for _ in range(5):
        QtWidgets.QApplication.processEvents()


def each_tab(window):
    tabs = window.tools
    for i in range(tabs.count()):
        tabs.setCurrentIndex(i)
        settle(window)
        yield tabs.tabText(i)


def clipped_axis_labels(window) -> list[str]:
    """Axis labels longer than their axis, on the plots that are shown."""
    out = []
    for plot in window.findChildren(pg.PlotWidget):
        if not plot.isVisible():
            continue
        for side, entry in plot.getPlotItem().axes.items():
            axis = entry["item"]
            if not axis.isVisible() or not axis.label.isVisible() or not axis.labelText:
                continue
            length = axis.size().height() if side in ("left", "right") else axis.size().width()
            if axis.label.boundingRect().width() > length:
                out.append(f"{plot.objectName() or type(plot.parent()).__name__} {side}: {axis.labelText!r}")
    return out


@pytest.fixture(params=["digits K=2", "sprites K=5"])
def loaded(request, window, qtbot):
    if request.param.startswith("sprites"):
        example = next(e for e in examples() if e.dataset == "sprites")
        with qtbot.waitSignal(window.session.loaded, timeout=120_000):
            window.session.load(example.file, example.dataset)
    settle(window)
    return window


def test_no_tab_grows_the_window_on_the_smallest_screen(loaded):
    window = loaded
    window.resize(1024, 640)
    settle(window)
    for name in each_tab(window):
        hint = window.minimumSizeHint()
        assert hint.width() <= 1024 and hint.height() <= 640, (name, hint)
        assert (window.width(), window.height()) == (1024, 640), name
        # the decoded view keeps its caption and the form its Train button
        assert window.decoded.z_label.isVisible() and window.decoded.z_label.height() >= window.decoded.z_label.minimumHeight()
        assert window.controls.button.visibleRegion().boundingRect().height() == window.controls.button.height()


@pytest.mark.parametrize("size", SCREENS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_no_axis_label_is_clipped(window, size):
    window.resize(*size)
    settle(window)
    for name in each_tab(window):
        assert clipped_axis_labels(window) == [], name


def test_values_are_printed_as_they_are_not_scaled_into_a_hidden_label(window):
    for plot in window.findChildren(pg.PlotWidget):
        for entry in plot.getPlotItem().axes.values():
            assert not entry["item"].autoSIPrefix


def test_the_hover_card_never_takes_a_press(window, qtbot):
    plot = window.latent.plot
    at = QtCore.QPoint(plot.width() // 2, plot.height() // 2)
    plot.hover.show_near(at, window.decoded.image_label.pixmap(), "label 3")
    assert plot.hover.isVisible()
    inside = plot.hover.geometry().center()
    assert plot.hover.geometry().contains(inside)
    under = plot.childAt(inside)
    assert under is plot.viewport(), under


def test_the_splitters_are_where_they_were_left(window, qtbot):
    from latentlab.gui.main_window import MainWindow

    window.resize(780, 560)   # inside the offscreen platform's 800×600 screen, which geometry is kept within
    settle(window)
    default = window.vsplit.sizes()
    window.vsplit.setSizes([sum(default), 0])   # the tabs folded away
    left = window.vsplit.sizes()
    assert left != default
    window.close()
    again = MainWindow()
    qtbot.addWidget(again)
    again.show()
    settle(again)
    assert again.vsplit.sizes()[1] == 0 and again.vsplit.sizes() == left
    again.session.shutdown()


def test_the_beta_slider_has_room(window):
    window.resize(1366, 768)
    settle(window)
    assert window.controls.beta.slider.width() >= 150


def test_job_progress_text_is_one_line_that_fits(window):
    bar = window.tasks.bar
    for label in ("Encoding 9,600 images", "Computing the reconstruction error of 1,000,000 points"):
        window.tasks.on_task("job", label, 0.4)
        assert "\n" not in bar.text() and bar.text().endswith("40%")
        assert bar.fontMetrics().horizontalAdvance(bar.text()) <= bar.width() - 8
    window.tasks.on_task("job", "", -1)


def test_the_dataset_box_shows_the_spec_being_opened_then_the_open_one(window, qtbot, tmp_path):
    box = window.controls.dataset
    path = tmp_path / ("a-rather-long-folder-name-" * 4) / "data.npz"
    path.parent.mkdir()
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.random((60, 8, 8), dtype=np.float32), y=rng.integers(0, 3, 60))
    with qtbot.waitSignal(window.session.loaded, timeout=60_000):
        window.open_dataset_spec(f"npz:{path}")
        assert box.font().italic() and box.currentText() == f"npz:{path}" and "Opening" in box.toolTip()
    settle(window)
    assert not box.font().italic() and box.currentText() == f"npz:{path}" and f"npz:{path}" in box.toolTip()
    assert box.lineEdit().cursorPosition() == 0   # its kind and the start of its path, not the tail end


def test_a_dataset_that_fails_to_open_is_not_shown_as_open(window, qtbot):
    box = window.controls.dataset
    with qtbot.waitSignal(window.session.errorRaised, timeout=60_000):
        window.open_dataset_spec("npz:/does/not/exist.npz")
    assert box.currentText() == "digits" and not box.font().italic()


def test_a_screenshot_prints_no_offscreen_platform_noise(tmp_path):
    out = tmp_path / "shot.png"
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "latentlab", "gui", "--screenshot", str(out)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0 and out.is_file()
    assert "propagateSizeHints" not in result.stderr and "propagateSizeHints" not in result.stdout
