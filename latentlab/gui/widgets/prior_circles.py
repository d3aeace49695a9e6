"""The prior's reference circles on the latent view, or, for a prior the model declares, the
contours of its marginal on the shown pair that hold the same shares of its mass (39%, 86%, 99%)."""

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
        self._circles = self._polys
        self._rect = QtCore.QRectF(-3, -3, 6, 6)

    def set_contours(self, contours: dict | None) -> None:
        """None: the N(0, I) circles; else a declared prior's contour lines ({"lines", "masses"})."""
        self.prepareGeometryChange()
        if contours is None:
            self._polys, self._rect = self._circles, QtCore.QRectF(-3, -3, 6, 6)
            for label, (r, mass) in zip(self._labels, PRIOR_MASS.items()):
                label.setText(f"{100 * mass:.0f}%")
                label.setPos(r / math.sqrt(2), r / math.sqrt(2))
                label.setVisible(True)
        else:
            lines = contours.get("lines", [])
            self._polys = [QtGui.QPolygonF([QtCore.QPointF(float(x), float(y)) for x, y in line]) for line in lines]
            pts = np.concatenate(lines) if lines else np.zeros((1, 2))
            lo, hi = pts.min(0), pts.max(0)
            self._rect = QtCore.QRectF(lo[0], lo[1], max(hi[0] - lo[0], 1e-6), max(hi[1] - lo[1], 1e-6))
            first = {}
            for line, mass in zip(lines, contours.get("masses", [])):
                first.setdefault(mass, line[np.argmax(line.sum(1))])   # the top-right point of each level
            for label, (mass, at) in zip(self._labels, [*first.items(), *[(None, None)] * 3]):
                label.setVisible(mass is not None)
                if mass is not None:
                    label.setText(f"{100 * mass:.0f}%")
                    label.setPos(float(at[0]), float(at[1]))
        self.update()

    def boundingRect(self) -> QtCore.QRectF:
        return self._rect

    def paint(self, painter: QtGui.QPainter, option=None, widget=None) -> None:
        # Polylines of 180 segments: antialiased dashed ellipses cost ~2 ms each per frame.
        pen = QtGui.QPen(QtGui.QColor(80, 80, 80, 200))
        pen.setCosmetic(True)
        pen.setWidthF(1.2)
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
        painter.setPen(pen)
        for poly in self._polys:
            painter.drawPolyline(poly)
