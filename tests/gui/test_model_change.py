"""After another model comes in on the same dataset (Session.replace_model, the one way in), every
overlay on the latent view is derived from the new state or gone with the old one: the path and
its endpoints, prior samples, q(z) and its holes, the selection's rings, the inspected point, the
manifold; and the window's title names the new model."""

import numpy as np
import pytest
from gui_helpers import click_view, drag_view, wait_idle, where_click_lands
from PySide6 import QtCore

from latentlab.core.inference.analysis import decode, encode
from latentlab.core.models.vae import build_model

SHIFT = QtCore.Qt.KeyboardModifier.ShiftModifier


def another_model(window, seed=7):
    """A model of the same shape as the shown one, with other weights: same K, same data."""
    return build_model(window.session.model_data.model.cfg, seed=seed).eval()


def change_model(window, seed=7):
    s = window.session
    model = another_model(window, seed)
    s.replace_model(model, None, [], None)
    wait_idle(s)
    return model


def test_the_path_and_its_data_endpoints_follow_the_new_model(window, qtbot):
    s, plot, view = window.session, window.latent.plot, window.interpolation
    window.tools.setCurrentWidget(view)
    rows = {}
    for which, (x, y) in (("A", (1.2, 0.7)), ("B", (-1.3, -0.6))):
        click_view(plot, x, y, SHIFT)
        u, v = where_click_lands(plot, x, y)
        rows[which] = int(np.argmin(((s.latent.points - [u, v]) ** 2).sum(1)))   # the data point picked
    wait_idle(s)
    assert set(s.path.endpoints) == {"A", "B"}

    model = change_model(window)
    x = s.model_data.data.x_train
    for which, row in rows.items():   # each endpoint is its image's encoding under the new model
        assert np.allclose(s.path.endpoints[which].z, encode(model, x[row:row + 1])[0][0], atol=1e-5)
    path = s.path.codes()
    xs, ys = plot.path_item.getData()
    pos = s.latent.projection.to2d(path)
    assert np.allclose(xs, pos[:, 0]) and np.allclose(ys, pos[:, 1])
    for label, end in zip(plot.path_labels, (pos[0], pos[-1])):
        assert label.isVisible() and np.allclose([label.pos().x(), label.pos().y()], end, atol=1e-5)
    assert np.allclose(view.images, decode(model, path), atol=1e-6)   # the strip decodes the new path, newly


def test_free_endpoints_stay_codes_and_another_dataset_clears_them_saying_so(window, qtbot):
    s = window.session
    s.set_endpoint("A", [0.5, 0.5])
    s.set_endpoint("B", [-1.0, 0.25])
    change_model(window)
    assert s.path.endpoints["A"].z == pytest.approx([0.5, 0.5]) and s.path.endpoints["B"].z == pytest.approx([-1, 0.25])
    said = []
    s.status.connect(said.append)
    from latentlab.core.data.specs import load_dataset

    s.replace_model(another_model(window), load_dataset("digits"), [], None)
    wait_idle(s)
    assert s.path.endpoints == {} and any("endpoints cleared" in m for m in said)
    xs, _ = window.latent.plot.path_item.getData()
    assert xs is None or len(xs) == 0


def test_prior_samples_leave_with_the_overlay_and_with_the_model(window, qtbot):
    s, plot, tab = window.session, window.latent.plot, window.aggregate
    window.tools.setCurrentWidget(tab)
    wait_idle(s)
    tab.sample.click()
    wait_idle(s)
    assert tab.show_overlay.isChecked() and s.latent.prior_samples is not None and plot.samples.isVisible()
    tab.show_overlay.setChecked(False)   # unticked: the holes and the samples in them both go
    assert not plot.samples.isVisible() and not plot.density.isVisible()
    tab.show_overlay.setChecked(True)
    wait_idle(s)
    assert plot.samples.isVisible()
    change_model(window)
    assert s.latent.prior_samples is None and not plot.samples.isVisible()
    assert tab.in_holes.pixmap().isNull() and tab.in_holes.text() == ""


def test_q_z_and_its_holes_are_those_of_the_new_points(window, qtbot):
    from latentlab.gui.state.work import aggregate_summary

    s, plot = window.session, window.latent.plot
    window.aggregate.show_overlay.setChecked(True)
    wait_idle(s)
    before = s.latent.aggregate
    change_model(window)
    agg = s.latent.aggregate
    assert agg is not None and agg is not before and plot.density.isVisible()
    box = max(4.0, float(np.percentile(np.abs(s.latent.plane()[0]), 99.5)) + 0.5)
    fresh = aggregate_summary(*s.latent.plane(), s.latent.points, s.latent.logvars, box)
    assert np.allclose(agg["density"], fresh["density"]) and np.array_equal(agg["holes"], fresh["holes"])
    shown = plot.density.image
    assert np.allclose(shown, np.log(np.maximum(agg["density"], 1e-300)))


def test_selection_rings_and_the_inspected_point_sit_on_the_new_encodings(window, qtbot):
    s, plot = window.session, window.latent.plot
    drag_view(plot, [(-1.5, -1.5), (0.0, -0.5), (1.5, 1.5)], QtCore.Qt.KeyboardModifier.AltModifier)
    s.select_point(5)   # the inspected data point (the Posterior tab's)
    wait_idle(s)
    rows, inspected = s.selection.rows.copy(), s.cursor.selected
    assert len(rows) and inspected is not None
    model = change_model(window)
    assert np.array_equal(s.selection.rows, rows)
    xy = s.latent.projection.to2d(s.latent.points[rows])
    ring_x, ring_y = plot.selection_layer.rings.getData()
    assert np.allclose(np.sort(ring_x), np.sort(xy[:, 0]), atol=1e-4)
    mean = encode(model, s.model_data.data.x_train[inspected:inspected + 1])[0][0]
    sel_x, sel_y = plot.selected.getData()
    assert np.allclose([sel_x[0], sel_y[0]], s.latent.projection.to2d(mean), atol=1e-5)


def test_the_manifold_is_redrawn_with_the_new_model_and_never_shows_the_old(window, qtbot):
    s, panel = window.session, window.latent
    layer = panel.plot.manifold
    panel.manifold.setChecked(True)
    qtbot.waitUntil(lambda: len(layer.items) > 0, timeout=30000)
    model = another_model(window)
    s.replace_model(model, None, [], None)
    assert layer.items == []   # the old model's tiles go at once
    qtbot.waitUntil(lambda: len(layer.items) > 0, timeout=30000)
    wait_idle(s)
    tile = layer.items[0]
    rect = tile.mapRectToParent(tile.boundingRect())
    centre = np.array([rect.center().x(), rect.center().y()])
    z = s.latent.projection.lift(centre, s.anchor())
    expected = decode(model, z[None])[0][0][::-1]
    assert np.allclose(tile.image, expected, atol=1e-5)


def test_the_title_names_the_sweep_point_that_was_opened(window, qtbot):
    from latentlab.core.training.sweep import SweepPoint

    s = window.session
    assert "digits" in window.windowTitle() and s.model_data.source.name in window.windowTitle()
    model = another_model(window)
    point = SweepPoint(beta=2.683, rate=1.0, distortion=20.0, config=model.cfg,
                       weights={k: v.numpy() for k, v in model.state_dict().items()},
                       history=({"epoch": 1, "beta": 2.683, "recon": 20.0, "kl": 1.0, "elbo": -21.0},))
    s.runs.set_sweep([point])
    s.use_sweep_point(point)
    wait_idle(s)
    title = window.windowTitle()
    assert "β = 2.68" in title and ".safetensors" not in title, title
