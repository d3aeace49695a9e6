"""A latent table in the real window (`latentlab gui --table`): its means are the points and no image is
encoded; with a dataset, hover, selection grid and inspector read the rows' images on demand; without
one they say so and everything else works. Drawn both ways: from the density pyramid (the threshold
lowered so that a small table takes that path) and as plain points."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import click_view, drag_view, wait_idle
from PySide6 import QtCore, QtWidgets
from table_files import table_columns, write_parquet

pytest.importorskip("pyarrow")
ALT = QtCore.Qt.KeyboardModifier.AltModifier
ROWS = 200_000


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """200,000 rows, K = 2, their indices within the digits' 1,438 training and 359 test images."""
    path = tmp_path_factory.mktemp("tables") / "digits-table.parquet"
    cols = table_columns(ROWS, 2, train=1438, test=359)
    write_parquet(path, cols)
    return path, cols


@pytest.fixture(params=["pyramid", "points"])
def drawn(request, monkeypatch):
    """Which way the window draws the table's 200,000 points."""
    if request.param == "pyramid":   # as ten million points would be: pictures of its levels until few are in view
        monkeypatch.setattr("latentlab.gui.state.point_density.DENSITY_MIN_POINTS", 50_000)
        monkeypatch.setattr("latentlab.gui.widgets.density_cloud.POINTS_MAX", 5_000)
    return request.param


def open_table(window, qtbot, path, dataset="digits", **kw):
    from latentlab.core.files.bundled import default_checkpoint

    with qtbot.waitSignal(window.session.loaded, timeout=120_000):
        window.session.open_table(path, checkpoint=kw.pop("checkpoint", default_checkpoint()), dataset=dataset, **kw)
    wait_idle(window.session)
    window.latent.plot.grab()   # paint once


def select_rectangle(window, corners):
    """Alt+drag a rectangle on the latent view; the rows inside it by brute force, and the rows selected."""
    from latentlab.core.inference.selection import in_rectangle

    s, plot = window.session, window.latent.plot
    got = []
    plot.viewbox.outlined.connect(lambda pts, shape, done: done and got.append(np.asarray(pts)))
    drag_view(plot, corners, ALT)
    assert got, "no rectangle was drawn"
    return np.flatnonzero(in_rectangle(s.latent.points, got[-1][0], got[-1][-1])), s.selection.rows


def hover_over(window, i: int):
    plot, lp = window.latent.plot, window.session.latent
    scene = plot.viewbox.mapViewToScene(QtCore.QPointF(*map(float, lp.points[i])))
    plot.scene().sigMouseMoved.emit(scene)
    return plot.hover


def test_a_table_with_its_dataset_shows_its_means_and_fetches_images_on_demand(bare_window, qtbot, table, drawn):
    path, cols = table
    w = bare_window
    s, plot = w.session, w.latent.plot
    open_table(w, qtbot, path)
    assert not w.banner.isVisible()
    np.testing.assert_array_equal(s.latent.points, cols["mu"])   # the table's own means: nothing was encoded
    assert s.model_data.data.has_images and len(s.model_data.data.x_train) == ROWS
    if drawn == "pyramid":
        assert plot.cloud.pyramid is s.density.pyramid is s.latent.density and plot.cloud.mode.startswith("level")
        plot.setRange(xRange=(0.1, 0.15), yRange=(0.1, 0.15), padding=0)
        plot.grab()
        assert plot.cloud.mode == "points"   # zoomed in: the few points in view, one by one
        plot.fit()
    else:
        assert plot.cloud.pyramid is None and s.latent.density is None and plot.cloud.count() == ROWS

    w.tools.setCurrentWidget(w.selection)
    expected, selected = select_rectangle(w, [(-0.6, -0.6), (0.0, 0.0), (0.7, 0.5)])
    assert 0 < len(expected) < ROWS
    np.testing.assert_array_equal(selected, expected)
    wait_idle(s)
    view = w.selection
    assert f"{len(expected):,}" in view.summary.text() and "mean KL" in view.summary.text()
    assert not view.grid.pixmap().isNull()   # images of the selected rows, read from the digits
    assert "n/a" not in view.summary.text()   # a reconstruction error: the images are there

    # a row's image is row `index` of its split in the dataset
    data, images = s.model_data.data, s.model_data.data.images
    for row in (3, ROWS - 2):
        source = images.x_train if cols["split"][row] == "train" else images.x_test
        np.testing.assert_array_equal(data.x_train[row], source[cols["index"][row]])
    card = hover_over(w, 12345)
    assert card.isVisible() and not card.image.pixmap().isNull() and "no image" not in card.text.text()



