"""The meaning panels driven through their widgets: a vector from two lasso selections, its plane in
the projection selector, stepping α, the analogy grid exported; factors, outliers; a second model
with a linked selection."""

import numpy as np
import pytest
from gui_helpers import click_view, drag_view, wait_idle
from PIL import Image
from PySide6 import QtCore
from PySide6.QtTest import QTest

ALT = QtCore.Qt.KeyboardModifier.AltModifier
LASSO = ALT | QtCore.Qt.KeyboardModifier.ShiftModifier


def show(window, widget):
    window.tools.setCurrentWidget(widget)
    wait_idle(window.session)


def lasso_around(centre, r=0.35, n=10):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [(centre[0] + r * np.cos(a), centre[1] + r * np.sin(a)) for a in t] + [(centre[0] + r, centre[1])]


def label_centre(s, label):
    return np.median(s.latent.points[s.model_data.data.y_train == label], axis=0)


def test_a_vector_from_two_lasso_selections_its_plane_alpha_steps_and_the_grid(window, qtbot, tmp_path):
    s, plot, view = window.session, window.latent.plot, window.meaning.vector
    show(window, view)
    view.source.setCurrentIndex(0)
    a, b = label_centre(s, 0), label_centre(s, 1)
    drag_view(plot, lasso_around(a), LASSO)
    group_a = s.selection.rows.copy()
    assert len(group_a) > 5 and s.selection.shape == "lasso"
    QTest.mouseClick(view.take_a, QtCore.Qt.MouseButton.LeftButton)
    drag_view(plot, lasso_around(b), LASSO)
    group_b = s.selection.rows.copy()
    QTest.mouseClick(view.take_b, QtCore.Qt.MouseButton.LeftButton)
    assert view.groups_label.text() == f"A: {len(group_a):,} · B: {len(group_b):,}"
    QTest.mouseClick(view.build, QtCore.Qt.MouseButton.LeftButton)
    wait_idle(s)
    v = s.vectors.vector
    assert v is not None and v.n_source == len(group_a) and v.n_target == len(group_b)
    expected = s.latent.points[group_b].mean(0) - s.latent.points[group_a].mean(0)
    np.testing.assert_allclose(v.direction, expected / np.linalg.norm(expected), atol=1e-5)
    assert "held-out AUC" in view.trust.text() and "bootstrap cosine" in view.trust.text()

    # The new projection: chosen in the selector, x along the vector, and a click lifts exactly.
    combo = window.latent.projection_combo
    combo.setCurrentIndex(combo.findData("vector"))
    combo.activated.emit(combo.currentIndex())
    wait_idle(s)
    p = s.latent.projection
    assert p.kind == "vector" and np.allclose(p.basis[:, 0], v.direction)
    assert "along the vector" in plot.getPlotItem().getAxis("bottom").labelText
    click_view(plot, 0.8, -0.4)
    np.testing.assert_allclose(p.to2d(s.cursor.z), (0.8, -0.4), atol=2e-2)

    # Step α along the inspected image's strip: the marker moves to z + α·v.
    row = int(group_a[0])
    s.select_point(row)
    wait_idle(s)
    assert s.vectors.strip is not None and s.vectors.strip.shape[0] == view.steps.value()
    view.step.setValue(view.step.maximum())
    wait_idle(s)
    mean = s.latent.points[row]
    np.testing.assert_allclose(s.cursor.z, mean + view.alpha_hi.value() * v.length * v.direction, atol=1e-4)
    assert view.strip.pixmap() is not None and not view.strip.pixmap().isNull()

    # The same steps over the selection, as a grid, exported as PNG.
    QTest.mouseClick(view.make_grid, QtCore.Qt.MouseButton.LeftButton)
    wait_idle(s)
    grid = s.vectors.grid
    rows = min(len(group_b), 8)
    assert grid.shape[:2] == (rows, view.steps.value())
    out = tmp_path / "grid.png"
    s.vectors.export_grid(out)
    wait_idle(s)
    png = Image.open(out)
    assert png.info["vector"] == v.title and png.size[0] > png.size[1]

    # Save and load it back (a file of plain arrays).
    s.vectors.save(tmp_path / "v.npz")
    wait_idle(s)
    s.vectors.load(tmp_path / "v.npz")
    wait_idle(s)
    assert s.vectors.origin == "v.npz" and np.allclose(s.vectors.vector.direction, v.direction, atol=1e-6)


def test_the_vector_plane_without_a_vector_says_what_to_do(window):
    s, combo = window.session, window.latent.projection_combo
    messages = []
    s.errorRaised.connect(messages.append)
    combo.setCurrentIndex(combo.findData("vector"))
    combo.activated.emit(combo.currentIndex())
    assert messages and "Vector tab" in messages[-1] and s.latent.method != "vector"
    assert combo.currentData() == s.latent.method


