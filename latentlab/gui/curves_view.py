"""Per-epoch curves: reconstruction NLL, KL and −ELBO, with each change of β marked; and KL per dimension."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets
from superqt.utils import qthrottled

from .points import label_colors
from .runs import RunController
from .state import ModelData

REFRESH_MS = 300
SERIES = (("recon", "reconstruction NLL", "#1f77b4"), ("kl", "KL", "#d62728"), ("neg_elbo", "−ELBO", "#222222"))


def beta_changes(history: list[dict]) -> list[tuple[int, float]]:
    """(epoch, β) wherever β differs from the epoch before, the first epoch included."""
    out, last = [], None
    for r in history:
        b = float(r.get("beta", 1.0))
        if last is None or not math.isclose(b, last, rel_tol=1e-6):
            out.append((int(r["epoch"]), b))
        last = b
    return out


def _lone_symbol(points: int, curve) -> dict:
    """A curve of one point draws no line: give it a marker in the curve's colour, then drop it."""
    if points == 1:
        return {"symbol": "o", "symbolSize": 8, "symbolPen": curve.opts["pen"], "symbolBrush": curve.opts["pen"].color()}
    return {"symbol": None}


class CurvesView(QtWidgets.QTabWidget):
    def __init__(self, model_data: ModelData, runs: RunController, parent=None):
        super().__init__(parent)
        self.setObjectName("curvesView")
        self.model_data = model_data
        self.runs = runs
        self.losses = pg.PlotWidget(background="w")
        self.per_dim = pg.PlotWidget(background="w")
        for w, ylabel in ((self.losses, "nats per example"), (self.per_dim, "KL (nats)")):
            item = w.getPlotItem()
            item.showGrid(x=True, y=True, alpha=0.15)
            item.setLabel("bottom", "epoch")
            item.setLabel("left", ylabel)
            item.setMenuEnabled(False)
            for side in ("left", "bottom"):  # see LatentPlot: cached axes repaint only when they change
                item.getAxis(side).setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        legend = self.losses.getPlotItem().addLegend(offset=(-8, 8), labelTextColor=(30, 30, 30))
        legend.setBrush(pg.mkBrush(255, 255, 255, 200))
        self.curves = {key: self.losses.plot([], [], name=name, pen=pg.mkPen(color, width=2))
                       for key, name, color in SERIES}
        self.markers: list = []
        self._marked: list | None = None  # the β changes the markers show
        self.dim_curves: list = []
        self.addTab(self.losses, "Losses")
        self.addTab(self.per_dim, "KL per dimension")
        # Fast epochs (digits: ~10 a second) would redraw both plots and their axes each time;
        # a few redraws a second read the same and leave the GUI thread free.
        self._throttled_refresh = qthrottled(self.refresh, timeout=REFRESH_MS, leading=False, parent=self)
        model_data.historyChanged.connect(self._history_changed)
        runs.trainingChanged.connect(lambda running: running or self._history_changed())

    def _history_changed(self) -> None:
        if not self.runs.busy:
            self._throttled_refresh.cancel()
            self.refresh()  # loading or the end of a run: show it now
        else:
            self._throttled_refresh()

    def refresh(self) -> None:
        h = self.model_data.history
        epochs = np.array([r["epoch"] for r in h], dtype=float)
        recon = np.array([r["recon"] for r in h], dtype=float)
        kl = np.array([r["kl"] for r in h], dtype=float)
        for key, y in (("recon", recon), ("kl", kl), ("neg_elbo", recon + kl)):
            self.curves[key].setData(epochs, y, **_lone_symbol(len(h), self.curves[key]))
        self._refresh_markers(h)
        self._refresh_dims(h, epochs)

    def _refresh_markers(self, h) -> None:
        changes = beta_changes(h)[-30:]
        if changes == self._marked:
            return  # rebuilding the labelled lines is the costly part of a refresh
        self._marked = changes
        plot = self.losses.getPlotItem()
        for m in self.markers:
            plot.removeItem(m)
        self.markers = []
        for epoch, beta in changes:
            line = pg.InfiniteLine(pos=epoch - 0.5, angle=90, pen=pg.mkPen((120, 120, 120), style=pg.QtCore.Qt.PenStyle.DashLine),
                                   label=f"β={beta:g}", labelOpts={"position": 0.92, "color": (60, 60, 60)})
            plot.addItem(line)
            self.markers.append(line)

    def _refresh_dims(self, h, epochs) -> None:
        per_dim = [r.get("kl_per_dim") or [] for r in h]
        k = max((len(v) for v in per_dim), default=0)
        plot = self.per_dim.getPlotItem()
        while len(self.dim_curves) > k:
            plot.removeItem(self.dim_curves.pop())
        colors = label_colors(k)
        while len(self.dim_curves) < k:
            d = len(self.dim_curves)
            self.dim_curves.append(plot.plot([], [], pen=pg.mkPen(colors[d], width=1.5), name=f"z{d + 1}"))
        for d, curve in enumerate(self.dim_curves):
            y = np.array([v[d] if d < len(v) else np.nan for v in per_dim], dtype=float)
            curve.setData(epochs, y, connect="finite", **_lone_symbol(len(h), curve))
