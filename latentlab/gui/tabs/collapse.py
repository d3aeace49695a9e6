"""Posterior-collapse diagnostics: KL per dimension now, active units out of K, and a warning."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from latentlab.gui.state.latent_points import LatentPoints
from latentlab.gui.state.parts import ModelData
from latentlab.gui.widgets.lazy import LazyView


def collapse_warning(active: np.ndarray) -> str:
    k, n = len(active), int(np.sum(active))
    if k > 1 and n <= k // 2:
        return (f"Posterior collapse: only {n} of {k} latent dimensions carry information; the rest match the "
                "prior and the decoder ignores them. Lower β, add free bits or KL warm-up, or shrink K.")
    return ""


class CollapseView(LazyView):
    def __init__(self, model_data: ModelData, latent: LatentPoints, parent=None):
        super().__init__(parent)
        self.setObjectName("collapseView")
        self.model_data = model_data
        self.latent = latent
        self.summary = QtWidgets.QLabel(wordWrap=True)
        self.warning = QtWidgets.QLabel(wordWrap=True)
        self.warning.setStyleSheet("color: #8a4b00; background: #fff4e0; padding: 4px;")
        self.bars = pg.PlotWidget(background="w")
        item = self.bars.getPlotItem()
        item.setLabel("left", "KL (nats)")
        item.setLabel("bottom", "latent dimension")
        item.showGrid(y=True, alpha=0.15)
        item.setMenuEnabled(False)
        self.bar_item = pg.BarGraphItem(x=[], height=[], width=0.7)
        item.addItem(self.bar_item)
        note = QtWidgets.QLabel("KL per dimension over training is in Curves → KL per dimension.")
        note.setStyleSheet("color: #555;")
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.warning)
        layout.addWidget(self.bars, 1)
        layout.addWidget(note)
        for signal in (model_data.modelChanged, latent.changed, model_data.historyChanged):
            signal.connect(self.request_refresh)
        self.kl = np.zeros(0)
        self.active = np.zeros(0, bool)

    def refresh(self) -> None:
        from latentlab.core.inference.analysis import ACTIVE_THRESHOLD

        md = self.model_data
        if md.model is None:
            return
        self.kl, self.active = self.latent.dimension_stats(md.model.latent_dim, md.history)
        k = len(self.kl)
        if getattr(md.model, "deterministic", False):
            self.bars.setVisible(False)
            self.summary.setText(f"<b>Active units: {int(self.active.sum())} of {k}</b> · a deterministic autoencoder "
                                 "has no q(z|x), so KL per dimension does not apply.")
            self.warning.setVisible(False)
            return
        self.bars.setVisible(True)
        prior = md.model.latent_prior()
        brushes = [pg.mkBrush("#1f77b4" if a else "#c8c8c8") for a in self.active]
        self.bar_item.setOpts(x=np.arange(1, k + 1), height=self.kl, width=0.7, brushes=brushes, pen=pg.mkPen(None))
        self.bars.getPlotItem().getAxis("bottom").setTicks([[(i + 1, f"z{i + 1}") for i in range(k)]] if k <= 32 else None)
        total = (f"total KL {self.kl.sum():.3g} nats, each bar averaged over the data" if prior.factorised else
                 f"KL per dimension against N(0, 1), each bar averaged over the data, summing to {self.kl.sum():.3g} "
                 "nats (the declared prior does not factorise)")
        assumed = "" if prior.declared else " · N(0, I) assumed as the prior"
        self.summary.setText(f"<b>Active units: {int(self.active.sum())} of {k}</b> · {total}{assumed} "
                             f"(grey bars: inactive, variance of the posterior mean over the data ≤ {ACTIVE_THRESHOLD:g})")
        text = collapse_warning(self.active)
        self.warning.setText(text)
        self.warning.setVisible(bool(text))
