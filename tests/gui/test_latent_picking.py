"""Plain presses on the latent view decode at once, before pyqtgraph's scene (DirectPicks); what
they do not take (the legend, other buttons, modifier gestures) still reaches the scene."""

import pytest
from gui_helpers import click_view, drag_view, send_mouse, view_to_widget, where_click_lands
from PySide6 import QtCore

LEFT = QtCore.Qt.MouseButton.LeftButton
NONE = QtCore.Qt.MouseButton.NoButton
PRESS, RELEASE = QtCore.QEvent.Type.MouseButtonPress, QtCore.QEvent.Type.MouseButtonRelease


def test_a_press_decodes_before_the_button_is_released(window):
    plot, s = window.latent.plot, window.session
    send_mouse(plot.viewport(), PRESS, view_to_widget(plot, 1.2, -0.7), LEFT)
    assert s.cursor.z == pytest.approx([1.2, -0.7], abs=0.05)
    assert window.decoded.z_label.text().startswith(f"z = ({where_click_lands(plot, 1.2, -0.7)[0]:+.2f}")
    send_mouse(plot.viewport(), RELEASE, view_to_widget(plot, 1.2, -0.7), NONE)
    assert s.cursor.z == pytest.approx([1.2, -0.7], abs=0.05)   # the release adds nothing


def test_a_click_beside_the_marker_moves_it(window):
    """The marker's symbol is 18 px wide; a click on it a few pixels from its centre is a new point."""
    plot, s = window.latent.plot, window.session
    click_view(plot, 0.5, 0.5)
    px = plot.viewbox.viewPixelSize()[0]
    click_view(plot, 0.5 + 5 * px, 0.5)
    assert s.cursor.z[0] == pytest.approx(0.5 + 5 * px, abs=1.5 * px)
    assert plot.marker.data["x"][0] == pytest.approx(s.cursor.z[0])


def test_a_small_jitter_is_a_click_and_a_drag_follows_the_mouse(window):
    plot, s = window.latent.plot, window.session
    seen = []
    s.cursor.changed.connect(lambda: seen.append(s.cursor.z.copy()))
    px = plot.viewbox.viewPixelSize()[0]
    drag_view(plot, [(1.0, 1.0), (1.0 + px, 1.0)])   # one pixel: below the drag distance
    assert len(seen) == 1 and seen[0] == pytest.approx([1.0, 1.0], abs=1.5 * px)
    seen.clear()
    drag_view(plot, [(-1.0, 0.0), (-0.5, 0.0), (0.0, 0.0), (0.5, 0.0)])
    assert [round(float(z[0]), 1) for z in seen] == [-1.0, -0.5, 0.0, 0.5]


def test_gestures_with_modifiers_and_the_legend_go_to_the_scene(window):
    plot, s = window.latent.plot, window.session
    click_view(plot, 0.0, 0.0)
    legend = plot.legend
    start = legend.pos()
    corner = legend.mapRectToScene(legend.boundingRect()).center()
    pos = plot.mapFromScene(corner)
    # a drag on the legend moves the legend and decodes nothing
    drag_view(plot, [tuple(plot.viewbox.mapSceneToView(plot.mapToScene(p)).toTuple())
                     for p in (pos, pos + QtCore.QPoint(-20, 10), pos + QtCore.QPoint(-40, 20))])
    assert legend.pos() != start
    assert s.cursor.z == pytest.approx([0.0, 0.0], abs=0.05)
    # Alt+drag still draws a selection rectangle instead of decoding
    drag_view(plot, [(-2.0, -2.0), (-1.0, -1.0), (2.0, 2.0)], QtCore.Qt.KeyboardModifier.AltModifier)
    assert len(s.selection.rows) > 0
    assert s.cursor.z == pytest.approx([0.0, 0.0], abs=0.05)
