"""The Qt binding must not leak or over-release references while painting: PySide6 6.12.0 drops
a reference to None on every void QPainter call, and a long session then aborts the interpreter."""

import sys

import pytest


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_painting_the_window_keeps_none_alive(window, qtbot):
    for _ in range(3):
        window.grab()
    before = sys.getrefcount(None)
    for _ in range(20):
        window.grab()
    lost = before - sys.getrefcount(None)
    assert lost < 200, f"painting the window 20 times released {lost} references to None"
