"""Interpolation, traversals and collapse diagnostics, driven through their widgets."""

import numpy as np
import pytest
from gui_helpers import click_view, wait_idle, where_click_lands
from PIL import Image
from PySide6 import QtCore
from PySide6.QtTest import QTest

from latentlab.gui.state.session import TrainRequest


def show_tab(window, widget):
    window.tools.setCurrentWidget(widget)
    wait_idle(window.session)


def test_shift_clicks_pick_data_endpoints_and_the_path_is_drawn(window, qtbot):
    s, plot = window.session, window.latent.plot
    view = window.interpolation
    show_tab(window, view)
    assert not view.animate.isEnabled()
    click_view(plot, 1.2, 0.7, QtCore.Qt.KeyboardModifier.ShiftModifier)
    click_view(plot, -1.3, -0.6, QtCore.Qt.KeyboardModifier.ShiftModifier)
    a, b = s.path.endpoints["A"], s.path.endpoints["B"]
    # Each endpoint is the mean of the data point nearest the click, with that point's own image.
    for e, (x, y) in ((a, where_click_lands(plot, 1.2, 0.7)), (b, where_click_lands(plot, -1.3, -0.6))):
        i = int(np.argmin(((s.latent.points - [x, y]) ** 2).sum(1)))
        assert np.allclose(e.z, s.latent.points[i]) and np.array_equal(e.image, s.model_data.data.x_train[i])
    assert view.animate.isEnabled()
    assert view.images.shape == (10, 1, 8, 8)
    xs, ys = plot.path_item.getData()
    assert len(xs) == 10 and xs[0] == pytest.approx(a.z[0]) and ys[-1] == pytest.approx(b.z[1])
    assert view.strip_images().shape[0] == 12  # the two data images framing the decoded path
    view.steps.setValue(5)
    assert view.images.shape[0] == 5 and len(plot.path_item.getData()[0]) == 5


def test_slerp_profile_differs_from_linear(window, qtbot):
    s, view = window.session, window.interpolation
    show_tab(window, view)
    s.set_endpoint("A", np.array([2.0, 0.0]))
    s.set_endpoint("B", np.array([-2.0, 0.1]))
    lin = view.profile_curve.getData()[1].copy()
    view.mode.setCurrentText("slerp")
    sph = view.profile_curve.getData()[1]
    # The straight line passes near the origin (high log p(z)); slerp keeps the norm, so log p(z) stays flat.
    assert lin.max() - lin.min() > 1.5
    assert sph.max() - sph.min() < 0.05
    assert np.allclose(np.linalg.norm(s.path.codes(), axis=1), np.linalg.norm(s.path.codes()[0]), atol=0.06)


def test_animation_moves_the_marker_along_the_path(window, qtbot):
    s, view = window.session, window.interpolation
    show_tab(window, view)
    s.set_endpoint("A", np.array([1.0, 1.0]))
    s.set_endpoint("B", np.array([-1.0, -1.0]))
    seen = []
    s.cursor.changed.connect(lambda: seen.append(s.cursor.z.copy()))
    QTest.mouseClick(view.animate, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(seen) >= 5, timeout=5000)
    QTest.mouseClick(view.animate, QtCore.Qt.MouseButton.LeftButton)
    path = s.path.codes()
    for z in seen[:5]:
        assert np.min(np.linalg.norm(path - z, axis=1)) < 1e-5


def test_interpolation_exports(window, qtbot, tmp_path):
    view = window.interpolation
    show_tab(window, view)
    click_view(window.latent.plot, 1.0, 0.5, QtCore.Qt.KeyboardModifier.ShiftModifier)
    click_view(window.latent.plot, -1.0, -0.5, QtCore.Qt.KeyboardModifier.ShiftModifier)
    png, gif = tmp_path / view.default_name("png"), tmp_path / view.default_name("gif")
    assert "linear" in png.name and "10steps" in png.name
    view.export_png_to(png)
    view.export_gif_to(gif)
    with Image.open(png) as im:
        scale = 64 // 8
        assert im.height == 8 * scale + 2 * scale  # one row, padding included
        assert im.info["mode"] == "linear" and im.info["endpoint_A"].startswith("[")
    with Image.open(gif) as im:
        assert im.n_frames == 2 * 10 - 2 and im.size == (128, 128)


def test_traversal_rows_and_export(window, qtbot, tmp_path):
    view = window.traversals
    show_tab(window, view)
    assert view.images.shape == (2, 11, 1, 8, 8)
    assert len(view.row_labels) == 2 and "nats" in view.row_labels[0].text()
    assert all(view.active)
    view.columns.setValue(7)
    wait_idle(window.session)
    assert view.images.shape[1] == 7
    # Anchored at the marker: moving the marker moves the rows.
    before = view.images.copy()
    click_view(window.latent.plot, 1.5, 1.5)
    wait_idle(window.session)
    assert not np.allclose(before, view.images)
    out = tmp_path / "trav.png"
    view.export_png_to(out)
    with Image.open(out) as im:
        assert im.size[0] > im.size[1] > 0 and "z1" in im.info["dims_in_row_order"]


def test_collapse_story_high_beta_kills_dimensions(window, qtbot):
    """β = 20 on digits with K = 8 leaves few active units and flat traversal rows; β = 1 keeps more."""
    s = window.session
    results = {}
    spread_of = {}
    for beta, epochs in ((1.0, 40), (20.0, 100)):
        s.runs.train(TrainRequest(latent_dim=8, hidden=(128,), epochs=epochs, lr=3e-3, beta=beta, warm_start=False))
        qtbot.waitUntil(lambda: not s.runs.training, timeout=120000)
        qtbot.waitUntil(lambda: s.latent.logvars is not None and s.latent.rows is None, timeout=30000)
        show_tab(window, window.collapse)
        results[beta] = window.collapse.active.copy()
        show_tab(window, window.traversals)
        window.traversals.anchor.setCurrentText("origin")
        window.traversals.request_refresh()
        wait_idle(window.session)
        view = window.traversals
        # Mean absolute change of a row's pixels from that row's average image.
        spreads = {d: float(np.abs(view.images[row] - view.images[row].mean(0)).mean()) for row, d in enumerate(view.order)}
        spread_of[beta] = (spreads, view.active.copy())
    # Collapsed rows are flat; the rows of dimensions the β = 1 model uses change visibly.
    spreads, active = spread_of[20.0]
    dead = [d for d in spreads if not active[d]]
    assert len(dead) >= 5 and all(spreads[d] < 0.015 for d in dead), spreads
    assert max(spread_of[1.0][0].values()) > 0.05, spread_of[1.0][0]
    assert results[20.0].sum() <= 3
    assert results[1.0].sum() > results[20.0].sum()
    show_tab(window, window.collapse)
    assert window.collapse.warning.isVisible() and "collapse" in window.collapse.warning.text()
    assert window.active_label.text() == f"active units {results[20.0].sum()}/8"
