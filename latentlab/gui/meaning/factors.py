"""The Factors tab: how the latent dimensions line up with the dataset's ground-truth factors. A heat
map of each latent's DCI importance for each factor beside MIG, DCI, SAP, the β-VAE and FactorVAE
scores; computed in the background (progress and Stop in the status bar) after each full encode."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from latentlab.core.text import short
from latentlab.gui.state.session import Session
from latentlab.gui.widgets.lazy import LazyView

KEY = "factor scores"
TEXT_CELLS = 200   # numbers are written into the cells of heat maps up to this size


class FactorsView(LazyView):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.setObjectName("factorsView")
        self.session = session
        self.estimator = QtWidgets.QComboBox()
        self.estimator.addItem("lasso (seconds)", "lasso")
        self.estimator.addItem("boosted trees (minutes)", "gbt")
        self.estimator.setToolTip("How DCI weighs each latent for each factor: LassoCV on standardised values, or "
                                  "disentanglement_lib's gradient-boosted trees (much slower)")
        self.compute = QtWidgets.QPushButton("Compute")
        self.compute.setToolTip("Score the shown means against the factors again (in the background)")
        self.heat = pg.PlotWidget(background="w")
        self.heat.setObjectName("factorHeatMap")
        item = self.heat.getPlotItem()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        item.invertY(True)
        item.setLabel("bottom", "latent dimension")
        item.setTitle("DCI importance of each latent for each factor")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        item.addItem(self.image)
        self.cell_text: list[pg.TextItem] = []
        self.scores = QtWidgets.QLabel(wordWrap=True)
        self.scores.setObjectName("factorScores")
        self.scores.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.scores.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft)
        side = QtWidgets.QVBoxLayout()
        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(QtWidgets.QLabel("DCI by"))
        bar.addWidget(self.estimator)
        bar.addWidget(self.compute)
        bar.addStretch(1)
        side.addLayout(bar)
        side.addWidget(self.scores, 1)
        panel = QtWidgets.QWidget()
        panel.setLayout(side)
        panel.setMinimumWidth(300)
        panel.setMaximumWidth(420)
        layout = QtWidgets.QHBoxLayout(self)
        layout.addWidget(self.heat, 1)
        layout.addWidget(panel, 0, QtCore.Qt.AlignmentFlag.AlignLeft)   # alone (no factors): at the left, not centred
        self.result = None          # core.inference.disentanglement.FactorScores
        self._made_for = None       # (weights version, points, estimator) of the result or the job
        self.compute.clicked.connect(lambda: self.start(force=True))
        self.estimator.currentIndexChanged.connect(lambda _: self.start(force=True))
        session.latent.changed.connect(self.request_refresh)
        session.model_data.modelChanged.connect(self.request_refresh)
        self.refresh()

    def _factors(self):
        lp, data = self.session.latent, self.session.model_data.data
        if data is None or not data.factors_train or lp.points is None:
            return None
        return {name: lp.values(name, data) for name in data.factors_train}

    def refresh(self) -> None:
        data = self.session.model_data.data
        self.heat.setVisible(data is not None and bool(data.factors_train))   # no factors: no empty axes either
        if data is None or not data.factors_train:
            self.compute.setEnabled(False)
            self._show_result(None)
            self.scores.setText("This dataset has no ground-truth factors. The sprites have them (File → Examples → "
                                "Sprites β-VAE), and so does an npz dataset with a <i>factors</i> array "
                                "(N × F) and <i>factor_names</i>.")
            return
        self.compute.setEnabled(True)
        self.start()

    def start(self, force: bool = False) -> None:
        """Score the shown means unless the result (or the job making it) is already for them."""
        lp, md = self.session.latent, self.session.model_data
        factors = self._factors()
        if factors is None:
            return
        if not lp.full:
            if self.result is None:
                self.scores.setText("Waiting for every training image to be encoded (scores follow the full encode).")
            return
        key = (md.version, lp.points, self.estimator.currentData())
        if self._made_for is not None and not force and key[0] == self._made_for[0] and key[1] is self._made_for[1] \
                and key[2] == self._made_for[2]:
            return
        self._made_for = key
        points = lp.points
        self.scores.setText("Computing the scores… (progress and Stop in the status bar)")
        self.session.jobs.submit_tracked(KEY, f"Disentanglement scores of {len(points):,} means", _scores, points,
                                         factors, self.estimator.currentData(),
                                         on_result=lambda r: self._on_result(r, key))

    def _on_result(self, result, key) -> None:
        if key is not self._made_for:
            return
        self.result = result
        self._show_result(result)

    def _show_result(self, s) -> None:
        for t in self.cell_text:
            self.heat.getPlotItem().removeItem(t)
        self.cell_text = []
        item = self.heat.getPlotItem()
        if s is None:
            self.image.clear()
            return
        matrix = s.importance.T   # factors down, latents across
        top = float(matrix.max()) or 1.0
        self.image.setImage(matrix, levels=(0.0, top))
        self.image.setRect(QtCore.QRectF(0, 0, matrix.shape[1], matrix.shape[0]))
        k, f = matrix.shape[1], matrix.shape[0]
        item.getAxis("bottom").setTicks([[(d + 0.5, f"z{d + 1}") for d in range(k)]] if k <= 40 else None)
        item.getAxis("left").setTicks([[(j + 0.5, short(name, 16)) for j, name in enumerate(s.factors)]])
        if k * f <= TEXT_CELLS:
            for j in range(f):
                for d in range(k):
                    light = matrix[j, d] > 0.6 * top
                    t = pg.TextItem(f"{matrix[j, d]:.2f}", color=(20, 20, 20) if light else (235, 235, 235),
                                    anchor=(0.5, 0.5))
                    t.setPos(d + 0.5, j + 0.5)
                    item.addItem(t)
                    self.cell_text.append(t)
        item.setRange(xRange=(0, k), yRange=(0, f), padding=0.02)
        notes = "".join(f"<br>· {short(n, 120)}" for n in s.notes)
        informativeness = "held-out R²" if s.estimator == "lasso" else "held-out accuracy"
        self.scores.setText(
            "<table cellspacing=2>"
            + _row("MIG", s.mig) + _row("DCI disentanglement", s.disentanglement)
            + _row("DCI completeness", s.completeness) + _row(f"DCI informativeness ({informativeness})", s.informativeness)
            + _row("SAP", s.sap) + _row("β-VAE score", s.beta_vae) + _row("FactorVAE score", s.factor_vae)
            + "</table>"
            f"<p style='color:#555'>{s.points:,} training means · factors: {short(', '.join(s.factors), 120)}<br>"
            f"MI on 20 equal-width bins per latent · DCI by {'LassoCV' if s.estimator == 'lasso' else 'boosted trees'}"
            f" · DCI/SAP on 10,000 + 5,000 points, β-VAE/FactorVAE on 10,000 + 5,000 votes of 64 (seeded){notes}</p>")


def _row(name: str, value: float) -> str:
    return f"<tr><td>{name}</td><td align=right><b>{value:.3f}</b></td></tr>"


def _scores(points, factors, estimator, progress=None, should_stop=None):
    from latentlab.core.meaning.disentanglement import disentanglement_scores

    return disentanglement_scores(points, factors, estimator=estimator, progress=progress, should_stop=should_stop)
