"""The Qt binding must not leak or over-release references while painting: PySide6 6.12.0 drops
a reference to None on every void QPainter call, and a long session then aborts the interpreter."""

import sys

import pytest
from PySide6 import QtCore


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_painting_the_window_keeps_none_alive(window, qtbot):
    for _ in range(3):
        window.grab()
    before = sys.getrefcount(None)
    for _ in range(20):
        window.grab()
    lost = before - sys.getrefcount(None)
    assert lost < 200, f"painting the window 20 times released {lost} references to None"


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None and True are immortal from Python 3.12 on")
def test_qt_binding_keeps_reference_counts_of_none_and_true():
    """Signal emits and void calls, the two paths a GUI session takes thousands of times."""

    class Emitter(QtCore.QObject):
        sig = QtCore.Signal()

    obj = Emitter()
    obj.sig.connect(lambda: None)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(1000):
        obj.setObjectName("x")  # a void C++ method: must not release a reference to None
        obj.sig.emit()          # returns True: must hand out a new reference to it
    assert sys.getrefcount(None) >= none_before - 10, "the binding releases references to None it never took"
    assert sys.getrefcount(True) >= true_before - 10, "the binding releases references to True it never took"
