"""The aggregate posterior q(z) = mean_i q(z|x_i) against the prior: its density on the latent view,
the "holes" where the prior has mass but no data is encoded, and prior samples that land there."""

from __future__ import annotations

import numpy as np
from PySide6 import QtWidgets

from .images import pil_to_pixmap
from .lazy import LazyView

GRID = 160
SUMMARY_SAMPLES = 4000
HOLE_RATIO = 0.1


def aggregate_job(mu2: np.ndarray, logvar2: np.ndarray, mu: np.ndarray, logvar: np.ndarray, box: float) -> dict:
    """Density of q(z) on the shown pair of coordinates, its holes, the share of prior samples in
    holes and KL(q(z) || p(z)) over the full latent; on a worker thread."""
    from ..core.posterior import aggregate_density, holes, kl_aggregate_prior, prior_density, prior_samples_in_holes

    xs = ys = np.linspace(-box, box, GRID)
    density = aggregate_density(mu2, logvar2, xs, ys, cell_average=True)
    mask = holes(density, prior_density(xs, ys), ratio=HOLE_RATIO)
    rng = np.random.default_rng(0)
    _, in_hole = prior_samples_in_holes(mu2, logvar2, SUMMARY_SAMPLES, rng, ratio=HOLE_RATIO)
    kl = kl_aggregate_prior(mu, logvar, 4000, rng)
    return {"xs": xs, "ys": ys, "density": density, "holes": mask, "hole_share": float(in_hole.mean()), "kl": kl}


def prior_samples_job(model, mu2, logvar2, n: int, seed: int, projection, anchor) -> dict:
    """Draw n points from the prior in the shown plane, mark those in holes, decode them (lifted
    through the anchor, so for K > 2 the unseen coordinates are the anchor's)."""
    from ..core.analysis import decode
    from ..core.posterior import prior_samples_in_holes

    z2, in_hole = prior_samples_in_holes(mu2, logvar2, n, np.random.default_rng(seed), ratio=HOLE_RATIO)
    codes = np.stack([projection.lift(p, anchor) for p in z2])
    return {"z2": z2, "in_hole": in_hole, "images": decode(model, codes)}


class AggregateView(LazyView):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.setObjectName("aggregateView")
        self.session = session
        self.show_overlay = QtWidgets.QCheckBox("Show q(z) and its holes on the latent view")
        self.sample_count = QtWidgets.QSpinBox(minimum=4, maximum=256, value=32)
        self.sample = QtWidgets.QPushButton("Sample the prior")
        self.sample.setToolTip("Draw from N(0, I), mark the draws that land in holes and decode them")
        self.summary = QtWidgets.QLabel(wordWrap=True)
        self.in_holes = QtWidgets.QLabel()
        self.covered = QtWidgets.QLabel()
        bar = QtWidgets.QHBoxLayout()
        for w in (self.show_overlay, QtWidgets.QLabel("samples"), self.sample_count, self.sample):
            bar.addWidget(w)
        bar.addStretch(1)
        grids = QtWidgets.QFormLayout()
        grids.addRow("In holes:", self.in_holes)
        grids.addRow("Elsewhere:", self.covered)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.summary)
        layout.addLayout(grids)
        layout.addStretch(1)
        self.show_overlay.toggled.connect(self.request_refresh)
        self.sample.clicked.connect(self.draw_samples)
        for signal in (session.pointsChanged, session.projectionChanged):
            signal.connect(self.request_refresh)
        session.aggregateChanged.connect(self._show_samples)
        self._seed = 0

    def _plane(self):
        """Means and log-variances in the shown plane; None when it is not a pair of coordinates."""
        s = self.session
        if s.points is None or s.logvars is None or s.projection is None or s.point_index is not None:
            return None
        if s.projection.kind != "dims":
            return None
        i, j = s.projection.dims
        if s.model.latent_dim == 1:
            return np.c_[s.points[:, 0], np.zeros(len(s.points))], np.c_[s.logvars[:, 0], np.zeros(len(s.points))]
        return s.points[:, [i, j]], s.logvars[:, [i, j]]

    def refresh(self) -> None:
        s = self.session
        plane = self._plane()
        self.sample.setEnabled(plane is not None)
        if plane is None:
            self.summary.setText("Available once the whole dataset is encoded, for a pair of coordinates "
                                 "(not the PCA view)." if s.model is not None else "")
            s.set_aggregate(None, None)
            return
        box = max(4.0, float(np.percentile(np.abs(plane[0]), 99.5)) + 0.5)
        self.summary.setText("Computing q(z)…")
        s.run_job(aggregate_job, *plane, s.points, s.logvars, box, on_result=self._on_aggregate)

    def _on_aggregate(self, result: dict) -> None:
        s = self.session
        self.summary.setText(
            f"<b>{100 * result['hole_share']:.1f}%</b> of prior samples fall in holes (q(z) &lt; {HOLE_RATIO:g}·p(z) "
            f"inside the prior's 95% region) · KL(q(z) ‖ p(z)) ≈ <b>{result['kl']:.2f}</b> nats (Monte Carlo, "
            "mixture density). Samples from holes decode to images unlike the data: the decoder never saw those codes.")
        s.set_aggregate(result if self.show_overlay.isChecked() else None, s.prior_samples)

    def draw_samples(self) -> None:
        import copy

        s = self.session
        plane = self._plane()
        if plane is None:
            return
        self._seed += 1
        s.run_job(prior_samples_job, copy.deepcopy(s.model), *plane, self.sample_count.value(), self._seed,
                  s.projection, s.anchor(), on_result=lambda r: s.set_aggregate(s.aggregate, r))

    def _show_samples(self) -> None:
        from ..core.export import grid_image

        r = self.session.prior_samples
        for label, mask in ((self.in_holes, None if r is None else r["in_hole"]),
                            (self.covered, None if r is None else ~r["in_hole"])):
            if r is None or not mask.any():
                label.setText("—" if r is not None else "")
                continue
            imgs = r["images"][mask]
            label.setPixmap(pil_to_pixmap(grid_image(imgs, nrow=16, scale=max(1, 32 // imgs.shape[-1]))))