def test_a_new_model_drops_the_vector_and_its_plane(window):
    s, view = window.session, window.meaning.vector
    show(window, view)
    view.source.setCurrentIndex(1)
    view.label_a.setCurrentIndex(3)
    view.label_b.setCurrentIndex(8)
    QTest.mouseClick(view.build, QtCore.Qt.MouseButton.LeftButton)
    wait_idle(s)
    assert s.vectors.vector.title == "3 → 8"
    QTest.mouseClick(view.show_plane, QtCore.Qt.MouseButton.LeftButton)
    assert s.latent.projection.kind == "vector"
    s.load()
    wait_idle(s)
    assert s.vectors.vector is None and s.latent.projection.kind == "dims" and not view.save_button.isEnabled()


@pytest.fixture
def sprites_window(window):
    from latentlab.core.files.bundled import EXAMPLES

    window.session.load(EXAMPLES[1].file, "sprites")
    wait_idle(window.session)
    return window


def test_factors_tab_shows_the_importance_heat_map_beside_the_scores(sprites_window):
    w = sprites_window
    s, view = w.session, w.meaning.factors
    show(w, view)
    result = view.result
    assert result is not None and view.image.image.shape == (5, 5)   # factors × latents
    np.testing.assert_allclose(view.image.image, result.importance.T)
    text = view.scores.text()
    for name in ("MIG", "DCI disentanglement", "SAP", "β-VAE score", "FactorVAE score"):
        assert name in text
    # Stop: the boosted trees take minutes; the status bar's Stop ends them and nothing is shown as an error.
    errors = []
    s.errorRaised.connect(errors.append)
    view.estimator.setCurrentIndex(view.estimator.findData("gbt"))
    QTest.qWait(300)
    assert "factor scores" in s.jobs.tracked_keys()
    w.stop_tasks()
    wait_idle(s)
    assert errors == [] and view.result is result


def test_factors_tab_without_factors_says_where_they_come_from(window):
    show(window, window.meaning.factors)
    assert "no ground-truth factors" in window.meaning.factors.scores.text()
    assert not window.meaning.factors.compute.isEnabled()


def test_outliers_grid_and_a_click_inspects_like_a_shift_click(window):
    s, view = window.session, window.meaning.outliers
    show(window, view)
    assert view.grid.count() == view.count.value() and view.result["split"] == "test"
    scores = view.result["ranked"].scores
    assert list(scores) == sorted(scores, reverse=True)
    view.split.setCurrentIndex(view.split.findData("train"))
    wait_idle(s)
    first = view.grid.item(0)
    rect = view.grid.visualItemRect(first)
    QTest.mouseClick(view.grid.viewport(), QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                     rect.center())
    wait_idle(s)
    row = int(view.result["ranked"].rows[0])
    assert s.cursor.selected == row and s.path.endpoints["A"].image is not None
    np.testing.assert_allclose(s.cursor.z, s.latent.points[row], atol=1e-5)


def test_a_second_model_side_by_side_with_a_linked_selection(window, tmp_path):
    from model_specs import adapter_spec

    s = window.session
    compare = window.meaning.compare
    s.comparison.open_spec(adapter_spec(tmp_path))
    compare.show()
    wait_idle(s)
    assert compare.objectName() == "compareView" and s.comparison.active
    names = [compare.table.item(r, 0).text() for r in range(compare.table.rowCount())]
    assert "test ELBO" in names and "log p(x), IWAE K=50" in names and "active units" in names
    elbo = {side: s.comparison.entries[side]["elbo"] for side in ("A", "B")}
    assert all(np.isfinite(list(elbo.values())))
    # A click in A's view inspects that image; both models decode it.
    xy_a = s.comparison.opened.xy_a
    click_view(compare.view_a, *xy_a[40])
    wait_idle(s)
    assert s.cursor.selected == int(np.argmin(((xy_a - xy_a[40]) ** 2).sum(1)))
    row, original, by_a, by_b = s.comparison.decoded
    assert row == s.cursor.selected and original.shape == by_a.shape == by_b.shape == (1, 8, 8)
    assert not compare.images[2].pixmap().isNull()
    # Select in model B's view: the same images are ringed in model A's view and on the main view.
    xy_b, xy_a = s.comparison.opened.xy_b, s.comparison.opened.xy_a
    lo, hi = np.percentile(xy_b, 30, axis=0), np.percentile(xy_b, 70, axis=0)
    drag_view(compare.view_b, [tuple(lo), tuple((lo + hi) / 2), tuple(hi)], ALT)
    wait_idle(s)
    ox, oy = compare.view_b.outline.getData()   # the rectangle as drawn: the drag's corners, to the pixel
    assert np.allclose([ox.min(), oy.min(), ox.max(), oy.max()], [*lo, *hi], atol=0.05 * np.ptp(xy_b, axis=0).max())
    inside = np.flatnonzero(np.all((xy_b >= [ox.min(), oy.min()]) & (xy_b <= [ox.max(), oy.max()]), axis=1))
    assert len(inside) > 3
    np.testing.assert_array_equal(s.selection.rows, inside)
    ringed_x, ringed_y = compare.view_a.rings.getData()
    np.testing.assert_allclose(np.c_[ringed_x, ringed_y], xy_a[inside], atol=1e-5)
    assert len(window.latent.plot.selection_layer.rings.getData()[0]) == len(inside)
    s.comparison.close()
    assert not s.comparison.active and compare.table.rowCount() == 0


