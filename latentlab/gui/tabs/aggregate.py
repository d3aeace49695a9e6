"""The aggregate posterior q(z) = mean_i q(z|x_i) against the prior: its density on the latent view,
the "holes" where the prior has mass but no data is encoded, and prior samples that land there.
The session keeps q(z) current after every full encode while the overlay or this summary is shown,
whichever tab is in front; this view shows the summary, switches the overlay and asks for prior samples."""

from __future__ import annotations

from PySide6 import QtWidgets

from latentlab.gui.state.session import Session
from latentlab.gui.state.work import HOLE_RATIO
from latentlab.gui.widgets.images import pil_to_pixmap
from latentlab.gui.widgets.small_screens import FlowLayout, scrolling


class AggregateView(QtWidgets.QWidget):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.setObjectName("aggregateView")
        self.session = session
        self.latent = session.latent
        self.show_overlay = QtWidgets.QCheckBox("Show q(z) and its holes on the latent view")
        self.sample_count = QtWidgets.QSpinBox(minimum=4, maximum=256, value=32)
        self.sample = QtWidgets.QPushButton("Sample the prior")
        self.sample.setToolTip("Draw from N(0, I), mark the draws that land in holes and decode them")
        self.summary = QtWidgets.QLabel(wordWrap=True)
        self.in_holes = QtWidgets.QLabel()
        self.covered = QtWidgets.QLabel()
        bar = FlowLayout()   # wraps on a narrow window
        for w in (self.show_overlay, QtWidgets.QLabel("samples"), self.sample_count, self.sample):
            bar.addWidget(w)
        body = QtWidgets.QWidget()
        grids = QtWidgets.QFormLayout(body)
        grids.setContentsMargins(0, 0, 0, 0)
        grids.addRow(self.summary)
        grids.addRow("In holes:", self.in_holes)
        grids.addRow("Elsewhere:", self.covered)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(scrolling(body), 1)   # up to 256 decoded samples: they scroll on a short screen
        self.show_overlay.toggled.connect(self.latent.set_show_overlay)
        self.sample.clicked.connect(self.draw_samples)
        for signal in (self.latent.changed, self.latent.projectionChanged, self.latent.aggregateChanged):
            signal.connect(self.refresh)
        self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.latent.set_summary_shown(True)

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.latent.set_summary_shown(False)

    def refresh(self) -> None:
        lp = self.latent
        model = self.session.model_data.model
        if getattr(model, "deterministic", False):
            self.sample.setEnabled(False)
            self.show_overlay.setEnabled(False)
            why = "A deterministic autoencoder has no q(z|x) and no prior to compare its codes with."
            self.sample.setToolTip(why)
            self.show_overlay.setToolTip(why)
            self.summary.setText(why)
            return
        self.show_overlay.setEnabled(True)
        self.sample.setEnabled(lp.has_plane)
        self.sample.setToolTip("Draw from N(0, I), mark the draws that land in holes and decode them" if lp.has_plane
                               else "Needs the whole dataset encoded and a pair of coordinates shown (not the PCA view)")
        if not lp.has_plane:
            self.summary.setText("Available once the whole dataset is encoded, for a pair of coordinates "
                                 "(not the PCA view)." if lp.points is not None else "")
        elif lp.aggregate is None:
            self.summary.setText("Computing q(z)…")
        else:
            agg = lp.aggregate
            prior = agg.get("prior", "N(0, I)")
            note = f" {agg['note']}" if agg.get("note") else ""
            self.summary.setText(
                f"<b>{100 * agg['hole_share']:.1f}%</b> of prior samples fall in holes (q(z) &lt; {HOLE_RATIO:g}·p(z) "
                f"inside the prior's 95% region) · KL(q(z) ‖ p(z)) ≈ <b>{agg['kl']:.2f}</b> nats (Monte Carlo, "
                f"mixture density) · p(z): {prior}. Samples from holes decode to images unlike the data: the decoder "
                f"never saw those codes.{note}")
        self._show_samples()

    def draw_samples(self) -> None:
        self.show_overlay.setChecked(True)   # the samples are drawn with the holes they fall in
        self.session.analyses.sample_prior(self.sample_count.value())

    def _show_samples(self) -> None:
        r = self.latent.prior_samples
        for label, mask in ((self.in_holes, None if r is None else r["in_hole"]),
                            (self.covered, None if r is None else ~r["in_hole"])):
            if r is None or not mask.any():
                label.setText("—" if r is not None else "")
                continue
            from latentlab.core.files.export import grid_image  # torch and torchvision: not before there is something to show

            imgs = r["images"][mask]
            label.setPixmap(pil_to_pixmap(grid_image(imgs, nrow=16, scale=max(1, 32 // imgs.shape[-1]))))
