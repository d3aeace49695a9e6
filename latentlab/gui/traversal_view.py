"""Latent traversals: one row per dimension, sweeping it through the prior while the others stay at
an anchor; each row labelled with its KL and whether the dimension is active."""

from __future__ import annotations

import copy

import numpy as np
from PySide6 import QtCore, QtWidgets

from .images import pil_to_pixmap
from .lazy import LazyView

ROW_PX = 48


class TraversalView(LazyView):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.setObjectName("traversalView")
        self.session = session
        self.anchor = QtWidgets.QComboBox()
        self.anchor.addItems(["marker", "origin", "endpoint A"])
        self.anchor.setToolTip("Where the coordinates that are not swept come from")
        self.columns = QtWidgets.QSpinBox(minimum=3, maximum=25, value=11)
        self.sweep = QtWidgets.QComboBox()
        self.sweep.addItems(["-3σ … 3σ", "prior quantiles"])
        self.sort = QtWidgets.QCheckBox("sort by KL")
        self.export = QtWidgets.QPushButton("Export PNG…")
        bar = QtWidgets.QHBoxLayout()
        for w in (QtWidgets.QLabel("Anchor"), self.anchor, QtWidgets.QLabel("columns"), self.columns,
                  QtWidgets.QLabel("sweep"), self.sweep, self.sort, self.export):
            bar.addWidget(w)
        bar.addStretch(1)
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
                       self.sort.toggled):
            signal.connect(self.request_refresh)
        self.export.clicked.connect(self._export_dialog)
        for signal in (session.modelChanged, session.weightsChanged, session.pointsChanged):
            signal.connect(self.request_refresh)
        session.pointChanged.connect(lambda: self.anchor.currentText() == "marker" and self.request_refresh())
        self._request = 0
        self.images: np.ndarray | None = None      # (K, n, C, H, W) in row order
        self.order: list[int] = []
        self.row_labels: list[QtWidgets.QLabel] = []

    def refresh(self) -> None:
        s = self.session
        if s.model is None:
            return
        from ..core.analysis import traversal_codes, traversal_values

        kl, active = dimension_stats(s)
        k = s.model.latent_dim
        values = traversal_values(self.columns.value(), "quantiles" if self.sweep.currentIndex() else "sigma")
        order = list(np.argsort(-kl)) if self.sort.isChecked() else list(range(k))
        codes = traversal_codes(s.anchor(self.anchor.currentText()), values)[order]
        self._request += 1
        layout = (self._request, order, kl, active, codes.shape[:2] + tuple(s.model.cfg.image_shape))
        # K rows of images can be hundreds of decodes for a conv model: done on a worker.
        s.run_job(decode_rows, copy.deepcopy(s.model), codes, layout, on_result=self._show)

    def _show(self, result) -> None:
        (request, order, kl, active, _shape), images = result
        if request != self._request:
            return  # a newer request is on its way
        self.order, self.kl, self.active, self.images = order, kl, active, images
        self._render_rows()

    def _render_rows(self) -> None:
        from ..core.export import grid_image

        while self.grid.count():
            w = self.grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.row_labels = []
        scale = max(1, ROW_PX // self.images.shape[-1])
        for row, d in enumerate(self.order):
            alive = bool(self.active[d])
            label = QtWidgets.QLabel(f"<b>z{d + 1}</b><br>{self.kl[d]:.2f} nats<br>"
                                     + ("active" if alive else "<span style='color:#b22'>inactive</span>"))
            label.setToolTip("KL averaged over the data; a dimension is active when its posterior mean varies over "
                             "the data (variance > 0.01). An inactive row barely changes: the decoder ignores it.")
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
        from ..core.errors import LatentLabError
        from ..core.export import grid_image, save_png

        if self.images is None:
            raise LatentLabError("There are no traversals to export yet.")
        k, n = self.images.shape[:2]
        meta = {"dims_in_row_order": ",".join(f"z{d + 1}" for d in self.order), "anchor": self.anchor.currentText(),
                "sweep": self.sweep.currentText(), "kl_per_dim": ",".join(f"{v:.4f}" for v in self.kl[self.order])}
        save_png(path, grid_image(self.images.reshape(k * n, *self.images.shape[2:]), nrow=n,
                                  scale=max(1, 48 // self.images.shape[-1])), meta)

    def _export_dialog(self) -> None:
        from ..core.errors import LatentLabError

        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export traversals", "traversals.png", "PNG images (*.png)")
        if path:
            try:
                self.export_png_to(path)
            except LatentLabError as exc:
                self.session.errorRaised.emit(str(exc))


def decode_rows(model, codes: np.ndarray, layout: tuple):
    """Decode a (K, n, K) grid of codes into (K, n, C, H, W) images; runs on a worker."""
    from ..core.analysis import decode

    shape = layout[-1]
    return layout, decode(model, codes.reshape(-1, codes.shape[-1])).reshape(shape)


def dimension_stats(session) -> tuple[np.ndarray, np.ndarray]:
    """KL per dimension (nats, averaged over the data) and which dimensions are active, from the
    newest full encode, falling back to the training history while a run is going."""
    from ..core.analysis import active_units

    k = session.model.latent_dim
    pts = session.points
    if session.dim_stats is not None and len(session.dim_stats[0]) == k:
        return session.dim_stats
    kl = np.zeros(k)
    if session.history and len(session.history[-1].get("kl_per_dim", [])) == k:
        kl = np.asarray(session.history[-1]["kl_per_dim"], dtype=float)
    # Live frames come many times a second: a strided 5,000 points estimate the variance well enough.
    live = pts[:: max(1, len(pts) // 5000)] if pts is not None and pts.shape[1] == k else None
    active = active_units(live) if live is not None else kl > 0.01
    return kl, active
