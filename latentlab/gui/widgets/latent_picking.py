"""Picking on the latent plot: the view box that turns mouse gestures into picks and outlines, plain
presses taken before the scene's item search, and the layer that draws a rectangle or lasso
selection (its outline and rings round the chosen points)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

SELECTED_SHOWN = 5000   # selected points ringed on the plot (a seeded sample of bigger selections)
ALT = QtCore.Qt.KeyboardModifier.AltModifier
SHIFT = QtCore.Qt.KeyboardModifier.ShiftModifier


class PickViewBox(pg.ViewBox):
    """Left click or drag picks a latent position; Alt+drag draws a selection rectangle, Alt+Shift+drag
    a lasso; Ctrl+left or middle drag pans, wheel zooms, right drag zooms."""

    picked = QtCore.Signal(float, float, object)
    outlined = QtCore.Signal(object, str, bool)   # outline points [(x, y), ...], "rectangle" or "lasso", finished

    def __init__(self):
        super().__init__()
        self._outline: list[tuple[float, float]] = []
        self._shape = ""

    def mouseClickEvent(self, ev):
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            self.picked.emit(p.x(), p.y(), ev.modifiers())
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None):
        left = ev.button() == QtCore.Qt.MouseButton.LeftButton
        if left and (ev.modifiers() & ALT or (self._outline and not ev.isStart())):
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            if ev.isStart():
                start = self.mapSceneToView(ev.buttonDownScenePos())
                self._outline = [(start.x(), start.y())]
                self._shape = "lasso" if ev.modifiers() & SHIFT else "rectangle"
            if self._outline:
                self._outline.append((p.x(), p.y()))
                self.outlined.emit(list(self._outline), self._shape, ev.isFinish())
            if ev.isFinish():
                self._outline = []
            return
        if left and not ev.modifiers() & QtCore.Qt.KeyboardModifier.ControlModifier:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            self.picked.emit(p.x(), p.y(), ev.modifiers())
        else:
            super().mouseDragEvent(ev, axis)


class DirectPicks:
    """Plain left presses on the plot's data area, taken before pyqtgraph's scene sees them.

    Through the scene a click costs an item search on press (two, in fact) and another on release,
    and reaches the view box only on release, after any scatter item under the mouse could swallow it
    (the decode marker did, so a click close to it decoded nothing). Here a plain press (no modifier)
    picks at once, a drag past the drag distance picks as it moves, and the release ends it, with no
    hover work in between. Other buttons, modifier gestures and presses on `avoid`'s items (the
    legend, which can be dragged) go to the scene as before. The owning view forwards its mouse
    events and calls the scene's handler when a method returns False."""

    def __init__(self, view: pg.GraphicsView, viewbox: PickViewBox, avoid=lambda: (), on_press=lambda: None):
        self.view, self.viewbox, self.avoid, self.on_press = view, viewbox, avoid, on_press
        self._down: QtCore.QPointF | None = None   # scene position of the press being handled here
        self._last: QtCore.QPointF | None = None   # where it last picked
        self._dragging = False

    def press(self, ev) -> bool:
        if (ev.button() != QtCore.Qt.MouseButton.LeftButton or ev.buttons() != QtCore.Qt.MouseButton.LeftButton
                or ev.modifiers() != QtCore.Qt.KeyboardModifier.NoModifier):
            return False
        pos = self._scene_pos(ev)
        if not self.viewbox.sceneBoundingRect().contains(pos) or any(
                item.isVisible() and item.sceneBoundingRect().contains(pos) for item in self.avoid()):
            return False
        self._down, self._dragging = pos, False
        ev.accept()
        self.on_press()
        self._pick(pos)
        return True

    def move(self, ev) -> bool:
        if self._down is None:
            return False
        pos = self._scene_pos(ev)
        # As pyqtgraph does, a press becomes a drag once the mouse has moved a few pixels.
        if self._dragging or (pos - self._down).manhattanLength() >= QtWidgets.QApplication.startDragDistance():
            self._dragging = True
            self._pick(pos)
        ev.accept()
        return True

    def release(self, ev) -> bool:
        if self._down is None:
            return False
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            pos = self._scene_pos(ev)
            if self._dragging and pos != self._last:   # a drag ends where it is let go
                self._pick(pos)
            self._down = None
        ev.accept()
        return True

    def _scene_pos(self, ev) -> QtCore.QPointF:
        return self.view.mapToScene(ev.position().toPoint())

    def _pick(self, scene_pos: QtCore.QPointF) -> None:
        self._last = scene_pos
        p = self.viewbox.mapSceneToView(scene_pos)
        self.viewbox.picked.emit(p.x(), p.y(), QtCore.Qt.KeyboardModifier.NoModifier)