def test_every_panel_works_on_a_users_model_opened_through_its_spec(window):
    """The conv VAE of examples/ (its encoder returns a Normal) on sprites: scores, a factor's vector
    and its plane, outliers, all through the window."""
    from model_specs import conv_spec

    s = window.session
    s.open_model(conv_spec(), dataset="sprites")
    wait_idle(s)
    assert s.model_data.foreign and s.latent.points.shape == (9600, 4)
    show(window, window.meaning.factors)
    assert window.meaning.factors.result.importance.shape == (4, 5)
    view = window.meaning.vector
    show(window, view)
    view.source.setCurrentIndex(2)
    view.factor.setCurrentText("y")
    QTest.mouseClick(view.build, QtCore.Qt.MouseButton.LeftButton)
    wait_idle(s)
    assert s.vectors.vector.kind == "factor" and s.vectors.vector.r2 is not None
    QTest.mouseClick(view.show_plane, QtCore.Qt.MouseButton.LeftButton)
    assert s.latent.projection.kind == "vector" and window.latent.projection_combo.currentData() == "vector"
    show(window, window.meaning.outliers)
    assert window.meaning.outliers.grid.count() == window.meaning.outliers.count.value()


def test_a_sweep_point_as_the_second_model(window):
    from latentlab.core.files.bundled import default_checkpoint
    from latentlab.core.files.checkpoint import load_checkpoint
    from latentlab.core.training.sweep import SweepPoint

    s, compare = window.session, window.meaning.compare
    ckpt = load_checkpoint(default_checkpoint())
    weights = {k: v.detach().numpy() for k, v in ckpt.model.state_dict().items()}
    s.runs.set_sweep([SweepPoint(beta=4.0, rate=1.0, distortion=30.0, config=ckpt.config, weights=weights,
                                 history=tuple(ckpt.history))])
    assert compare.points.count() == 1 and compare.use_point.isEnabled()
    QTest.mouseClick(compare.use_point, QtCore.Qt.MouseButton.LeftButton)
    wait_idle(s)
    assert "β = 4" in compare.title_b.text()
    # The same weights on both sides: the same means, the same numbers.
    np.testing.assert_allclose(s.comparison.opened.xy_a, s.comparison.opened.xy_b, atol=1e-5)
    assert s.comparison.entries["A"]["elbo"] == pytest.approx(s.comparison.entries["B"]["elbo"])
    # New means for model A (new weights, once every image is encoded again): A's side follows, B stays.
    before_a, before_b = s.comparison.opened.xy_a.copy(), s.comparison.opened.xy_b
    s.latent.set_points(s.latent.points * 2.0, None, s.latent.logvars)
    wait_idle(s)
    np.testing.assert_allclose(s.comparison.opened.xy_a, 2.0 * before_a, atol=1e-5)
    np.testing.assert_array_equal(s.comparison.opened.xy_b, before_b)


def test_a_broken_or_foreign_vector_file_is_one_sentence_and_changes_nothing(window, tmp_path):
    from latentlab.core.meaning.attributes import vector_between
    from latentlab.core.meaning.vectors import save_vector

    s = window.session
    messages = []
    s.errorRaised.connect(messages.append)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    s.vectors.load(bad)
    wait_idle(s)
    rng = np.random.default_rng(0)
    wide = save_vector(tmp_path / "k5.npz", vector_between(rng.standard_normal((20, 5)), rng.standard_normal((20, 5)) + 1))
    s.vectors.load(wide)
    wait_idle(s)
    assert len(messages) == 2 and "5 dimensions" in messages[1] and all("\n" not in m for m in messages)
    assert s.vectors.vector is None
