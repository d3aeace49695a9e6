"""β sweep: train one model per β in the background and plot rate (KL) against distortion
(reconstruction NLL); clicking a point opens that model in the explorer."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from latentlab.core.text import beta_text
from latentlab.gui.state.session import Session
from latentlab.gui.widgets.small_screens import FlowLayout


class SweepView(QtWidgets.QWidget):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.setObjectName("sweepView")
        self.session = session
        self.runs = session.runs  # its training request supplies the model shape and learning rate
        self.lo = QtWidgets.QDoubleSpinBox(decimals=3, minimum=0.01, maximum=20.0, value=0.1)
        self.hi = QtWidgets.QDoubleSpinBox(decimals=3, minimum=0.01, maximum=20.0, value=10.0)
        self.count = QtWidgets.QSpinBox(minimum=2, maximum=24, value=8)
        self.epochs = QtWidgets.QSpinBox(minimum=1, maximum=10000, value=30)
        self.start = QtWidgets.QPushButton("Run sweep")
        self.start.setToolTip("Train one fresh model per β (log-spaced), one after another, with the shape "
                              "set in the Training form")
        self.save = QtWidgets.QPushButton("Save…")
        self.open = QtWidgets.QPushButton("Open…")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        bar = FlowLayout()   # wraps on a narrow window
        for w in (QtWidgets.QLabel("β from"), self.lo, QtWidgets.QLabel("to"), self.hi, QtWidgets.QLabel("models"),
                  self.count, QtWidgets.QLabel("epochs each"), self.epochs, self.start, self.save, self.open, self.progress):
            bar.addWidget(w)
        self.plot = pg.PlotWidget(background="w")
        item = self.plot.getPlotItem()
        item.setLabel("bottom", "distortion: reconstruction NLL (nats, test set)")
        item.setLabel("left", "rate: KL (nats, test set)")
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setMenuEnabled(False)
        self.line = item.plot([], [], pen=pg.mkPen((150, 150, 150), width=1))
        self.scatter = pg.ScatterPlotItem(size=12, brush=pg.mkBrush("#1f77b4"), pen=pg.mkPen("w"), hoverable=True)
        self.scatter.sigClicked.connect(self._clicked)
        item.addItem(self.scatter)
        self.labels: list = []
        hint = QtWidgets.QLabel("Each point is one β; click a point to explore that model.")
        hint.setStyleSheet("color: #555;")
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.plot, 1)
        layout.addWidget(hint)
        self.start.clicked.connect(self.toggle)
        self.save.clicked.connect(self._save_dialog)
        self.open.clicked.connect(self._open_dialog)
        self.runs.sweepChanged.connect(self.refresh)
        self.runs.sweepProgress.connect(self._on_progress)
        self.runs.trainingChanged.connect(self._on_busy)
        session.model_data.modelChanged.connect(self._on_model)
        self.refresh()

    def _on_model(self) -> None:
        md = self.session.model_data
        self._on_busy(self.runs.busy)
        if md.foreign and not md.model.trainable:
            self.start.setToolTip(f"{md.model.describe()} has no trainable parameters, so there is nothing to fine-tune")
        elif md.foreign:
            self.start.setToolTip(f"Fine-tune one copy of {md.model.describe()} per β (log-spaced), one after "
                                  "another, from its current weights; your files are not written")
        else:
            self.start.setToolTip("Train one fresh model per β (log-spaced), one after another, with the shape "
                                  "set in the Training form")

    def betas(self) -> list[float]:
        from latentlab.core.training.sweep import log_betas

        lo, hi = sorted((self.lo.value(), self.hi.value()))
        return log_betas(lo, hi, self.count.value())

    def toggle(self) -> None:
        if self.runs.sweeping:
            self.runs.stop()
            return
        self.runs.start_sweep(self.betas(), self.epochs.value())

    def _on_busy(self, busy: bool) -> None:
        sweeping = busy and self.runs.sweeping
        self.start.setText("Stop sweep" if sweeping else "Run sweep")
        md = self.session.model_data
        trainable = not md.foreign or md.model.trainable
        self.start.setEnabled(sweeping or (not busy and trainable))
        self.progress.setVisible(sweeping)

    def _on_progress(self, i: int, n: int, snap) -> None:
        self.progress.setValue(int(1000 * (i + snap.fraction) / n))
        self.progress.setFormat(f"model {i + 1}/{n}")

    def refresh(self) -> None:
        pts = self.runs.sweep_points
        item = self.plot.getPlotItem()
        for label in self.labels:
            item.removeItem(label)
        self.labels = []
        d = np.array([p.distortion for p in pts], float)
        r = np.array([p.rate for p in pts], float)
        self.line.setData(d, r)
        self.scatter.setData(d, r, data=list(range(len(pts))))
        for p, anchor in zip(pts, label_anchors(d, r)):
            label = pg.TextItem(f"β = {beta_text(p.beta)}", color=(40, 40, 40), anchor=anchor)
            label.setPos(p.distortion, p.rate)
            item.addItem(label)
            self.labels.append(label)
        if len(pts):   # room round the points for their labels, which the view's own range ignores
            pad = lambda v: 0.25 * (np.ptp(v) or abs(float(v[0])) or 1.0)  # noqa: E731
            self.plot.setRange(xRange=(d.min() - pad(d), d.max() + pad(d)), yRange=(r.min() - pad(r), r.max() + pad(r)),
                               padding=0)
        self.save.setEnabled(bool(pts))

    def _clicked(self, _item, points, _ev=None) -> None:
        if len(points):
            self.session.use_sweep_point(self.runs.sweep_points[int(points[0].data())])

    def _base(self):
        """The foreign model a sweep fine-tunes copies of (None for latentlab's own VAEs)."""
        md = self.session.model_data
        return md.model if md.foreign else None

    def save_to(self, folder) -> None:
        self.runs.save_sweep(folder)
        self.session.status.emit(f"Saved {len(self.runs.sweep_points)} models of the sweep in {folder}.")

    def open_from(self, folder) -> None:
        from latentlab.core.training.sweep import load_sweep

        if not self.session.confirm_discard("open another sweep", "sweep"):
            return
        points, dataset = load_sweep(folder, base=self._base())
        data = self.session.model_data.data
        config = points[0].config
        if data is not None and config is not None and config.image_shape != data.image_shape:
            raise ValueError(f"the sweep in {folder} was trained on {dataset}, whose images do not match "
                             f"the open dataset; open {dataset} first")
        self.runs.set_sweep(points, dataset=dataset or self.session.model_data.dataset_spec, saved=True)

    def _save_dialog(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Save the sweep into a folder")
        if folder:
            self._guard(self.save_to, folder)

    def _open_dialog(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a saved sweep")
        if folder:
            self._guard(self.open_from, folder)

    def _guard(self, fn, folder) -> None:
        from latentlab.core.errors import LatentLabError

        try:
            fn(folder)
        except (LatentLabError, ValueError) as exc:
            text = str(exc)
            self.session.report_error(text[0].upper() + text[1:] + ("" if text.endswith(".") else "."))


def label_anchors(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
    """Where each point's label sits (a TextItem anchor), off the falling rate–distortion curve:
    above and to the right of its point, or below and to the left, taking turns where neighbours
    are close enough for their labels to meet; below-left near the right edge."""
    if not len(x):
        return []
    span = lambda v: np.ptp(v) or 1.0  # noqa: E731
    u, v = (x - x.min()) / span(x), (y - y.min()) / span(y)
    above_right, below_left = (-0.1, 1.1), (1.1, -0.1)
    anchors = []
    for i in range(len(x)):
        close = i > 0 and abs(u[i] - u[i - 1]) < 0.15 and abs(v[i] - v[i - 1]) < 0.15
        if close:
            anchors.append(below_left if anchors[-1] == above_right else above_right)
        else:
            anchors.append(below_left if u[i] > 0.85 else above_right)
    return anchors
