"""The manifold layer: decoded images on a regular grid behind the scatter (Kingma & Welling's
Fig. 4), over the visible region or through the inverse normal CDF so the grid covers the prior's
quantiles. Decoding runs on a worker; the layer redraws once zoom or pan has settled."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore
from superqt.utils import qdebounced

TILES = 15
# Faint enough that a black tile over the white plot stays light grey: dark points (viridis' low end,
# the darker label colours) keep their contrast over it.
TILE_OPACITY = 0.4
SETTLE_MS = 300


def grid_positions(n: int, x_range, y_range, quantiles: bool) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Tile centres along each axis and the (square) tile size. A uniform grid puts n tiles along the
    shorter side of the visible region; a quantile grid puts equal prior mass between neighbouring
    tiles, which then sit closer together near the origin."""
    if quantiles:
        q = np.array([NormalDist().inv_cdf(p) for p in (np.arange(n) + 0.5) / n])
        step = float(np.min(np.diff(q)))
        return q, q.copy(), step, step
    step = min(x_range[1] - x_range[0], y_range[1] - y_range[0]) / n

    def centres(lo, hi):
        count = min(2 * n, int(np.ceil((hi - lo) / step)))
        return (lo + hi) / 2 + (np.arange(count) - (count - 1) / 2) * step

    return centres(*x_range), centres(*y_range), step, step


def manifold_job(model, projection, anchor, n, x_range, y_range, quantiles):
    from latentlab.core.inference.analysis import decode

    xs, ys, w, h = grid_positions(n, x_range, y_range, quantiles)
    centres = np.array([(x, y) for y in ys for x in xs])
    codes = projection.lift_many(centres, anchor)
    return {"centres": centres, "w": w, "h": h, "images": decode(model, codes)}


class ManifoldLayer(QtCore.QObject):
    def __init__(self, plot_widget, session):
        super().__init__(plot_widget)
        self.plot = plot_widget
        self.session = session
        self.enabled = False
        self.quantiles = False
        self.items: list[pg.ImageItem] = []
        self._settled = qdebounced(self.recompute, timeout=SETTLE_MS, parent=self)
        plot_widget.getPlotItem().sigRangeChanged.connect(self._range_changed)
        md = session.model_data
        for signal in (md.weightsChanged, session.latent.projectionChanged, session.cursor.anchorChanged):
            signal.connect(self._range_changed)
        md.modelChanged.connect(self._on_model)

    def _on_model(self) -> None:
        """Another model: its predecessor's tiles go at once (their grid may not even fit its latent)."""
        if self.enabled:
            self._settled.cancel()
            self._clear()
            self.recompute()

    def set_enabled(self, on: bool, quantiles: bool | None = None) -> None:
        self.enabled = on
        if quantiles is not None:
            self.quantiles = quantiles
        if on:
            self.recompute()
        else:
            self._clear()

    def _range_changed(self, *_args) -> None:
        if self.enabled:
            self._settled()

    def recompute(self) -> None:
        s = self.session
        if not self.enabled or s.model_data.model is None or s.latent.projection is None:
            return
        if s.latent.projection.latent_dim != s.model_data.model.latent_dim:
            return   # the new model's points (and plane) are on their way; their projectionChanged comes back here
        (x0, x1), (y0, y1) = self.plot.getPlotItem().viewRange()
        s.jobs.submit("manifold", manifold_job, s.model_copy(), s.latent.projection, s.anchor(), TILES, (x0, x1),
                      (y0, y1), self.quantiles, on_result=self._show)

    def _show(self, result: dict) -> None:
        if not self.enabled:
            return
        self._clear()
        item = self.plot.getPlotItem()
        w, h = result["w"], result["h"]
        for (cx, cy), img in zip(result["centres"], result["images"]):
            pixels = img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
            tile = pg.ImageItem(pixels[::-1], axisOrder="row-major", levels=(0, 1))
            tile.setRect(QtCore.QRectF(cx - w / 2, cy - h / 2, w, h))
            tile.setZValue(-20)
            tile.setOpacity(TILE_OPACITY)
            item.addItem(tile)
            self.items.append(tile)

    def _clear(self) -> None:
        item = self.plot.getPlotItem()
        for tile in self.items:
            item.removeItem(tile)
        self.items = []
