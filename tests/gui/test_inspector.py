"""Posterior inspector, aggregate posterior and holes, β sweep and the manifold layer, through their widgets."""

import numpy as np
import pytest
from gui_helpers import click_view, wait_idle
from PySide6 import QtCore
from PySide6.QtTest import QTest

from latentlab.gui.state.session import TrainRequest


def show_tab(window, widget):
    window.tools.setCurrentWidget(widget)
    wait_idle(window.session)


def test_posterior_view_for_a_shift_clicked_point(window, qtbot):
    s, view = window.session, window.posterior
    show_tab(window, view)
    click_view(window.latent.plot, 1.0, 1.0, QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert s.cursor.selected is not None and view.index.value() == s.cursor.selected
    wait_idle(window.session)
    r = view.result
    g = r["grid"]
    assert g.density.shape == (200, 200)
    # The identity, shown twice: the gap log p(x) − ELBO is KL(q || p(z|x)) measured on the grid.
    assert r["gap"] == pytest.approx(r["kl_grid"], abs=0.02)
    assert r["elbo"] < r["log_px"] and r["elbo"] < r["iw"] + 1e-6
    assert r["log_px"] == pytest.approx(r["iw"], abs=0.5)
    assert "gap" in view.numbers.text() and "nats" in view.numbers.text()
    # The selected point's mean is marked in the latent view.
    u, v = window.latent.plot.selected.getData()
    assert np.allclose([u[0], v[0]], s.selected_mean(), atol=1e-5)
    # Picking another image through the spin box recomputes.
    view.index.setValue(5)
    wait_idle(window.session)
    assert s.cursor.selected == 5 and view.result["grid"] is not g


def test_posterior_view_for_a_wider_latent_shows_the_iwae_curve(window, qtbot):
    s, view = window.session, window.posterior
    s.runs.train(TrainRequest(latent_dim=3, hidden=(64,), epochs=3, warm_start=False))
    qtbot.waitUntil(lambda: not s.runs.training, timeout=60000)
    show_tab(window, view)
    view.iw_k.setValue(500)
    wait_idle(window.session)
    r = view.result
    assert "grid" not in r and view.stack.currentWidget() is view.curve
    ks = [k for k, _ in r["curve"]]
    assert ks == [1, 10, 100]
    assert r["curve"][-1][1] >= r["elbo"] - 0.05


def test_aggregate_overlay_holes_and_prior_samples(window, qtbot):
    s, view = window.session, window.aggregate
    show_tab(window, view)
    view.show_overlay.setChecked(True)
    wait_idle(window.session)
    agg = s.latent.aggregate
    assert agg is not None and agg["density"].shape == (160, 160)
    assert window.latent.plot.density.isVisible()
    assert 0.0 <= agg["hole_share"] < 0.5 and agg["kl"] > 0
    assert "prior samples fall in holes" in view.summary.text()
    QTest.mouseClick(view.sample, QtCore.Qt.MouseButton.LeftButton)
    wait_idle(window.session)
    r = s.latent.prior_samples
    assert r["images"].shape == (32, 1, 8, 8) and r["in_hole"].dtype == bool
    xs, ys = window.latent.plot.samples.getData()
    assert len(xs) == 32
    view.show_overlay.setChecked(False)
    wait_idle(window.session)
    assert not window.latent.plot.density.isVisible()


def test_beta_sweep_runs_plots_loads_and_round_trips(window, qtbot, tmp_path):
    s, view = window.session, window.sweep
    show_tab(window, view)
    window.controls.hidden.setText("64")
    view.lo.setValue(0.3)
    view.hi.setValue(5.0)
    view.count.setValue(3)
    view.epochs.setValue(8)
    QTest.mouseClick(view.start, QtCore.Qt.MouseButton.LeftButton)
    assert s.runs.sweeping and view.start.text() == "Stop sweep"
    qtbot.waitUntil(lambda: not s.runs.sweeping, timeout=120000)
    assert [p.beta for p in s.runs.sweep_points] == [0.3, 1.225, 5.0]
    rates = [p.rate for p in s.runs.sweep_points]
    assert rates[0] > rates[-1]
    assert len(view.scatter.data) == 3 and len(view.labels) == 3
    # Clicking a point makes that model the explorer's.
    spot = view.scatter.points()[2]
    view.scatter.sigClicked.emit(view.scatter, [spot], None)
    wait_idle(window.session)
    assert s.model_data.history == list(s.runs.sweep_points[2].history) and s.model_data.model.cfg.hidden == (64,)
    view.save_to(tmp_path / "sweep")
    s.runs.set_sweep([])
    view.open_from(tmp_path / "sweep")
    assert [p.beta for p in s.runs.sweep_points] == [0.3, 1.225, 5.0]


def test_sweep_can_be_stopped(window, qtbot):
    s, view = window.session, window.sweep
    view.count.setValue(4)
    view.epochs.setValue(500)
    QTest.mouseClick(view.start, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.progress.value() > 0, timeout=30000)
    QTest.mouseClick(view.start, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not s.runs.sweeping, timeout=5000)
    assert view.start.text() == "Run sweep" and len(s.runs.sweep_points) == 0


def test_manifold_tiles_follow_the_view(window, qtbot):
    panel = window.latent
    panel.manifold.setChecked(True)
    wait_idle(window.session)
    layer = panel.plot.manifold
    assert len(layer.items) >= 15 * 15
    first = layer.items[0].mapRectToParent(layer.items[0].boundingRect())
    panel.plot.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)

    def tile_width():
        QtCore.QThreadPool.globalInstance().waitForDone(10000)
        return layer.items[0].mapRectToParent(layer.items[0].boundingRect()).width() if layer.items else first.width()

    # Recomputed for the zoomed-in region once the view has settled.
    qtbot.waitUntil(lambda: tile_width() < first.width() / 2, timeout=10000)
    panel.quantile.setChecked(True)
    wait_idle(window.session)
    assert len(layer.items) == 15 * 15
    panel.manifold.setChecked(False)
    assert layer.items == []


def test_manifold_tiles_and_prior_samples_on_a_umap_map_take_one_inverse_transform():
    """UMAP's inverse triangulates the whole map on every call (seconds): the grid of tiles and the prior
    draws are lifted in one call, not one per point, and decoded from what that call gave."""
    from latentlab.core.inference.projection import EmbeddedProjection, Embedding
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.models.vae import build_model
    from latentlab.gui.state import work
    from latentlab.gui.widgets.manifold import manifold_job

    calls = []

    class Inverse:   # a fitted UMAP's face: a code inside the data for each 2-D point
        def inverse_transform(self, p):
            calls.append(len(p))
            return np.c_[p, 0.0 * p[:, :1]]

    means = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    means[:, 2] = 0.0
    projection = EmbeddedProjection(Embedding("umap", means[:, :2].copy(), means, np.arange(300), Inverse()), means)
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=(8,)), seed=0).eval()
    tiles = manifold_job(model, projection, None, 5, (-1.0, 1.0), (-1.0, 1.0), False)
    assert calls == [len(tiles["centres"])] and len(tiles["images"]) == len(tiles["centres"]) == 25
    expected = work.decode_codes(model, np.c_[tiles["centres"], np.zeros(25)].astype(np.float32))
    np.testing.assert_allclose(tiles["images"], expected, atol=1e-6)
    calls.clear()
    drawn = work.prior_samples(model, means[:, :2], np.zeros((300, 2), np.float32), 40, 0, projection, None)
    assert calls == [40] and drawn["images"].shape == (40, 1, 8, 8)
