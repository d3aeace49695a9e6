"""Interpolation between two endpoints: the decoded strip, log p(z) along the path, animation, export."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from latentlab.gui.state.parts import PathMode
from latentlab.gui.state.session import Session
from latentlab.gui.widgets.images import pil_to_pixmap
from latentlab.gui.widgets.lazy import LazyView
from latentlab.gui.widgets.small_screens import FlowLayout, scrolling

STRIP_PX = 72
FRAME_MS = 120


class InterpolationView(LazyView):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.setObjectName("interpolationView")
        self.session = session
        self.path = session.path
        self.mode = QtWidgets.QComboBox()
        self.mode.addItems([m.value for m in PathMode])
        self.mode.setToolTip("slerp follows a great circle and keeps the norm, staying where the prior has its mass")
        self.steps = QtWidgets.QSpinBox(minimum=2, maximum=64, value=session.path.steps)
        self.set_a = QtWidgets.QPushButton("A ← marker")
        self.set_b = QtWidgets.QPushButton("B ← marker")
        self.animate = QtWidgets.QPushButton("Animate")
        self.animate.setCheckable(True)
        self.export_png = QtWidgets.QPushButton("Export PNG…")
        self.export_gif = QtWidgets.QPushButton("Export GIF…")
        self.hint = QtWidgets.QLabel("Shift-click two data points in the latent view (or set A and B from the marker).")
        self.hint.setStyleSheet("color: #555;")
        self.strip = QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.strip.setMinimumHeight(STRIP_PX + 24)
        scroll = QtWidgets.QScrollArea(widgetResizable=True)
        scroll.setWidget(self.strip)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setMinimumHeight(STRIP_PX + 40)
        self.profile = pg.PlotWidget(background="w")
        self.profile.setMinimumHeight(130)   # room for its ticks and label; the tab scrolls below that
        self.profile.setMaximumHeight(180)
        item = self.profile.getPlotItem()
        item.setLabel("bottom", "step along the path")
        item.setLabel("left", "log p(z)")
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setMenuEnabled(False)
        self.profile_curve = self.profile.plot([], [], pen=pg.mkPen("#1f77b4", width=2), symbol="o", symbolSize=5,
                                               symbolBrush="#1f77b4")
        bar = FlowLayout()   # wraps on a narrow window
        for w in (QtWidgets.QLabel("Path"), self.mode, QtWidgets.QLabel("steps"), self.steps, self.set_a, self.set_b,
                  self.animate, self.export_png, self.export_gif):
            bar.addWidget(w)
        body = QtWidgets.QWidget()
        body_layout = QtWidgets.QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        body_layout.addWidget(scroll, 1)
        body_layout.addWidget(self.profile)
        self.body = scrolling(body)   # hidden until there is a path: an empty plot says nothing
        self.body.hide()
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.hint)
        layout.addWidget(self.body, 1)
        layout.addStretch(0)
        self.mode.currentTextChanged.connect(lambda m: self.path.set_settings(mode=m))
        self.steps.valueChanged.connect(lambda n: self.path.set_settings(steps=n))
        self.set_a.clicked.connect(lambda: session.set_endpoint("A"))
        self.set_b.clicked.connect(lambda: session.set_endpoint("B"))
        self.animate.toggled.connect(self._toggle_animation)
        self.export_png.clicked.connect(self._export_png_dialog)
        self.export_gif.clicked.connect(self._export_gif_dialog)
        self._timer = QtCore.QTimer(self, interval=FRAME_MS)
        self._timer.timeout.connect(self._next_frame)
        self._frame = 0
        self.images: np.ndarray | None = None
        for signal in (session.path.changed, session.model_data.weightsChanged, session.model_data.modelChanged):
            signal.connect(self.request_refresh)

    def refresh(self) -> None:
        model = self.session.model_data.model
        path = self.path.codes() if model is not None else None
        ready = path is not None
        for w in (self.animate, self.export_png, self.export_gif):
            w.setEnabled(ready)
        self.hint.setVisible(not ready)
        self.body.setVisible(ready)
        if not ready:
            self.images = None
            self.strip.clear()
            self.profile_curve.setData([], [])
            if self.animate.isChecked():
                self.animate.setChecked(False)
            return
        from latentlab.core.inference.analysis import decode, log_prior

        self.images = decode(model, path)
        self.profile_curve.setData(np.arange(len(path)), log_prior(path, model.latent_prior()))
        self.strip.setPixmap(self._strip_pixmap())

    def strip_images(self) -> np.ndarray:
        """The decoded path with the endpoints' own data images (where they came from data) at both ends."""
        ends = [self.path.endpoints[k].image for k in ("A", "B")]
        parts = ([ends[0][None]] if ends[0] is not None else []) + [self.images] + ([ends[1][None]] if ends[1] is not None else [])
        return np.concatenate(parts).astype(np.float32)

    def _strip_pixmap(self):
        from latentlab.core.files.export import grid_image

        imgs = self.strip_images()
        scale = max(1, STRIP_PX // imgs.shape[-1])
        return pil_to_pixmap(grid_image(imgs, nrow=len(imgs), scale=scale, padding=2))

    def metadata(self) -> dict:
        p = self.path
        a, b = p.endpoints["A"], p.endpoints["B"]
        fmt = lambda z: "[" + ", ".join(f"{v:.3f}" for v in z) + "]"  # noqa: E731
        return {"endpoint_A": fmt(a.z), "endpoint_B": fmt(b.z), "mode": p.mode.value, "steps": p.steps,
                "label_A": a.label, "label_B": b.label, "dataset": self.session.model_data.dataset_spec}

    def default_name(self, ext: str) -> str:
        p = self.path
        a, b = p.endpoints["A"], p.endpoints["B"]
        tag = lambda e, z: e.label or "z" + "_".join(f"{v:+.2f}" for v in z[:4])  # noqa: E731
        return f"interp_{tag(a, a.z)}_to_{tag(b, b.z)}_{p.mode.value}_{p.steps}steps.{ext}".replace("/", "-")

    def export_png_to(self, path) -> None:
        from latentlab.core.files.export import grid_image, save_png

        imgs = self.strip_images()
        save_png(path, grid_image(imgs, nrow=len(imgs), scale=max(1, 64 // imgs.shape[-1])), self.metadata())

    def export_gif_to(self, path) -> None:
        from latentlab.core.files.export import save_gif

        save_gif(path, self.images, scale=max(1, 128 // self.images.shape[-1]), frame_ms=FRAME_MS, metadata=self.metadata())

    def _export_png_dialog(self) -> None:
        self._export_dialog("png", "PNG images (*.png)", self.export_png_to)

    def _export_gif_dialog(self) -> None:
        self._export_dialog("gif", "GIF animations (*.gif)", self.export_gif_to)

    def _export_dialog(self, ext, filter_, write) -> None:
        from latentlab.core.errors import LatentLabError

        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export interpolation", self.default_name(ext), filter_)
        if not path:
            return
        try:
            write(path)
        except LatentLabError as exc:
            self.session.report_error(str(exc))
        else:
            self.session.status.emit(f"Exported the interpolation to {path}.")

    def _toggle_animation(self, on: bool) -> None:
        self.animate.setText("Stop" if on else "Animate")
        if on:
            self._frame = 0
            self._timer.start()
        else:
            self._timer.stop()

    def _next_frame(self) -> None:
        path = self.path.codes()
        if path is None:
            self.animate.setChecked(False)
            return
        n = len(path)
        i = self._frame % (2 * n - 2) if n > 1 else 0
        self.session.set_z(path[i if i < n else 2 * n - 2 - i])
        self._frame += 1
