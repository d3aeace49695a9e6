"""Latent traversals: one row per dimension, sweeping it through the prior while the others stay at
an anchor; each row labelled with its KL and whether the dimension is active."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from latentlab.gui.state.parts import MANY_DIMS, AnchorMode, SweepRange
from latentlab.gui.state.session import Session
from latentlab.gui.state.work import decode_codes
from latentlab.gui.widgets.images import pil_to_pixmap
from latentlab.gui.widgets.lazy import LazyView
from latentlab.gui.widgets.small_screens import FlowLayout

ROW_PX = 48


class TraversalView(LazyView):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.setObjectName("traversalView")
        self.session = session
        self.anchor = QtWidgets.QComboBox()
        self.anchor.addItems([m.value for m in (AnchorMode.MARKER, AnchorMode.ORIGIN, AnchorMode.ENDPOINT_A)])
        self.anchor.setToolTip("Where the coordinates that are not swept come from")
        self.columns = QtWidgets.QSpinBox(minimum=3, maximum=25, value=11)
        self.sweep = QtWidgets.QComboBox()
        self.sweep.addItems([r.value for r in SweepRange])
        self.sort = QtWidgets.QCheckBox("sort by KL")
        # For a wide latent only the dimensions that carry the most KL get a row: decoding K rows of a
        # K in the thousands would take minutes and show mostly dead dimensions.
        self.top_n = QtWidgets.QSpinBox(prefix="top ", suffix=" by KL", minimum=1, maximum=MANY_DIMS * 8, value=16)
        self.top_n.setKeyboardTracking(False)
        self.export = QtWidgets.QPushButton("Export PNG…")
        bar = FlowLayout()   # wraps on a narrow window
        for w in (QtWidgets.QLabel("Anchor"), self.anchor, QtWidgets.QLabel("columns"), self.columns,
                  QtWidgets.QLabel("sweep"), self.sweep, self.sort, self.top_n, self.export):
            bar.addWidget(w)
        self.rows = QtWidgets.QWidget()
        self.grid = QtWidgets.QGridLayout(self.rows)
        self.grid.setVerticalSpacing(2)
        self.grid.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft)
        scroll = QtWidgets.QScrollArea(widgetResizable=True)
        scroll.setWidget(self.rows)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(scroll, 1)
        for signal in (self.anchor.currentTextChanged, self.columns.valueChanged, self.sweep.currentTextChanged,
                       self.sort.toggled, self.top_n.valueChanged):
            signal.connect(self.request_refresh)
        self.export.clicked.connect(self._export_dialog)
        md = session.model_data
        md.modelChanged.connect(self._on_model)
        self._on_model()
        for signal in (md.modelChanged, md.weightsChanged, session.latent.changed):
            signal.connect(self.request_refresh)
        session.cursor.changed.connect(lambda: self.anchor.currentText() == AnchorMode.MARKER and self.request_refresh())
        self.images: np.ndarray | None = None      # (K, n, C, H, W) in row order
        self.order: list[int] = []
        self.row_labels: list[QtWidgets.QLabel] = []

    def _on_model(self) -> None:
        model = self.session.model_data.model
        many = model is not None and model.latent_dim > MANY_DIMS
        self.top_n.setEnabled(many)
        self.sort.setEnabled(not many)
        if many:
            k = model.latent_dim
            self.top_n.setMaximum(min(k, MANY_DIMS * 8))
            self.top_n.setToolTip(f"How many of the {k:,} dimensions get a row: those with the most KL, most first")
            self.sort.setToolTip(f"With K = {k:,} the rows are always the top dimensions by KL (set how many beside)")
        else:
            self.top_n.setToolTip(f"Every dimension has a row while K is at most {MANY_DIMS}; above that, the rows "
                                  "are this many dimensions with the most KL")
            self.sort.setToolTip("Order the rows by KL, most first")

    def dims(self, kl: np.ndarray) -> list[int]:
        """The dimensions that get a row, in row order."""
        from latentlab.core.inference.analysis import top_dims_by_kl

        k = len(kl)
        if k > MANY_DIMS:
            return [int(d) for d in top_dims_by_kl(kl, self.top_n.value())]
        return [int(d) for d in top_dims_by_kl(kl, k)] if self.sort.isChecked() else list(range(k))

    def refresh(self) -> None:
        s = self.session
        if s.model_data.model is None:
            return
        from latentlab.core.inference.analysis import traversal_codes, traversal_values

        kl, active = s.dimension_stats()
        quantiles = SweepRange(self.sweep.currentText()) is SweepRange.QUANTILES
        values = traversal_values(self.columns.value(), "quantiles" if quantiles else "sigma")
        order = self.dims(kl)
        codes = traversal_codes(s.anchor(self.anchor.currentText()), values, dims=order)
        # K rows of images can be hundreds of decodes for a conv model: done on a worker.
        s.jobs.submit("traversals", decode_codes, s.model_copy(), codes,
                      on_result=lambda images: self._show(order, kl, active, images))

    def _show(self, order, kl, active, images) -> None:
        self.order, self.kl, self.active, self.images = order, kl, active, images
        self._render_rows()

    def _render_rows(self) -> None:
        from latentlab.core.files.export import grid_image
        from latentlab.core.inference.analysis import ACTIVE_THRESHOLD

        while self.grid.count():
            w = self.grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.row_labels = []
        scale = max(1, ROW_PX // self.images.shape[-1])
        for row, d in enumerate(self.order):
            alive = bool(self.active[d])
            kl = f"{self.kl[d]:.2f} nats" if np.isfinite(self.kl[d]) else "no KL"   # a deterministic autoencoder
            label = QtWidgets.QLabel(f"<b>z{d + 1}</b><br>{kl}<br>"
                                     + ("active" if alive else "<span style='color:#b22'>inactive</span>"))
            label.setToolTip("KL averaged over the data; a dimension is active when its posterior mean varies over "
                             "the data (variance > " f"{ACTIVE_THRESHOLD:g}). An inactive row barely changes: the decoder ignores it.")
            label.setStyleSheet("" if alive else "color: #888;")
            image = QtWidgets.QLabel()
            image.setPixmap(pil_to_pixmap(grid_image(self.images[row], nrow=self.images.shape[1], scale=scale, padding=1)))
            if not alive:
                effect = QtWidgets.QGraphicsOpacityEffect(image)
                effect.setOpacity(0.45)
                image.setGraphicsEffect(effect)
            self.grid.addWidget(label, row, 0)
            self.grid.addWidget(image, row, 1)
            self.row_labels.append(label)

    def export_png_to(self, path) -> None:
        from latentlab.core.errors import LatentLabError
        from latentlab.core.files.export import grid_image, save_png

        if self.images is None:
            raise LatentLabError("There are no traversals to export yet.")
        k, n = self.images.shape[:2]
        meta = {"dims_in_row_order": ",".join(f"z{d + 1}" for d in self.order), "anchor": self.anchor.currentText(),
                "sweep": self.sweep.currentText(), "kl_per_dim": ",".join(f"{v:.4f}" for v in self.kl[self.order])}
        save_png(path, grid_image(self.images.reshape(k * n, *self.images.shape[2:]), nrow=n,
                                  scale=max(1, 48 // self.images.shape[-1])), meta)

    def _export_dialog(self) -> None:
        from latentlab.core.errors import LatentLabError

        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export traversals", "traversals.png", "PNG images (*.png)")
        if path:
            try:
                self.export_png_to(path)
            except LatentLabError as exc:
                self.session.report_error(str(exc))
            else:
                self.session.status.emit(f"Exported the traversals to {path}.")
