"""Two models side by side, in a window of their own (File → Compare with a second model…): each
model's latent means on the same training images with a linked selection (Alt+drag or Alt+Shift+drag
in either view; the same images are ringed in both, and on the main latent view), a table of both
models' test numbers, and the inspected image as each model reconstructs it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from latentlab.core.text import short
from latentlab.gui.state.session import Session
from latentlab.gui.widgets.latent_picking import SELECTED_SHOWN, FewPoints, PickViewBox, outline_polygon
from latentlab.gui.widgets.palette import argb, label_colors
from latentlab.gui.widgets.point_cloud import PointCloudItem
from latentlab.gui.widgets.small_screens import keep_axis_labels_whole

from .pictures import tile

IMAGE_PX = 96


class SideView(pg.PlotWidget):
    """One model's means in 2-D; selections drawn here select the session's rows."""

    def __init__(self, session: Session, name: str):
        self.viewbox = PickViewBox()
        super().__init__(viewBox=self.viewbox, background="w")
        self.setObjectName(f"compareLatent{name}")
        self.session, self.name = session, name
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.setAspectLocked(True)
        item.hideButtons()
        item.setTitle(f"model {name}")
        self.cloud = PointCloudItem(size=3)
        self.rings = FewPoints(size=8, pen=pg.mkPen((0, 0, 0, 170), width=1.2), brush=None)
        self.rings.setZValue(5)
        self.inspected = FewPoints(size=16, symbol="d", pen=pg.mkPen((0, 0, 0), width=2), brush=pg.mkBrush(255, 255, 0, 160))
        self.inspected.setZValue(6)
        self.outline = pg.PlotCurveItem(pen=pg.mkPen((20, 20, 20), width=1.5, style=QtCore.Qt.PenStyle.DashLine))
        for it in (self.cloud, self.rings, self.inspected, self.outline):
            item.addItem(it)
        self.xy: np.ndarray | None = None
        self.viewbox.outlined.connect(self._outlined)
        self.viewbox.picked.connect(self._picked)

    def show_points(self, xy: np.ndarray | None, labels: np.ndarray | None, n_labels: int, axes=("", ""),
                    shown=((0.0, 0.0), (1.0, 1.0))) -> None:
        self.xy = xy
        self.outline.setData([], [])
        if xy is None:
            self.cloud.setData(np.zeros((0, 2)), np.zeros(0, np.uint32))
            self.refresh_rings()
            return
        self.cloud.setData(xy, argb(label_colors(n_labels))[labels])
        item = self.getPlotItem()
        item.setLabel("bottom", axes[0])
        item.setLabel("left", axes[1])
        # Python floats: pyqtgraph compares the range with limits near float64's largest, which float32 overflows.
        (x0, y0), (x1, y1) = shown
        self.setRange(xRange=(float(x0), float(x1)), yRange=(float(y0), float(y1)), padding=0.05)
        self.refresh_rings()

    def refresh_rings(self) -> None:
        rows = self.session.selection.rows
        if self.xy is None or not len(rows):
            self.rings.setData([], [])
        else:
            shown = rows[rows < len(self.xy)]
            if len(shown) > SELECTED_SHOWN:
                shown = np.sort(np.random.default_rng(0).choice(shown, SELECTED_SHOWN, replace=False))
            self.rings.setData(self.xy[shown, 0], self.xy[shown, 1])
        if not len(rows):
            self.outline.setData([], [])
        row = self.session.cursor.selected
        if self.xy is not None and row is not None and row < len(self.xy):
            self.inspected.setData([self.xy[row, 0]], [self.xy[row, 1]])
        else:
            self.inspected.setData([], [])

    def ringed(self) -> np.ndarray:
        """The rows ringed here now (for tests and for the eye)."""
        x, _ = self.rings.getData()
        return np.zeros(0) if x is None else np.asarray(x)

    def _outlined(self, outline, shape: str, finished: bool) -> None:
        from latentlab.core.inference.selection import in_polygon, in_rectangle

        pts = outline_polygon(outline, shape)
        closed = np.vstack([pts, pts[:1]])
        self.outline.setData(closed[:, 0], closed[:, 1])
        if finished and self.xy is not None:
            inside = in_rectangle(self.xy, pts[0], pts[2]) if shape == "rectangle" else in_polygon(self.xy, pts)
            self.session.selection.set(np.flatnonzero(inside), shape)
            self.session.status.emit(f"Selected {int(inside.sum()):,} points in model {self.name}'s view.")

    def _picked(self, x: float, y: float, _modifiers) -> None:
        """A click inspects the nearest training image (both models reconstruct it)."""
        if self.xy is None or not self.cloud.count():
            return
        i = self.cloud.nearest(x, y)
        if i is not None:
            self.session.select_point(int(i))


class CompareView(QtWidgets.QWidget):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent, QtCore.Qt.WindowType.Window)
        self.setObjectName("compareView")
        self.setWindowTitle("latentlab — two models side by side")
        self.session, self.comparison = session, session.comparison
        self.title_a = QtWidgets.QLabel()
        self.title_b = QtWidgets.QLabel("model B: none (open one)")
        for label in (self.title_a, self.title_b):
            label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_checkpoint = QtWidgets.QPushButton("Open checkpoint…")
        self.open_spec = QtWidgets.QPushButton("Open SPEC…")
        self.open_spec.setToolTip("A model SPEC: PATH.safetensors, PATH.py:NAME, package.module:NAME or diffusers:DIR "
                                  "(File → Compare with a second model… also takes weights and a likelihood)")
        self.points = QtWidgets.QComboBox()
        self.points.setToolTip("A model of the β sweep")
        self.use_point = QtWidgets.QPushButton("Compare sweep point")
        self.close_b = QtWidgets.QPushButton("Close B")
        bar = QtWidgets.QHBoxLayout()
        for w in (self.open_checkpoint, self.open_spec, self.points, self.use_point, self.close_b):
            bar.addWidget(w)
        bar.addStretch(1)
        titles = QtWidgets.QHBoxLayout()
        titles.addWidget(self.title_a, 1)
        titles.addWidget(self.title_b, 1)
        self.view_a, self.view_b = SideView(session, "A"), SideView(session, "B")
        for view in (self.view_a, self.view_b):   # a window of its own: the main window's pass does not reach it
            keep_axis_labels_whole(view)
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setObjectName("compareTable")
        self.table.setHorizontalHeaderLabels(["", "model A", "model B"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.images = [QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignCenter) for _ in range(3)]
        self.image_caption = QtWidgets.QLabel("Click a point in either view to see that image through both models.",
                                              wordWrap=True)
        pictures = QtWidgets.QGridLayout()
        for col, (label, name) in enumerate(zip(self.images, ("image", "model A", "model B"))):
            label.setMinimumSize(IMAGE_PX, IMAGE_PX)
            pictures.addWidget(label, 0, col)
            pictures.addWidget(QtWidgets.QLabel(name, alignment=QtCore.Qt.AlignmentFlag.AlignCenter), 1, col)
        side = QtWidgets.QVBoxLayout()
        side.addWidget(self.table, 1)
        side.addLayout(pictures)
        side.addWidget(self.image_caption)
        right = QtWidgets.QWidget()
        right.setLayout(side)
        right.setMinimumWidth(320)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(self.view_a)
        split.addWidget(self.view_b)
        split.addWidget(right)
        split.setSizes([420, 420, 360])
        hint = QtWidgets.QLabel("Alt+drag a rectangle or Alt+Shift+drag a lasso in either view: the same images are "
                                "ringed in both (and on the main latent view). Esc there clears the selection.")
        hint.setStyleSheet("color: #555;")
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addLayout(titles)
        layout.addWidget(split, 1)
        layout.addWidget(hint)
        self.resize(1200, 640)

        self.open_checkpoint.clicked.connect(self._checkpoint_dialog)
        self.open_spec.clicked.connect(self._spec_dialog)
        self.use_point.clicked.connect(self._use_point)
        self.close_b.clicked.connect(self.comparison.close)
        self.comparison.changed.connect(self.refresh)
        self.comparison.tableChanged.connect(self._show_table)
        self.comparison.decodedChanged.connect(self._show_decoded)
        session.selection.changed.connect(self._refresh_rings)
        session.cursor.selectionChanged.connect(self._refresh_rings)
        session.runs.sweepChanged.connect(self._refresh_points)
        session.model_data.modelChanged.connect(self._refresh_titles)
        self._refresh_points()
        self.refresh()

    def refresh(self) -> None:
        opened, data = self.comparison.opened, self.session.model_data.data
        self._refresh_titles()
        self.close_b.setEnabled(opened is not None)
        if opened is None or data is None:
            self.view_a.show_points(None, None, 1)
            self.view_b.show_points(None, None, 1)
            self._show_table()
            self._show_decoded()
            return
        n = len(data.label_names)
        self.view_a.show_points(opened.xy_a, data.y_train, n, opened.axes[0], opened.ranges[0])
        self.view_b.show_points(opened.xy_b, data.y_train, n, opened.axes[1], opened.ranges[1])

    def _refresh_titles(self) -> None:
        md = self.session.model_data
        self.title_a.setText(f"<b>model A</b>: {short(md.title, 70)}" if md.model is not None else "model A: none")
        opened = self.comparison.opened
        self.title_b.setText(f"<b>model B</b>: {short(opened.title, 70)}" if opened else "model B: none (open one)")

    def _refresh_rings(self) -> None:
        self.view_a.refresh_rings()
        self.view_b.refresh_rings()

    def _refresh_points(self) -> None:
        self.points.clear()
        for p in self.session.runs.sweep_points:
            self.points.addItem(f"β = {p.beta:g}", p)
        self.points.setEnabled(self.points.count() > 0)
        self.use_point.setEnabled(self.points.count() > 0)

    def _show_table(self) -> None:
        rows = self.comparison.rows()
        self.table.setRowCount(len(rows))
        for r, (name, a, b) in enumerate(rows):
            self.table.setItem(r, 0, QtWidgets.QTableWidgetItem(name))
            for c, v in ((1, a), (2, b)):
                text = "…" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:.3f}"
                cell = QtWidgets.QTableWidgetItem(text)
                cell.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, cell)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)

    def _show_decoded(self) -> None:
        decoded = self.comparison.decoded
        if decoded is None:
            for label in self.images:
                label.clear()
            return
        row, *images = decoded
        for label, image in zip(self.images, images):
            label.setPixmap(tile(image, IMAGE_PX))
        self.image_caption.setText(f"Training image {row} and its reconstruction (decoded mean) by each model.")

    def _checkpoint_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Second model", str(Path.home()),
                                                        "latentlab checkpoints (*.safetensors)")
        if path:
            self.comparison.open_spec(path)

    def _spec_dialog(self) -> None:
        spec, ok = QtWidgets.QInputDialog.getText(self, "Second model", "Model SPEC:")
        if ok and spec.strip():
            self.comparison.open_spec(spec.strip())

    def _use_point(self) -> None:
        point = self.points.currentData()
        if point is not None:
            self.comparison.open_point(point)
