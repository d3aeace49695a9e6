"""Shared helpers for the GUI tests: real mouse events on the latent plot."""

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest


def view_to_widget(plot, x: float, y: float) -> QtCore.QPoint:
    scene = plot.viewbox.mapViewToScene(QtCore.QPointF(x, y))
    return plot.mapFromScene(scene)


def where_click_lands(plot, x: float, y: float) -> tuple[float, float]:
    """The view position click_view(plot, x, y) really clicks: (x, y) rounded to its pixel."""
    p = plot.viewbox.mapSceneToView(plot.mapToScene(view_to_widget(plot, x, y)))
    return p.x(), p.y()


def click_view(plot, x: float, y: float, modifier=QtCore.Qt.KeyboardModifier.NoModifier) -> None:
    QTest.mouseClick(plot.viewport(), QtCore.Qt.MouseButton.LeftButton, modifier, view_to_widget(plot, x, y))


def send_mouse(widget, kind, pos: QtCore.QPoint, buttons, modifiers=QtCore.Qt.KeyboardModifier.NoModifier) -> None:
    """QTest.mouseMove carries no buttons in Qt 6, so drags are sent as explicit events."""
    button = QtCore.Qt.MouseButton.LeftButton if kind != QtCore.QEvent.Type.MouseMove else QtCore.Qt.MouseButton.NoButton
    gpos = widget.mapToGlobal(pos)
    event = QtGui.QMouseEvent(kind, QtCore.QPointF(pos), QtCore.QPointF(gpos), button, buttons, modifiers)
    QtWidgets.QApplication.sendEvent(widget, event)


def drag_view(plot, points, modifiers=QtCore.Qt.KeyboardModifier.NoModifier) -> None:
    """Each position is mapped just before its event, so a layout change mid-drag cannot skew it."""
    vp = plot.viewport()
    left = QtCore.Qt.MouseButton.LeftButton
    send_mouse(vp, QtCore.QEvent.Type.MouseButtonPress, view_to_widget(plot, *points[0]), left, modifiers)
    for x, y in points[1:]:
        QTest.qWait(15)  # pyqtgraph drops moves closer than 10 ms apart (its mouseRateLimit)
        send_mouse(vp, QtCore.QEvent.Type.MouseMove, view_to_widget(plot, x, y), left, modifiers)
    send_mouse(vp, QtCore.QEvent.Type.MouseButtonRelease, view_to_widget(plot, *points[-1]),
               QtCore.Qt.MouseButton.NoButton, modifiers)



def wait_idle(session, timeout_ms: int = 60000, stop: bool = False) -> None:
    """Wait until every background job and training run of the session has finished and its results
    (and whatever they started in turn) have arrived; with stop, stop runs (a queued or debounced
    retrain included) while waiting. Fails the test on timeout."""
    deadline = QtCore.QDeadlineTimer(timeout_ms)
    while True:
        if stop:
            session.runs.stop()
        idle = session.wait_until_idle(200 if stop else max(1, deadline.remainingTime()))
        if idle and not session.runs.busy:
            return
        assert not deadline.hasExpired(), "background work still running after the timeout"


def train_briefly(window):
    """One epoch of training in the window: its model is then unsaved. Returns the session."""
    s = window.session
    s.runs.set_request(epochs=1)
    s.runs.train()
    wait_idle(s)
    assert s.model_data.unsaved
    return s
