"""A plot widget written to a file as it is on screen: a PNG picture, or an SVG drawing."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtGui, QtWidgets


def export_plot(plot: QtWidgets.QWidget, path) -> bool:
    """`plot` as a PNG picture or, for a .svg name, an SVG drawing; False when nothing was written."""
    path = str(path)
    if not path.lower().endswith(".svg"):
        return plot.grab().save(path, "PNG")
    from PySide6 import QtSvg

    generator = QtSvg.QSvgGenerator()
    generator.setFileName(path)
    generator.setSize(plot.size())
    generator.setViewBox(plot.rect())
    generator.setTitle("latentlab latent view")
    painter = QtGui.QPainter()
    if not painter.begin(generator):
        return False
    plot.render(painter)
    painter.end()
    return Path(path).is_file() and Path(path).stat().st_size > 0
