"""The prior's reference circles on the latent view."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

PRIOR_MASS = {r: 1.0 - math.exp(-r * r / 2.0) for r in (1, 2, 3)}  # share of N(0, I) mass inside radius r in 2D


class PriorCircles(pg.GraphicsObject):
    """Circles of radius 1, 2, 3 around the origin, each labelled with the prior mass inside it."""

    Z = 8   # above the points (z 0) and the density/manifold layers, below the path (9) and marker (10)

    def __init__(self):
        super().__init__()
        self.setZValue(self.Z)
        angles = np.linspace(0.0, 2 * np.pi, 181)
        self._polys = [QtGui.QPolygonF([QtCore.QPointF(r * np.cos(a), r * np.sin(a)) for a in angles])
                       for r in PRIOR_MASS]
        self._labels = []
        for r, mass in PRIOR_MASS.items():
            text = pg.TextItem(f"{100 * mass:.0f}%", color=(90, 90, 90), anchor=(0, 1))
            text.setParentItem(self)
            text.setPos(r / math.sqrt(2), r / math.sqrt(2))
            self._labels.append(text)
        # Every live update of the points repaints the area the circles cover: while the view does not move,
        # Qt draws them from a pixmap instead of stroking 540 dashed segments again (~1 ms a circle).
        self.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(-3, -3, 6, 6)

    def paint(self, painter: QtGui.QPainter, option=None, widget=None) -> None:
        # Polylines of 180 segments: antialiased dashed ellipses cost ~2 ms each per frame.
        pen = QtGui.QPen(QtGui.QColor(80, 80, 80, 200))
        pen.setCosmetic(True)
        pen.setWidthF(1.2)
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
        painter.setPen(pen)
        for poly in self._polys:
            painter.drawPolyline(poly)
