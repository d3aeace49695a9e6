"""The latent view at scale: UMAP and t-SNE maps, selections, exports, statistics computed when asked
for, and the live scatter's size during training."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from gui_helpers import click_view, drag_view, wait_idle
from PySide6 import QtCore, QtGui

ALT = QtCore.Qt.KeyboardModifier.AltModifier
SHIFT = QtCore.Qt.KeyboardModifier.ShiftModifier


def _wide_model(window, k=4):
    """An untrained K = k model on the open digits, encoded (1,797 points)."""
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.models.vae import build_model

    s = window.session
    data = s.model_data.data
    model = build_model(ModelConfig(image_shape=data.image_shape, latent_dim=k, hidden=(64,)), seed=0).eval()
    s.replace_model(model, data, [], None)
    wait_idle(s)
    assert s.latent.full and s.latent.points.shape == (len(data.x_train), k)
    return s


def _record_tasks(session):
    seen = []
    session.jobs.task.connect(lambda key, label, f: seen.append((key, label, f)))
    return seen


def _last_click(plot):
    where = []
    plot.viewbox.picked.connect(lambda x, y, mods: where.append((x, y)))
    return where


# ----- projections ----------------------------------------------------------------------------------

def test_umap_view_decodes_clicks_through_the_inverse_and_is_cached(window, qtbot):
    pytest.importorskip("umap")
    s = _wide_model(window)
    panel, plot = window.latent, window.latent.plot
    tasks = _record_tasks(s)
    panel.set_method("umap")
    assert panel.projection_combo.currentData() == "umap"
    qtbot.waitUntil(lambda: s.latent.shows_map, timeout=240000)
    wait_idle(s)
    emb = s.latent.projection.embedding
    assert emb.kind == "umap" and emb.coords.shape == (len(s.latent.points), 2)
    # progress reached the status bar along the way, and the bar went away at the end
    fractions = [f for key, _, f in tasks if key == "map"]
    assert any(0 < f < 1 for f in fractions) and fractions[-1] < 0
    assert not window.tasks.bar.isVisible()
    assert not plot.circles.isVisible()
    assert plot.getPlotItem().getAxis("bottom").labelText.startswith("UMAP")
    np.testing.assert_allclose(plot.cloud.positions(np.arange(5)), emb.coords[:5], atol=1e-6)

    where = _last_click(plot)
    target = emb.coords[emb.fitted[3]]
    click_view(plot, *target)
    assert where
    wait_idle(s)   # UMAP's inverse runs on a worker
    z, note = emb.lift_with_note(where[-1])
    np.testing.assert_allclose(s.cursor.z, z, atol=1e-6)
    np.testing.assert_allclose(s.cursor.z, emb.lift(where[-1]), atol=1e-6)
    assert s.cursor.note == note and window.decoded.note_label.text() == note
    assert not window.decoded.note_label.isHidden()
    # the marker sits where the click was, not at some other point's place
    assert np.allclose(plot.marker.getData()[0], [where[-1][0]], atol=1e-6)

    # back to a pair (prior circles again), then to UMAP: the cached map, no second job
    panel.set_method("pair")
    assert s.latent.projection.kind == "dims" and plot.circles.isVisible()
    tasks.clear()
    panel.set_method("umap")
    assert s.latent.shows_map and s.latent.projection.embedding is emb
    assert not [t for t in tasks if t[0] == "map"]


def test_tsne_view_decodes_the_nearest_points_latent(window, qtbot):
    pytest.importorskip("openTSNE")
    s = _wide_model(window, k=3)
    plot = window.latent.plot
    window.latent.set_method("tsne")
    qtbot.waitUntil(lambda: s.latent.shows_map, timeout=240000)
    wait_idle(s)
    emb = s.latent.projection.embedding
    assert emb.kind == "tsne" and not plot.circles.isVisible()
    where = _last_click(plot)
    click_view(plot, *emb.coords[100])
    i = emb.nearest(where[-1])
    np.testing.assert_array_equal(s.cursor.z, s.latent.points[i])
    assert "nearest data point" in window.decoded.note_label.text()


def test_a_map_can_be_stopped_from_the_status_bar(window, qtbot, monkeypatch):
    import threading

    import latentlab.gui.state.work as work
    from latentlab.core.errors import Cancelled

    started = threading.Event()

    def slow_map(method, means, seed, progress=None, should_stop=None):
        progress(0.1)
        started.set()
        while not should_stop():
            threading.Event().wait(0.01)
        raise Cancelled("The projection was stopped.")

    monkeypatch.setattr(work, "embedding", slow_map)
    monkeypatch.setattr("latentlab.core.inference.maps.unavailable", lambda method: None)
    s = _wide_model(window)
    window.latent.set_method("umap")
    qtbot.waitUntil(lambda: window.tasks.bar.isVisible() and "UMAP" in window.tasks.bar.format(), timeout=30000)
    assert started.wait(30)
    window.tasks.stop.click()
    wait_idle(s)
    assert not window.tasks.bar.isVisible() and not s.latent.shows_map
    assert not window.banner.isVisible()
    assert s.latent.projection.kind == "pca"    # the interim plane stays usable


def test_a_missing_extra_says_how_to_install_it(window, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "umap" else real(name, *a))
    s = _wide_model(window)
    window.latent.set_method("umap")
    assert window.banner.isVisible()
    assert "pip install 'latentlab[projections]'" in window.banner.label.text()
    assert "umap-learn" in window.banner.label.text()
    assert s.latent.method == "pair" and window.latent.projection_combo.currentData() == "pair"


def test_gui_projection_option_reaches_the_window(window, qtbot):
    from latentlab.cli import build_parser
    from latentlab.gui.app import start_with_projection

    assert build_parser().parse_args(["gui", "--projection", "tsne"]).projection == "tsne"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["gui", "--projection", "isomap"])
    start_with_projection(window, "pca")
    with qtbot.waitSignal(window.session.loaded, timeout=60000):
        window.session.load()
    wait_idle(window.session)
    assert window.session.latent.method == "pca" and window.latent.projection_combo.currentData() == "pca"


# ----- selections -----------------------------------------------------------------------------------

def _outline(plot):
    got = []
    plot.viewbox.outlined.connect(lambda pts, shape, done: done and got.append((np.asarray(pts), shape)))
    return got


def test_rectangle_selection_by_alt_drag_fills_the_panel_and_esc_clears(window, qtbot):
    from latentlab.core.inference.analysis import point_kl
    from latentlab.core.inference.selection import in_rectangle

    s, plot = window.session, window.latent.plot
    window.tools.setCurrentWidget(window.selection)
    got = _outline(plot)
    z_before = None if s.cursor.z is None else s.cursor.z.copy()
    drag_view(plot, [(-1.0, -1.0), (0.0, -0.2), (1.0, 0.8)], ALT)
    assert got and got[-1][1] == "rectangle"
    pts = got[-1][0]
    expected = np.flatnonzero(in_rectangle(s.latent.points, pts[0], pts[-1]))
    assert 0 < len(expected) < len(s.latent.points)
    np.testing.assert_array_equal(s.selection.rows, expected)
    assert z_before is None or np.allclose(s.cursor.z, z_before)   # a selection drag decodes nothing
    view = window.selection
    assert f"{len(expected):,}" in view.summary.text()
    assert not view.grid.pixmap().isNull()
    heights = view.bars.opts["height"]
    assert int(np.sum(heights)) == len(expected)
    np.testing.assert_array_equal(heights, np.bincount(s.model_data.data.y_train[expected], minlength=len(heights)))
    wait_idle(s)
    lp = s.latent
    assert view.numbers["kl"] == pytest.approx(float(point_kl(lp.points[expected], lp.logvars[expected]).mean()), rel=1e-5)
    assert "mean KL" in view.summary.text() and "reconstruction" in view.summary.text()
    assert len(plot.selection_layer.rings.data) == len(expected)

    plot.setFocus()
    qtbot.keyClick(plot, QtCore.Qt.Key.Key_Escape)
    assert len(s.selection) == 0 and len(plot.selection_layer.rings.data) == 0
    assert "Alt+drag" in view.summary.text()


def test_lasso_selection_by_alt_shift_drag(window):
    from latentlab.core.inference.selection import in_polygon

    s, plot = window.session, window.latent.plot
    got = _outline(plot)
    path = [(-2.0, -2.0), (2.0, -2.0), (2.0, 0.0), (0.0, 2.0), (-2.0, 0.5)]
    drag_view(plot, path, ALT | SHIFT)
    pts, shape = got[-1]
    assert shape == "lasso" and len(pts) >= len(path)
    expected = np.flatnonzero(in_polygon(s.latent.points, pts))
    assert 0 < len(expected) < len(s.latent.points)
    np.testing.assert_array_equal(s.selection.rows, expected)


def test_points_in_polygon_match_a_direct_test():
    from latentlab.core.inference.selection import in_polygon, in_rectangle

    rng = np.random.default_rng(0)
    xy = rng.uniform(-1, 1, (20000, 2))
    square = [(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)]
    np.testing.assert_array_equal(in_polygon(xy, square), in_rectangle(xy, (-0.5, -0.5), (0.5, 0.5)))
    # a concave L: the square minus its upper-right quarter
    ell = [(-0.5, -0.5), (0.5, -0.5), (0.5, 0.0), (0.0, 0.0), (0.0, 0.5), (-0.5, 0.5)]
    want = in_rectangle(xy, (-0.5, -0.5), (0.5, 0.5)) & ~((xy[:, 0] > 0) & (xy[:, 1] > 0))
    np.testing.assert_array_equal(in_polygon(xy, ell), want)
    assert not in_polygon(xy, [(0, 0), (1, 1)]).any()


# ----- exports --------------------------------------------------------------------------------------

def test_selection_csv_round_trips(window, tmp_path):
    s = window.session
    rows = np.array([3, 10, 11, 500])
    s.selection.set(rows, "rectangle")
    out = tmp_path / "sel.csv"
    assert s.analyses.export_selection(out)
    with open(out) as f:
        header = f.readline().strip().split(",")
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    k = s.latent.points.shape[1]
    assert header == ["index", "label", "view_x", "view_y", *(f"mu_{d}" for d in range(k))]
    np.testing.assert_array_equal(table[:, 0].astype(int), rows)
    np.testing.assert_array_equal(table[:, 1].astype(int), s.model_data.data.y_train[rows])
    np.testing.assert_allclose(table[:, 2:4], s.latent.projection.to2d(s.latent.points[rows]), rtol=1e-6)
    np.testing.assert_array_equal(table[:, 4:].astype(np.float32), s.latent.points[rows])
    errors = []
    s.errorRaised.connect(errors.append)
    assert not s.analyses.export_selection(tmp_path / "no such folder" / "sel.csv")   # one sentence, no exception
    assert len(errors) == 1 and "\n" not in errors[0]


def test_latent_view_exports_as_png_and_svg(window, tmp_path):
    png, svg = tmp_path / "view.png", tmp_path / "view.svg"
    assert window.export_view(png) and window.export_view(svg)
    img = QtGui.QImage(str(png))
    assert img.width() > 100 and img.height() > 100
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert len(list(root.iter())) > 20     # drawn content, not an empty document


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_export_latent_means_round_trips(window, tmp_path, suffix):
    from latentlab.core.inference.analysis import encode
    from latentlab.core.tables.table_reader import read_table

    s = window.session
    data = s.model_data.data
    out = tmp_path / f"means{suffix}"
    tasks = _record_tasks(s)
    s.analyses.export_latent_means(out)
    wait_idle(s)
    table = read_table(out)
    assert len(table) == len(data.x_train) + len(data.x_test)
    assert (table.split == "train").sum() == len(data.x_train)
    mu, logvar = encode(s.model_data.model, data.x_test)
    test = table.split == "test"
    np.testing.assert_allclose(table.mu[test], mu, atol=1e-6)
    np.testing.assert_allclose(table.logvar[test], logvar, atol=1e-6)
    np.testing.assert_array_equal(table.label[test], data.y_test)
    assert any(key == "export means" and f < 0 for key, _, f in tasks)
    assert str(out) in window.status_label.text()


# ----- statistics on demand, live budget, curves ------------------------------------------------------

def test_per_point_statistics_are_computed_when_first_coloured_by(window, qtbot):
    from latentlab.core.inference.analysis import point_kl, reconstruction_nll

    s, panel = window.session, window.latent
    lp = s.latent
    assert lp.stats == {}                      # a load computes neither
    options = [panel.color_combo.itemText(i) for i in range(panel.color_combo.count())]
    assert "reconstruction error" in options and "KL per point" in options
    tasks = _record_tasks(s)
    panel.color_combo.setCurrentText("reconstruction error")
    wait_idle(s)
    assert any(key == "stat reconstruction error" for key, _, _ in tasks)
    x = s.model_data.data.x_train
    np.testing.assert_allclose(lp.stats["reconstruction error"], reconstruction_nll(s.model_data.model, x, lp.points),
                               rtol=1e-5)
    assert panel.plot.colorbar is not None
    assert "KL per point" not in lp.stats       # only what was asked for
    panel.color_combo.setCurrentText("KL per point")
    wait_idle(s)
    np.testing.assert_allclose(lp.stats["KL per point"], point_kl(lp.points, lp.logvars), rtol=1e-5)


def _synthetic_dataset(n=6000):
    from latentlab.core.data.specs import Dataset

    rng = np.random.default_rng(0)
    x = (rng.random((n, 1, 8, 8)) < 0.3).astype(np.float32)
    y = rng.integers(0, 4, n)
    return Dataset(spec="npz:blobs.npz", name="blobs", x_train=x, y_train=y, x_test=x[:100], y_test=y[:100],
                   label_names=("a", "b", "c", "d"))


def _live_sizes(window, clock, epochs: int):
    """Train on a 6,000-image set with the live budget timed by `clock`; the live frames' sizes."""
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.models.vae import build_model
    from latentlab.gui.state.runs import TrainRequest

    s = window.session
    data = _synthetic_dataset()
    s.replace_model(build_model(ModelConfig(image_shape=data.image_shape, latent_dim=2, hidden=(32,)), seed=0).eval(),
                    data, [], None)
    wait_idle(s)
    s.runs.live_clock = clock
    sizes = []
    s.runs.progress.connect(lambda snap: snap.latent is not None and sizes.append(len(snap.latent)))
    s.runs.train(TrainRequest(latent_dim=2, hidden=(32,), epochs=epochs, warm_start=True))
    wait_idle(s)
    return sizes, len(data.x_train)


