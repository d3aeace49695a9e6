"""The points selected on the latent view: how many, a grid of their images, their labels, their
mean KL and reconstruction error; export as CSV, clear."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from latentlab.gui.state import work
from latentlab.gui.state.session import Session
from latentlab.gui.state.table_source import NO_IMAGES
from latentlab.gui.widgets.images import to_qimage
from latentlab.gui.widgets.lazy import LazyView
from latentlab.gui.widgets.palette import label_colors

GRID_COLS, GRID_ROWS = 8, 5     # images shown: the first of a seeded shuffle of the selection
TILE_PX = 44
HINT = "Alt+drag a rectangle or Alt+Shift+drag a lasso on the latent view to select points; Esc clears."


class SelectionView(LazyView):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.setObjectName("selectionView")
        self.session = session
        self.summary = QtWidgets.QLabel(HINT, wordWrap=True)
        self.summary.setObjectName("selectionSummary")
        self.summary.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.grid = QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignCenter)
        self.grid.setMinimumSize(GRID_COLS * TILE_PX, GRID_ROWS * TILE_PX)
        self.grid.setStyleSheet("background: #202020;")
        self.histogram = pg.PlotWidget(background="w")
        plot = self.histogram.getPlotItem()
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        plot.setLabel("left", "points")
        plot.setLabel("bottom", "label")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        plot.addItem(self.bars)
        self.export_button = QtWidgets.QPushButton("Export CSV…")
        self.export_button.setToolTip("Index, label, view coordinates and latent mean of each selected point")
        self.export_button.clicked.connect(self.export_dialog)
        self.clear_button = QtWidgets.QPushButton("Clear")
        self.clear_button.setToolTip("Clear the selection (Esc on the latent view)")
        self.clear_button.clicked.connect(session.selection.clear)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.summary, 1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.clear_button)
        body = QtWidgets.QHBoxLayout()
        body.addWidget(self.grid)
        body.addWidget(self.histogram, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addLayout(body, 1)
        self.numbers: dict | None = None   # the last summary job's mean KL and reconstruction error
        session.selection.changed.connect(self.request_refresh)
        session.model_data.weightsChanged.connect(self.request_refresh)

    def refresh(self) -> None:
        s, md = self.session, self.session.model_data
        rows = s.selection.rows
        has = len(rows) > 0 and md.data is not None
        self.export_button.setEnabled(has)
        self.clear_button.setEnabled(has)
        self.numbers = None
        if not has:
            self.summary.setText(HINT)
            self.grid.clear()
            self.bars.setOpts(x=[], height=[])
            return
        data = md.data
        self.summary.setText(f"<b>{len(rows):,}</b> points selected ({s.selection.shape}) · computing mean KL "
                             "and reconstruction…")
        order = np.random.default_rng(0).permutation(len(rows))[:GRID_COLS * GRID_ROWS]
        if getattr(data, "has_images", True):
            self.grid.setPixmap(self._mosaic(data.x_train[rows[np.sort(order)]]))
        else:   # a latent table opened without its dataset
            self.grid.setText(f"<span style='color:#ddd'>{NO_IMAGES}</span>")
        counts = np.bincount(data.y_train[rows], minlength=len(data.label_names))
        colors = label_colors(len(counts))
        self.bars.setOpts(x=np.arange(len(counts)), height=counts, width=0.8, brushes=[pg.mkBrush(c) for c in colors],
                          pen=pg.mkPen(None))
        axis = self.histogram.getPlotItem().getAxis("bottom")
        axis.setTicks([list(enumerate(data.label_names))] if len(counts) <= 20 else None)
        self._summarise(rows)

    def _summarise(self, rows: np.ndarray) -> None:
        s, lp, md = self.session, self.session.latent, self.session.model_data
        if lp.points is None or md.model is None:
            return
        shown = lp.shown_of(rows)
        mu = lp.points[shown]
        logvar = lp.logvars[shown] if lp.logvars is not None else None
        data_rows = lp.rows_of(shown)
        x = md.data.x_train if getattr(md.data, "has_images", True) else None
        s.jobs.submit("selection summary", work.selection_summary, s.model_copy(), x, data_rows, mu,
                      logvar, on_result=self._show_numbers)

    def _show_numbers(self, numbers: dict) -> None:
        rows = self.session.selection.rows
        if not np.isin(numbers["rows"], rows).all():
            return
        self.numbers = numbers
        sample = "" if numbers["recon_n"] >= len(numbers["rows"]) else f" (a sample of {numbers['recon_n']:,})"
        kl = "n/a while training" if np.isnan(numbers["kl"]) else f"{numbers['kl']:.2f} nats"
        recon = f"{numbers['recon']:.2f} nats{sample}" if numbers["recon_n"] else "n/a (no images)"
        self.summary.setText(f"<b>{len(rows):,}</b> points selected ({self.session.selection.shape}) · mean KL {kl}"
                             f" · mean reconstruction error {recon}")

    @staticmethod
    def _mosaic(images: np.ndarray) -> QtGui.QPixmap:
        pixmap = QtGui.QPixmap(GRID_COLS * TILE_PX, GRID_ROWS * TILE_PX)
        pixmap.fill(QtGui.QColor(32, 32, 32))
        painter = QtGui.QPainter(pixmap)
        for i, img in enumerate(images):
            r, c = divmod(i, GRID_COLS)
            target = QtCore.QRect(c * TILE_PX + 2, r * TILE_PX + 2, TILE_PX - 4, TILE_PX - 4)
            painter.drawImage(target, to_qimage(img))
        painter.end()
        return pixmap

    def export_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export selection", str(Path.home() / "selection.csv"),
                                                        "CSV files (*.csv)")
        if path:
            self.session.analyses.export_selection(path if path.endswith(".csv") else path + ".csv")
