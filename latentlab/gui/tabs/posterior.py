"""The inference inspector for one data point: the exact posterior p(z|x) against the encoder's
q(z|x), and the numbers of log p(x) = ELBO + KL(q(z|x) || p(z|x)), all in nats."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from latentlab.gui.state.session import Session
from latentlab.gui.state.table_source import NO_IMAGES
from latentlab.gui.widgets.images import to_pixmap
from latentlab.gui.widgets.lazy import LazyView
from latentlab.gui.widgets.small_screens import FlowLayout, scrolling


class PosteriorView(LazyView):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.setObjectName("posteriorView")
        self.session = session
        self.index = QtWidgets.QSpinBox(minimum=0, maximum=0)
        self.index.setToolTip("Training image to inspect (Shift-click a point in the latent view to pick one)")
        self.grid_size = QtWidgets.QSpinBox(minimum=50, maximum=400, singleStep=50, value=200)
        self.iw_k = QtWidgets.QSpinBox(minimum=1, maximum=5000, value=1000)
        self.iw_k.setToolTip("Importance samples K for the IWAE estimate of log p(x)")
        for w in (self.index, self.grid_size, self.iw_k):
            w.setKeyboardTracking(False)
        bar = FlowLayout()   # wraps on a narrow window
        for w in (QtWidgets.QLabel("Image #"), self.index, QtWidgets.QLabel("grid"), self.grid_size,
                  QtWidgets.QLabel("IWAE K"), self.iw_k):
            bar.addWidget(w)
        self.plot = pg.PlotWidget(background="w")
        item = self.plot.getPlotItem()
        item.setAspectLocked(True)
        item.setMenuEnabled(False)
        item.setLabel("bottom", "z1")
        item.setLabel("left", "z2")
        self.heat = pg.ImageItem(axisOrder="row-major")
        inferno = pg.colormap.get("inferno")
        self.heat.setColorMap(inferno)
        # Beyond the grid the posterior density is as good as zero: its colour, where the locked aspect
        # ratio shows more than the grid (white there read as part of the map).
        item.getViewBox().setBackgroundColor(inferno.map(0.0, mode="qcolor"))
        item.addItem(self.heat)
        self.ellipses = [QtWidgets.QGraphicsEllipseItem() for _ in range(2)]
        for e, style in zip(self.ellipses, (QtCore.Qt.PenStyle.SolidLine, QtCore.Qt.PenStyle.DashLine)):
            pen = pg.mkPen((80, 200, 255), width=2, style=style)
            pen.setCosmetic(True)
            e.setPen(pen)
            item.addItem(e)
        self.q_mean = pg.ScatterPlotItem(size=10, symbol="+", pen=pg.mkPen((80, 200, 255), width=2))
        self.p_mean = pg.ScatterPlotItem(size=10, symbol="x", pen=pg.mkPen("w", width=2))
        item.addItem(self.q_mean)
        item.addItem(self.p_mean)
        self.curve = pg.PlotWidget(background="w")
        citem = self.curve.getPlotItem()
        citem.setLabel("bottom", "K (importance samples, log scale)")
        citem.setLabel("left", "nats")
        citem.showGrid(x=True, y=True, alpha=0.15)
        citem.addLegend(offset=(-8, 8))
        self.curve_iw = citem.plot([], [], pen=pg.mkPen("#1f77b4", width=2), symbol="o", symbolSize=6, name="IWAE-K")
        self.curve_elbo = citem.plot([], [], pen=pg.mkPen("#d62728", width=2, style=QtCore.Qt.PenStyle.DashLine), name="ELBO")
        self.stack = QtWidgets.QStackedWidget()
        self.stack.addWidget(self.plot)
        self.stack.addWidget(self.curve)
        self.image = QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignCenter)
        self.numbers = QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignTop)
        self.numbers.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.numbers.setWordWrap(True)   # the legend's sentences wrap; the table keeps its rows
        self.numbers.setMinimumWidth(self.numbers.fontMetrics().horizontalAdvance("x" * 58))
        side = QtWidgets.QWidget()
        side_layout = QtWidgets.QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.image)
        side_layout.addWidget(self.numbers, 1)
        body = QtWidgets.QHBoxLayout()
        body.addWidget(self.stack, 1)
        body.addWidget(scrolling(side, across=False))   # on a short screen the numbers scroll beside the plot
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addLayout(body, 1)
        self.index.valueChanged.connect(session.select_point)
        self.grid_size.valueChanged.connect(self.request_refresh)
        self.iw_k.valueChanged.connect(self.request_refresh)
        md = session.model_data
        for signal in (session.cursor.selectionChanged, md.modelChanged, md.weightsChanged):
            signal.connect(self.request_refresh)
        md.datasetChanged.connect(self._on_dataset)
        md.modelChanged.connect(self._on_model)
        self.result: dict | None = None

    def _on_model(self) -> None:
        k = self.session.model_data.model.latent_dim
        self.grid_size.setEnabled(k == 2)
        self.grid_size.setToolTip("Grid points per axis for the exact posterior p(z|x)" if k == 2 else
                                  f"The exact posterior grid needs a 2-dimensional latent; with K = {k:,} the "
                                  "inspector shows the IWAE curve instead")

    def _on_dataset(self) -> None:
        self.index.blockSignals(True)
        data = self.session.model_data.data
        self.index.setMaximum(len(data.x_train) - 1 if data is not None else 0)
        self.index.setValue(0)
        self.index.blockSignals(False)

    def refresh(self) -> None:
        s, md = self.session, self.session.model_data
        if md.model is None or md.data is None:
            return
        if getattr(md.model, "deterministic", False):
            self.numbers.setText(f"{md.model.display_name()} is a deterministic autoencoder: its encoder gives one "
                                 "code, not q(z|x), so there is no posterior, ELBO or log p(x) to inspect.")
            self.heat.clear()
            return
        row = s.cursor.selected if s.cursor.selected is not None else self.index.value()
        self.index.blockSignals(True)
        self.index.setValue(row)
        self.index.blockSignals(False)
        if not getattr(md.data, "has_images", True):   # a latent table opened without its dataset
            self.image.clear()
            self.numbers.setText(NO_IMAGES)
            return
        x = md.data.x_train[row]
        self.image.setPixmap(to_pixmap(x, 96))
        self.numbers.setText("Computing…")
        s.jobs.submit("posterior", inspect_point, s.model_copy(), x, self.grid_size.value(), self.iw_k.value(),
                      on_result=self._on_result)

    def _on_result(self, result: dict) -> None:
        self.result = result
        grid = result.get("grid")
        if grid is not None:
            self.stack.setCurrentWidget(self.plot)
            self._show_grid(grid)
        else:
            self.stack.setCurrentWidget(self.curve)
            ks, est = zip(*result["curve"])
            # log10 K on a linear axis with labelled ticks: pyqtgraph's log mode crowds its minor labels.
            x = np.log10(np.array(ks, float))
            self.curve_iw.setData(x, np.array(est))
            self.curve_elbo.setData(x[[0, -1]], [result["elbo"]] * 2)
            self.curve.getPlotItem().getAxis("bottom").setTicks([[(float(v), str(k)) for v, k in zip(x, ks)]])
        self.numbers.setText(numbers_html(result))

    def _show_grid(self, g) -> None:
        x0, x1, y0, y1 = g.extent
        self.heat.setImage(g.density, autoLevels=True)
        self.heat.setRect(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
        sd = np.exp(0.5 * np.asarray(g.q_logvar))
        for e, n in zip(self.ellipses, (1, 2)):
            e.setRect(QtCore.QRectF(g.q_mu[0] - n * sd[0], g.q_mu[1] - n * sd[1], 2 * n * sd[0], 2 * n * sd[1]))
        self.q_mean.setData([g.q_mu[0]], [g.q_mu[1]])
        self.p_mean.setData([g.mean[0]], [g.mean[1]])
        # Frame the posterior and q (4 sd of the wider of the two around both means), not the whole box.
        spread = 4 * max(float(np.sqrt(np.max(np.diag(g.cov)))), float(sd.max()))
        lo = np.minimum(g.mean, g.q_mu) - spread
        hi = np.maximum(g.mean, g.q_mu) + spread
        self.plot.setRange(xRange=(lo[0], hi[0]), yRange=(lo[1], hi[1]), padding=0.02)


def inspect_point(model, x: np.ndarray, size: int, k: int) -> dict:
    """Everything the inspector shows for image x; runs on a worker thread with its own model copy."""
    import torch

    from latentlab.core.inference.objectives import elbo_mc, iwae_log_px, model_log_lik
    from latentlab.core.inference.posterior import iwae_curve, posterior_for_image

    xt = torch.from_numpy(np.ascontiguousarray(x[None]))
    prior = model.latent_prior()
    with torch.no_grad():
        mu, logvar = model.encode(xt)
        log_lik = model_log_lik(model, xt)
        gen = torch.Generator().manual_seed(0)
        iw = float(iwae_log_px(log_lik, mu, logvar, k, generator=gen, prior=prior)[0])
        out = {"iw": iw, "k": k, "kl_method": prior.kl_method, "prior_note": prior.note()}
        if model.latent_dim == 2:
            g = posterior_for_image(model, x, size=size, prior=prior)
            out.update(grid=g, elbo=g.elbo, recon=g.recon, kl_prior=g.kl_prior, log_px=g.log_px, gap=g.gap,
                       kl_grid=g.kl_q_posterior)
            if not prior.closed_form:
                out["kl_method"] = "Gauss–Hermite quadrature"
        else:
            est = elbo_mc(log_lik, mu, logvar, samples=2000, generator=gen, prior=prior)
            ks = tuple(v for v in (1, 10, 100, 1000, 5000) if v <= max(k, 1)) or (1,)
            out.update(curve=iwae_curve(log_lik, mu, logvar, ks=ks, generator=gen, prior=prior),
                       elbo=float(est.elbo[0]), recon=float(est.rec[0]), kl_prior=float(est.kl[0]))
    return out


def numbers_html(r: dict) -> str:
    rows = [("ELBO", r["elbo"], "E_q[log p(x|z)] − KL(q ‖ p(z))"),
            ("  reconstruction", r["recon"], "E_q[log p(x|z)]"),
            ("  KL(q ‖ p(z))", r["kl_prior"], r.get("kl_method", "closed form"))]
    if "log_px" in r:
        rows += [("log p(x), grid", r["log_px"], "quadrature over the grid"),
                 (f"log p(x), IWAE-{r['k']}", r["iw"], "importance weighted, K samples"),
                 ("gap log p(x) − ELBO", r["gap"], "grid log p(x) minus ELBO"),
                 ("KL(q ‖ p(z|x)), grid", r["kl_grid"], "the same quantity, measured directly")]
    else:
        rows += [(f"log p(x), IWAE-{r['k']}", r["iw"], "importance weighted, K samples"),
                 ("gap estimate", r["iw"] - r["elbo"], "IWAE-K minus ELBO (a lower bound on the gap)")]
    body = "".join(f"<tr><td>{name.replace('  ', '&nbsp;&nbsp;')}</td><td align='right'><b>{value:.3f}</b></td>"
                   f"<td style='color:#666'>&nbsp;{note}</td></tr>" for name, value, note in rows)
    legend = ("<p style='color:#555'>Heat map: the exact posterior p(z|x). Blue: the encoder's q(z|x) at 1σ "
              "(solid) and 2σ (dashed). White ×: posterior mean; blue +: q's mean.</p>" if "log_px" in r else "")
    note = f"<p style='color:#8a5a00'>{r['prior_note']}.</p>" if r.get("prior_note") else ""
    return f"<table cellspacing='2'>{body}</table><p>All values in nats.</p>{note}{legend}"
