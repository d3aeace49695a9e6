"""Per-epoch curves: reconstruction NLL, KL and −ELBO, with each change of β marked; and KL per dimension."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets
from superqt.utils import qthrottled

from latentlab.core.text import beta_text
from latentlab.gui.state.parts import MANY_DIMS, ModelData
from latentlab.gui.state.runs import RunController
from latentlab.gui.widgets.palette import label_colors

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
        # One row in the top corner: losses fall from their first epochs, so the top right stays free
        # (a column of three entries covered the right end of the −ELBO curve).
        legend.setColumnCount(len(SERIES))
        self.curves = {key: self.losses.plot([], [], name=name, pen=pg.mkPen(color, width=2))
                       for key, name, color in SERIES}
        # Which colour is which dimension: one legend row of up to 8 entries per line.
        self.dim_legend = self.per_dim.getPlotItem().addLegend(offset=(-8, 8), labelTextColor=(30, 30, 30))
        self.dim_legend.setBrush(pg.mkBrush(255, 255, 255, 200))
        self.empty_hint = pg.TextItem("", color=(110, 110, 110), anchor=(0.5, 0.5))
        self.empty_hint.setPos(0.5, 0.5)
        self.losses.getPlotItem().addItem(self.empty_hint, ignoreBounds=True)
        self.markers: list = []
        self._marked: list | None = None  # the β changes the markers show
        self.dim_curves: list = []
        self._dims: list[int] = []       # the dimension each of dim_curves draws
        self.addTab(self.losses, "Losses")
        self.addTab(self.per_dim, "KL per dimension")
        # `latentlab eval` for the shown weights, beside the tabs: a model with no training history
        # (a user's own, say) still shows its numbers here.
        self.evaluation = QtWidgets.QLabel()
        self.evaluation.setObjectName("evaluationLabel")
        self.evaluation.setContentsMargins(8, 0, 8, 0)
        self.evaluation.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setCornerWidget(self.evaluation)
        model_data.evaluationChanged.connect(self._show_evaluation)
        # Fast epochs (digits: ~10 a second) would redraw both plots and their axes each time;
        # a few redraws a second read the same and leave the GUI thread free.
        self._throttled_refresh = qthrottled(self.refresh, timeout=REFRESH_MS, leading=False, parent=self)
        model_data.historyChanged.connect(self._history_changed)
        runs.trainingChanged.connect(lambda running: running or self._history_changed())

    def _show_evaluation(self) -> None:
        e = self.model_data.evaluation
        if e is None:
            images = getattr(self.model_data.data, "has_images", True)   # a latent table without its dataset: none to come
            self.evaluation.setText("evaluating…" if not self.runs.busy and images else "")
            self.evaluation.setToolTip("")
        elif e.get("deterministic"):
            self.evaluation.setText(f"{e['split']} set: reconstruction at the code {e['recon']:.2f} nats · active units "
                                    f"{e['active_units']}/{e['latent_dim']} (a deterministic autoencoder: no ELBO)")
        else:
            assumed = "" if e.get("prior_declared", True) else " · N(0, I) assumed"
            self.evaluation.setText(f"{e['split']} set: ELBO {e['elbo']:.2f} nats · reconstruction {e['recon']:.2f} · "
                                    f"KL {e['kl']:.2f}{assumed} · active units {e['active_units']}/{e['latent_dim']}")
            self.evaluation.setToolTip(f"On {e['examples']:,} {e['split']} images with the weights shown, nats per "
                                       "image (one posterior sample); `latentlab eval` adds the IWAE estimate of log p(x)")
        self.evaluation.adjustSize()
        self.cornerWidget().updateGeometry()

    def _history_changed(self) -> None:
        if not self.runs.busy:
            self._throttled_refresh.cancel()
            self.refresh()  # loading or the end of a run: show it now
        else:
            self._throttled_refresh()

    def refresh(self) -> None:
        from latentlab.core.files.metadata import history_series

        md = self.model_data
        h = md.history
        self.empty_hint.setText("" if h or md.model is None else
                                "No training history yet: Train fine-tunes a copy of this model and draws its curves here"
                                if md.foreign else "No training history yet: Train draws the curves here")
        try:
            series = history_series(h, max_dims=MANY_DIMS)
            changes = beta_changes(h)[-30:]
        except (KeyError, TypeError, ValueError, IndexError):
            # Histories are validated where they enter (checkpoint, training, sweep); a row that is
            # not a clean record anyway draws nothing rather than half a plot.
            series, changes = None, []
        if series is None:
            series = {"epoch": np.zeros(0), "per_dim": np.zeros((0, 0)), "dims": np.zeros(0, int)}
            series.update({key: np.zeros(0) for key, _, _ in SERIES})
        for key, _, _ in SERIES:
            self.curves[key].setData(series["epoch"], series[key], connect="finite",
                                     **_lone_symbol(len(series["epoch"]), self.curves[key]))
        self._refresh_markers(changes)
        self._refresh_dims(series)

    def _refresh_markers(self, changes) -> None:
        if changes == self._marked:
            return  # rebuilding the labelled lines is the costly part of a refresh
        self._marked = changes
        plot = self.losses.getPlotItem()
        for m in self.markers:
            plot.removeItem(m)
        self.markers = []
        # A label only where the next change is a few epochs away (a KL warm-up changes β every epoch:
        # its ramp is marked by lines, and labelled where it ends).
        last = self.model_data.history[-1]["epoch"] if self.model_data.history else 0
        gap = 0.08 * max(1, last - changes[0][0]) if changes else 0
        for n, (epoch, beta) in enumerate(changes):
            labelled = n + 1 == len(changes) or changes[n + 1][0] - epoch >= gap
            # Below the legend's row, dark on a white card: readable over the curves and the grid.
            line = pg.InfiniteLine(pos=epoch - 0.5, angle=90, pen=pg.mkPen((120, 120, 120), style=pg.QtCore.Qt.PenStyle.DashLine),
                                   label=f"β = {beta_text(beta)}" if labelled else None,
                                   labelOpts={"position": 0.7, "color": (20, 20, 20), "fill": (255, 255, 255, 225),
                                              "anchors": [(0, 0.5), (0, 0.5)]})
            plot.addItem(line)
            self.markers.append(line)

    def _refresh_dims(self, series) -> None:
        """One curve for each of at most MANY_DIMS dimensions (those with the most KL lately)."""
        per_dim, dims = series["per_dim"], series["dims"]
        k = len(dims)
        self._dims = [int(d) for d in dims]
        plot = self.per_dim.getPlotItem()
        while len(self.dim_curves) > k:
            plot.removeItem(self.dim_curves.pop())
        colors = label_colors(k)
        while len(self.dim_curves) < k:
            d = len(self.dim_curves)
            self.dim_curves.append(plot.plot([], [], pen=pg.mkPen(colors[d], width=1.5)))
        names = [f"z{int(d) + 1}" for d in dims]
        if names != [label.text for _, label in self.dim_legend.items]:
            self.dim_legend.clear()
            self.dim_legend.setColumnCount(min(max(k, 1), 8))
            for name, curve in zip(names, self.dim_curves):
                self.dim_legend.addItem(curve, name)
        for col, (name, curve) in enumerate(zip(names, self.dim_curves)):
            curve.opts["name"] = name
            curve.setData(series["epoch"], per_dim[:, col], connect="finite", **_lone_symbol(len(series["epoch"]), curve))
