"""Plots that say what they show, and views that open on what matters: collapse bars in their own
units, legends, readable β marks and labels, no squashed empty plot, Fit that shows every point, an
example's most informative plane, points visible over the manifold."""

import numpy as np
import pyqtgraph as pg
import pytest
from gui_helpers import wait_idle

from latentlab.core.files.bundled import examples
from latentlab.core.text import beta_text


def test_beta_is_written_with_three_significant_digits_at_most():
    assert [beta_text(b) for b in (0.1931, 2.683, 20.0, 1.0, 0.01, 12.35, 4000.0)] == \
        ["0.193", "2.68", "20", "1", "0.01", "12.3", "4000"]


def test_collapse_of_a_collapsed_model_says_its_tiny_kl_in_nats(window):
    s, view = window.session, window.collapse
    window.tools.setCurrentWidget(view)
    wait_idle(s)
    kl = np.array([1.31e-4, 1.52e-4])
    s.latent.dim_stats = (kl, np.zeros(2, bool))
    view.refresh()
    axis = view.bars.getPlotItem().getAxis("left")
    assert "(x" not in axis.labelString() and axis.autoSIPrefixScale == 1.0   # bars and ticks in nats, as the label says
    assert "total KL 0.000283 nats" in view.summary.text()


def test_kl_per_dimension_says_which_colour_is_which_dimension(window):
    legend = window.curves.dim_legend
    names = [label.text for _, label in legend.items]
    assert names == ["z1", "z2"]
    for (sample, _), curve in zip(legend.items, window.curves.dim_curves):
        assert sample.item is curve


def test_a_kl_warm_up_is_labelled_where_it_ends(window):
    s, view = window.session, window.curves
    ramp = [{"epoch": e, "beta": min(1.0, e / 10), "recon": 30.0 - e * 0.1, "kl": 2.0, "elbo": -32.0}
            for e in range(1, 41)]
    s.model_data.history = ramp
    s.model_data.historyChanged.emit()
    labelled = [m.label for m in view.markers if getattr(m, "label", None) is not None]
    assert len(view.markers) == 10 and [label.toPlainText() for label in labelled] == ["β = 1"]
    assert labelled[0].fill.color().alpha() > 200   # a card: readable over the curves


def test_sweep_labels_are_short_and_close_neighbours_take_turns(window):
    from latentlab.gui.tabs.sweep import label_anchors

    x = np.array([20.0, 20.2, 20.4, 26.0, 40.0])
    y = np.array([9.0, 8.9, 8.8, 4.0, 0.5])
    anchors = label_anchors(x, y)
    assert anchors[0] != anchors[1] and anchors[1] != anchors[2]   # close neighbours take turns
    assert anchors[3] == (-0.1, 1.1)   # a point on its own: above and to the right, off the falling curve
    assert anchors[-1] == (1.1, -0.1)   # the rightmost: below and to its left, inside the plot


def test_the_empty_interpolation_tab_shows_no_squashed_plot(window, qtbot):
    s, view = window.session, window.interpolation
    window.tools.setCurrentWidget(view)
    wait_idle(s)
    assert view.hint.isVisible() and not view.profile.isVisible()
    s.set_endpoint("A", [1.0, 0.0])
    s.set_endpoint("B", [-1.0, 0.5])
    wait_idle(s)
    assert view.profile.isVisible() and view.profile.height() >= 130


def test_the_posterior_map_has_no_white_margin(window):
    from PySide6 import QtCore

    box = window.posterior.plot.getPlotItem().getViewBox()
    brush = box.background.brush()
    zero = pg.colormap.get("inferno").map(0.0, mode="qcolor")
    assert brush.style() != QtCore.Qt.BrushStyle.NoBrush and brush.color() == zero   # the colour of zero density


def test_fit_shows_every_point_with_a_margin(window, qtbot, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.2, (300, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    x[y == 2, :4, :4] = 1.0   # one bright, compact class: its cluster sits apart from the others
    np.savez(tmp_path / "clusters.npz", x=x, y=y)
    with qtbot.waitSignal(window.session.loaded, timeout=60_000):
        window.open_dataset_spec(f"npz:{tmp_path / 'clusters.npz'}")
    wait_idle(window.session)
    plot = window.latent.plot
    pos = window.session.latent.projection.to2d(window.session.latent.points)
    far = np.argmax(np.abs(pos).max(axis=1))
    pos[far] = [6.5, 9.0]   # one point far out, as a small stray cluster would be
    window.session.latent.points[far] = window.session.latent.projection.lift(pos[far], np.zeros(2))
    window.session.latent.changed.emit()
    plot.fit()
    (x0, x1), (y0, y1) = plot.getPlotItem().viewRange()
    assert x0 < pos[:, 0].min() and pos[:, 0].max() < x1 and y0 < pos[:, 1].min() and pos[:, 1].max() < y1


def test_an_example_opens_on_its_most_informative_plane(window, qtbot):
    example = next(e for e in examples() if e.dataset == "sprites")
    with qtbot.waitSignal(window.session.loaded, timeout=120_000):
        window.examples_menu.actions()[[e.title for e in examples()].index(example.title)].trigger()
    wait_idle(window.session)
    from latentlab.core.inference.analysis import top_dims_by_kl

    s = window.session
    kl, _ = s.dimension_stats()
    assert set(s.latent.projection.dims) == set(int(d) for d in top_dims_by_kl(kl, 2))
    colour = window.latent.plot.color_by
    assert colour in s.model_data.data.factors_train and colour != "shape"
    values = s.model_data.data.factors_train[colour]
    plane = s.latent.points[:, list(s.latent.projection.dims)]
    assert max(abs(np.corrcoef(values, plane[:, i])[0, 1]) for i in range(2)) > 0.5


def test_points_stay_visible_over_the_manifold(window, qtbot):
    """Over the darkest tile (a black image) the background stays light enough for the darkest
    point colours (viridis' low end, the dark label colours) to stand out: contrast ≥ 3."""
    from latentlab.gui.widgets.palette import TAB10

    panel = window.latent
    panel.manifold.setChecked(True)
    qtbot.waitUntil(lambda: len(panel.plot.manifold.items) > 0, timeout=30000)
    opacity = panel.plot.manifold.items[0].opacity()
    background = 1.0 - opacity   # a black tile over the white plot

    def luminance(rgb):
        c = np.asarray(rgb, float) / 255
        c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])

    darkest = min([luminance(pg.colormap.get("viridis").map(0.0, mode="byte")[:3])]
                  + [luminance(tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))) for h in TAB10])
    bg = luminance([255 * background] * 3)
    assert (bg + 0.05) / (darkest + 0.05) >= 3.0


@pytest.mark.parametrize("cuda, available, said", [("13.0", False, "CUDA is not available"), (None, False, ""),
                                                   ("13.0", True, None)])
def test_the_about_box_says_why_a_cuda_build_uses_the_cpu(monkeypatch, cuda, available, said):
    import torch

    from latentlab.core.training.device import describe

    monkeypatch.setattr(torch.version, "cuda", cuda)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    text = describe(torch.device("cpu"), why=True)
    if said is None or not said:
        assert text == "cpu"
    else:
        assert said in text and cuda in text