class DirectPickView:
    """Mixin for the plot widget (before pg.PlotWidget in its bases): its mouse events go to its
    DirectPicks, `self.presses`, and to pyqtgraph's scene when that does not take them."""

    presses: DirectPicks

    def mousePressEvent(self, ev) -> None:  # noqa: N802 - Qt's names
        if not self.presses.press(ev):
            super().mousePressEvent(ev)

    def mouseDoubleClickEvent(self, ev) -> None:  # noqa: N802
        if not self.presses.press(ev):
            super().mouseDoubleClickEvent(ev)

    def mouseMoveEvent(self, ev) -> None:  # noqa: N802
        if not self.presses.move(ev):
            super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev) -> None:  # noqa: N802
        if not self.presses.release(ev):
            super().mouseReleaseEvent(ev)


class FewPoints(pg.ScatterPlotItem):
    """A scatter item for a handful of markers that hides itself while it has none: drawn empty, each
    still cost 0.2–0.5 ms of every latent-view frame."""

    def setData(self, *args, **kwargs):
        super().setData(*args, **kwargs)
        self.setVisible(len(self.data) > 0)


class SelectionLayer:
    """The selection drawn over the points. Make it after the plot's own handlers are connected, so
    that it redraws from the point cloud after the cloud has taken new points."""

    def __init__(self, plot: pg.PlotItem, viewbox: PickViewBox, cloud, session):
        self.session, self.cloud = session, cloud
        self.latent, self.selection = session.latent, session.selection
        self.region = pg.PlotCurveItem(pen=pg.mkPen((20, 20, 20), width=1.5, style=QtCore.Qt.PenStyle.DashLine))
        self.region.setZValue(13)
        plot.addItem(self.region)
        self.rings = FewPoints(size=7, pen=pg.mkPen((0, 0, 0, 140), width=1), brush=None)
        self.rings.setZValue(7)
        plot.addItem(self.rings)
        viewbox.outlined.connect(self.on_outlined)
        self.selection.changed.connect(self.refresh)
        self.latent.changed.connect(self.refresh)
        self.latent.projectionChanged.connect(self._on_projection)

    def _on_projection(self) -> None:
        self.region.setData([], [])   # the outline was drawn in the old plane; the rings follow the points
        self.refresh()

    def refresh(self) -> None:
        """Ring the selected points that are shown (a sample of a big selection) and keep its outline."""
        lp, rows = self.latent, self.selection.rows
        if not len(rows) or lp.points is None or lp.projection is None:
            self.rings.setData([], [])
            self.region.setData([], [])
            return
        shown = lp.shown_of(rows)
        if len(shown) > SELECTED_SHOWN:
            shown = np.sort(np.random.default_rng(0).choice(shown, SELECTED_SHOWN, replace=False))
        xy = self.cloud.positions(shown) if self.cloud.count() == len(lp.points) \
            else lp.projection.to2d(lp.points[shown]).reshape(-1, 2)
        self.rings.setData(xy[:, 0], xy[:, 1])

    def on_outlined(self, outline, shape: str, finished: bool) -> None:
        pts = outline_polygon(outline, shape)
        closed = np.vstack([pts, pts[:1]])
        self.region.setData(closed[:, 0], closed[:, 1])
        if finished:
            self.session.analyses.select_region(pts if shape == "lasso" else pts[[0, 2]], shape)
            if not len(self.selection.rows):
                self.region.setData([], [])


def outline_polygon(outline, shape: str) -> np.ndarray:
    """The polygon (M, 2) a gesture outlines: a lasso's points, or a rectangle's four corners from
    the drag's first and last points (corners 0 and 2 are those two)."""
    pts = np.asarray(outline, dtype=np.float64)
    if shape == "rectangle":
        (x0, y0), (x1, y1) = pts[0], pts[-1]
        pts = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    return pts
