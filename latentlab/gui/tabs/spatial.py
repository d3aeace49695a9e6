"""Spatial latents (C×h×w, every latent-diffusion autoencoder) with their layout kept: the inspected
image's posterior means as C channel maps, KL per channel and per position as heat maps, a
traversal of one channel at one position (or of the whole channel), and PCA over the channels
shown as an RGB image. The flattened views (scatter, traversals per coordinate) stay as they are."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from latentlab.gui.state.session import Session
from latentlab.gui.widgets.images import to_pixmap
from latentlab.gui.widgets.lazy import LazyView

MODES = ("Channel maps", "KL per channel and position", "Traversal at a position", "Traversal of a channel",
         "PCA over channels")
STEPS = 9
PCA_IMAGES = 2000   # images whose every position feeds the PCA over channels


class SpatialView(LazyView):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.setObjectName("spatialView")
        self.session = session
        self.mode = QtWidgets.QComboBox()
        self.mode.addItems(MODES)
        self.mode.setObjectName("spatialMode")
        self.channel, self.row, self.col = (QtWidgets.QSpinBox(minimum=0, maximum=0) for _ in range(3))
        for w, tip in ((self.channel, "Latent channel"), (self.row, "Row of the latent position"),
                       (self.col, "Column of the latent position")):
            w.setToolTip(tip)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(self.request_refresh)
        self.mode.currentTextChanged.connect(self.request_refresh)
        bar = QtWidgets.QHBoxLayout()
        for w in (self.mode, QtWidgets.QLabel("channel"), self.channel, QtWidgets.QLabel("row"), self.row,
                  QtWidgets.QLabel("column"), self.col):
            bar.addWidget(w)
        bar.addStretch(1)
        self.message = QtWidgets.QLabel(wordWrap=True)
        self.maps = pg.GraphicsLayoutWidget()
        self.maps.setBackground("w")
        self.strip = QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignCenter)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.message)
        layout.addWidget(self.maps, 1)
        layout.addWidget(self.strip)
        md = session.model_data
        for signal in (md.modelChanged, md.weightsChanged, session.latent.changed, session.cursor.selectionChanged):
            signal.connect(self.request_refresh)
        self._pca = None   # (weights version, mean, components, ratio)

    # ------------------------------------------------------------------------------------------
    def _shape(self):
        from latentlab.core.inference.spatial import is_spatial

        model = self.session.model_data.model
        shape = tuple(getattr(model, "latent_shape", ()) or ())
        return shape if model is not None and is_spatial(shape) else None

    def refresh(self) -> None:
        shape = self._shape()
        controls = (self.mode, self.channel, self.row, self.col)
        model = self.session.model_data.model
        if shape is None:
            for w in controls:
                w.setEnabled(False)
            got = "×".join(map(str, getattr(model, "latent_shape", ()) or ())) or "none"
            self.message.setText(f"These views are for a spatial latent of shape C×h×w (a latent-diffusion "
                                 f"autoencoder); this model's latent is {got}.")
            self.maps.clear()
            self.strip.clear()
            return
        for w in controls:
            w.setEnabled(True)
        c, h, w = shape
        for spin, top in ((self.channel, c - 1), (self.row, h - 1), (self.col, w - 1)):
            spin.blockSignals(True)
            spin.setMaximum(top)
            spin.blockSignals(False)
        points = self.session.latent.points
        full = self.session.latent.full
        if points is None or points.shape[1] != c * h * w:
            self.message.setText("Waiting for the images to be encoded…")
            return
        row = self.session.cursor.selected or 0
        mu = points[min(row, len(points) - 1)] if full else points[0]
        mode = self.mode.currentText()
        self.maps.clear()
        self.strip.clear()
        self.maps.setVisible(not mode.startswith("Traversal"))
        self.strip.setVisible(mode.startswith("Traversal"))
        self.message.setText(f"Latent {c}×{h}×{w} of image #{row if full else 0} (Shift-click a point to pick another).")
        if mode == "Channel maps":
            self._channel_maps(mu, shape)
        elif mode.startswith("KL"):
            self._kl(shape)
        elif mode.startswith("Traversal"):
            self._traversal(mu, shape, mode)
        else:
            self._pca_view(mu, shape, points)

    def _heat(self, col: int, image: np.ndarray, title: str, cmap: str = "viridis", row: int = 0) -> None:
        plot = self.maps.addPlot(row=row, col=col, title=title)
        plot.setAspectLocked(True)
        plot.hideAxis("left")
        plot.hideAxis("bottom")
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(False, False)
        item = pg.ImageItem(np.asarray(image, np.float32), axisOrder="row-major")
        if image.ndim == 2:
            item.setColorMap(pg.colormap.get(cmap))
        plot.addItem(item)
        plot.invertY(True)

    def _channel_maps(self, mu, shape) -> None:
        from latentlab.core.inference.spatial import channel_maps

        maps = channel_maps(mu, shape)
        for i, m in enumerate(maps[:16]):
            self._heat(i % 8, m, f"ch {i}: {m.min():+.2f}…{m.max():+.2f}", row=i // 8)

    def _kl(self, shape) -> None:
        from latentlab.core.inference.spatial import kl_maps

        model = self.session.model_data.model
        if getattr(model, "deterministic", False):
            self.message.setText("A deterministic autoencoder has no q(z|x): KL does not apply.")
            return
        kl, _ = self.session.dimension_stats()
        per_channel, per_position = kl_maps(kl, shape)
        plot = self.maps.addPlot(row=0, col=0, title="KL per channel (nats)")
        plot.setMenuEnabled(False)
        plot.addItem(pg.BarGraphItem(x=np.arange(len(per_channel)), height=per_channel, width=0.7, brush="#1f77b4"))
        self._heat(1, per_position, f"KL per position (nats, {per_position.min():.2f}…{per_position.max():.2f})",
                   cmap="inferno")
        prior = model.latent_prior()
        if not prior.factorised:
            self.message.setText(self.message.text() + " KL per dimension is against N(0, 1): the declared prior does "
                                 "not factorise.")

    def _traversal(self, mu, shape, mode) -> None:
        from latentlab.core.inference.analysis import traversal_values
        from latentlab.core.inference.spatial import channel_traversal, position_traversal
        from latentlab.gui.state.work import decode_codes

        values = traversal_values(STEPS)
        ch = self.channel.value()
        if mode == "Traversal at a position":
            codes = position_traversal(mu, shape, ch, self.row.value(), self.col.value(), mu.reshape(shape)[
                ch, self.row.value(), self.col.value()] + values)
            what = f"channel {ch} at ({self.row.value()}, {self.col.value()})"
        else:
            codes = channel_traversal(mu, shape, ch, values)
            what = f"all of channel {ch}"
        self.message.setText(f"{what} shifted by {values[0]:+.1f} … {values[-1]:+.1f} around the image's mean.")
        self.session.jobs.submit("spatial traversal", decode_codes, self.session.model_copy(), codes,
                                 on_result=self._show_strip)

    def _show_strip(self, images: np.ndarray) -> None:
        strip = np.concatenate(list(images), axis=-1)
        self.strip.setPixmap(to_pixmap(strip, max(96, min(self.width() - 20, 96 * len(images)))))

    def _pca_view(self, mu, shape, points) -> None:
        from latentlab.core.inference.spatial import channel_pca, pca_image

        version = self.session.model_data.version
        if self._pca is None or self._pca[0] != version:
            pick = np.random.default_rng(0).choice(len(points), min(PCA_IMAGES, len(points)), replace=False)
            self.message.setText("Computing the PCA over channels…")
            self.session.jobs.submit("spatial pca", channel_pca, points[np.sort(pick)], shape,
                                     on_result=lambda r: self._on_pca(version, r))
            return
        _, mean, comps, ratio = self._pca
        self._heat(0, np.transpose(pca_image(mu, shape, mean, comps), (1, 2, 0)),
                   f"PCs 1-3 as RGB ({100 * ratio.sum():.0f}% of the channel variance)")

    def _on_pca(self, version, result) -> None:
        self._pca = (version, *result)
        self.request_refresh()