def _alternating_clock(training_s: float, encoding_s: float):
    """A clock the budget reads at the start and the end of each encode: training_s of training
    between encodes, encoding_s per encode."""
    ticks = {"n": 0, "t": 0.0}

    def clock():
        ticks["n"] += 1
        ticks["t"] += training_s if ticks["n"] % 2 == 0 else encoding_s
        return ticks["t"]

    return clock


def test_live_scatter_shows_more_than_the_floor_when_the_budget_allows(window):
    from latentlab.gui.state.runs import LIVE_POINTS

    sizes, n = _live_sizes(window, _alternating_clock(10.0, 0.001), epochs=3)
    assert sizes and max(sizes) == n > LIVE_POINTS
    assert window.session.runs.live_budget.points() == n
    assert window.session.latent.full                   # after training: the full set, as before


def test_live_scatter_stays_at_the_floor_when_encoding_is_costly(window):
    from latentlab.gui.state.runs import LIVE_POINTS

    sizes, _ = _live_sizes(window, _alternating_clock(0.1, 1.0), epochs=2)
    assert sizes and set(sizes) == {LIVE_POINTS}


def test_a_single_epoch_of_history_shows_markers(window):
    curves = window.curves
    s = window.session
    record = {"epoch": 1, "beta": 1.0, "recon": 50.0, "kl": 5.0, "elbo": -55.0, "kl_per_dim": [2.0, 3.0]}
    s.model_data.history[:] = [record]
    s.model_data.historyChanged.emit()
    for curve in curves.curves.values():
        x, y = curve.getData()
        assert len(x) == 1 and curve.opts["symbol"] is not None
    assert all(c.opts["symbol"] is not None for c in curves.dim_curves)
    s.model_data.history[:] = [record, {**record, "epoch": 2}]
    s.model_data.historyChanged.emit()
    assert all(c.opts["symbol"] is None for c in curves.curves.values())


def test_a_statistic_on_its_way_is_not_restarted_by_redraws(window):
    """Every redraw while the colouring waits asks for the statistic again; the job already on its
    way for these points keeps going (restarting would throw its progress away at scale)."""
    s, panel = window.session, window.latent
    tasks = _record_tasks(s)
    panel.color_combo.setCurrentText("KL per point")
    for _ in range(3):
        panel.plot.refresh_points()   # before the GUI thread has taken the result
    wait_idle(s)
    ends = [f for key, _, f in tasks if key == "stat KL per point" and f < 0]
    assert len(ends) == 1 and "KL per point" in s.latent.stats