def test_without_a_dataset_views_say_there_are_no_images_and_the_rest_works(bare_window, qtbot, table, drawn):
    from latentlab.gui.state.table_source import NO_IMAGES

    path, cols = table
    w = bare_window
    s, plot = w.session, w.latent.plot
    open_table(w, qtbot, path, dataset=None)
    assert not w.banner.isVisible() and not s.model_data.data.has_images
    assert len(s.latent.points) == ROWS
    assert "reconstruction error" not in w.latent.session.latent.color_options(s.model_data.data)
    click_view(plot, -0.3, 0.8)   # before the Alt+drag (see above)
    assert np.allclose(s.cursor.z, (-0.3, 0.8), atol=0.05) and s.cursor.image is not None

    w.tools.setCurrentWidget(w.selection)
    expected, selected = select_rectangle(w, [(0.2, 0.2), (0.5, 0.9), (1.1, 1.4)])
    np.testing.assert_array_equal(selected, expected)
    wait_idle(s)
    assert "No images" in w.selection.grid.text() and "n/a (no images)" in w.selection.summary.text()
    assert not w.banner.isVisible()   # no error for the missing images, only the one line in the panel

    card = hover_over(w, 777)
    assert card.isVisible() and "no image" in card.text.text()

    s.select_point(42)
    w.tools.setCurrentWidget(w.posterior)
    w.posterior.refresh()
    assert w.posterior.numbers.text() == NO_IMAGES
    np.testing.assert_array_equal(s.selected_mean(), cols["mu"][42])

    s.pick_endpoint_at(*cols["mu"][5])   # Shift-click: the nearest row becomes endpoint A
    assert s.path.endpoints["A"].image is None and np.allclose(s.path.endpoints["A"].z, cols["mu"][5])

    check_sampled_aggregate(s)

    s.runs.train()   # a table's points are fixed: training says why instead
    assert w.banner.isVisible() and "latent table" in w.banner.label.text()


def check_sampled_aggregate(s, sample=20_000):
    """q(z) of a table's points from every k-th of them (as for millions) against q(z) of all of them."""
    import latentlab.gui.state.point_density as density
    from latentlab.core.inference.aggregate import aggregate_density

    full = density.sampled_plane(s.latent)
    density.AGGREGATE_COMPONENTS = sample
    try:
        s.latent.set_show_overlay(True)
        wait_idle(s)
    finally:
        density.AGGREGATE_COMPONENTS = 500_000
    got = s.latent.aggregate
    assert got is not None and len(full[0]) == ROWS
    want = aggregate_density(*full[:2], got["xs"], got["ys"], cell_average=True)
    cell = (got["xs"][1] - got["xs"][0]) ** 2
    assert abs(got["density"].sum() * cell - 1) < 0.02   # a density over the plane, from 20,000 of the 200,000
    assert np.abs(got["density"] - want).sum() * cell < 0.05


def _banner_after(window, qtbot, path, **kw):
    with qtbot.waitSignal(window.session.errorRaised, timeout=120_000):
        from latentlab.core.files.bundled import default_checkpoint

        window.session.open_table(path, checkpoint=kw.pop("checkpoint", default_checkpoint()), **kw)
    wait_idle(window.session)
    text = window.banner.label.text()
    assert window.banner.isVisible() and "\n" not in text and "Traceback" not in text and len(text) <= 300
    assert window.session.latent.points is None   # nothing half-opened
    return text


def test_broken_and_mismatched_tables_are_refused_in_one_banner_sentence(bare_window, qtbot, tmp_path):
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1" + bytes(range(256)) * 40)
    assert "not a readable Parquet file" in _banner_after(bare_window, qtbot, garbage)

    wide = tmp_path / "k3.parquet"
    write_parquet(wide, table_columns(500, 3))
    assert "K = 3" in _banner_after(bare_window, qtbot, wide)   # the digits model has K = 2

    beyond = tmp_path / "beyond.parquet"
    write_parquet(beyond, table_columns(5000, 2))   # indices up to 3,999 in train: digits has 1,438
    assert "give the dataset the table was encoded from" in _banner_after(bare_window, qtbot, beyond, dataset="digits")


def test_file_open_latent_table_dialog_opens_one(bare_window, qtbot, table):
    from latentlab.core.files.bundled import default_checkpoint

    path, _ = table
    w = bare_window

    def fill() -> None:
        dialog = QtWidgets.QApplication.activeModalWidget()
        assert dialog.objectName() == "openTableDialog"
        dialog.findChild(QtWidgets.QLineEdit, "tableFile").setText(str(path))
        dialog.findChild(QtWidgets.QLineEdit, "tableModel").setText(str(default_checkpoint()))
        dialog.findChild(QtWidgets.QLineEdit, "tableDataset").setText("")
        dialog.accept()

    QtCore.QTimer.singleShot(0, fill)
    with qtbot.waitSignal(w.session.loaded, timeout=120_000):
        w.open_table_dialog()
    wait_idle(w.session)
    assert len(w.session.latent.points) == ROWS and not w.session.model_data.data.has_images
