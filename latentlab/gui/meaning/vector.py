"""The Vector tab: build an attribute vector from two selections, two labels or a factor (or load
one), see how far to trust it, show its plane on the latent view, and walk along it: the inspected
image's analogy strip, stepping α moves the marker, and the selection's grid exports as PNG."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from latentlab.core.text import short
from latentlab.gui.state.attribute_vectors import SOURCES
from latentlab.gui.state.session import Session
from latentlab.gui.widgets.lazy import LazyView

from .pictures import grid_pixmap

STRIP_PX = 56
GRID_PX = 40


class VectorView(LazyView):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.setObjectName("vectorView")
        self.session, self.vectors = session, session.vectors
        self.source = QtWidgets.QComboBox()
        self.source.addItems(SOURCES)
        self.source.setToolTip("Where the vector comes from: the difference of two groups' mean codes, or the "
                               "direction of a factor's linear regression on the codes")
        self.build = QtWidgets.QPushButton("Build")
        self.build.setToolTip("Compute the vector, its held-out AUC and its bootstrap spread (in the background)")
        self.take_a = QtWidgets.QPushButton("A ← selection")
        self.take_b = QtWidgets.QPushButton("B ← selection")
        for button in (self.take_a, self.take_b):
            button.setToolTip("Use the points selected on the latent view (Alt+drag, Alt+Shift+drag for a lasso)")
        self.groups_label = QtWidgets.QLabel("A: — · B: —")
        self.label_a, self.label_b = QtWidgets.QComboBox(), QtWidgets.QComboBox()
        self.factor = QtWidgets.QComboBox()
        self.pages = QtWidgets.QStackedWidget()
        self.pages.addWidget(_row(self.take_a, self.take_b, self.groups_label))
        self.pages.addWidget(_row(QtWidgets.QLabel("from"), self.label_a, QtWidgets.QLabel("to"), self.label_b))
        self.pages.addWidget(_row(QtWidgets.QLabel("factor"), self.factor))
        self.pages.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Maximum)
        self.trust = QtWidgets.QLabel("No vector yet.", wordWrap=True)
        self.trust.setObjectName("vectorTrust")
        self.trust.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.show_plane = QtWidgets.QPushButton("Show plane")
        self.show_plane.setToolTip("Latent view: x along the vector, y the first principal direction orthogonal to it")
        self.load_button, self.save_button = QtWidgets.QPushButton("Load…"), QtWidgets.QPushButton("Save…")
        controls = QtWidgets.QVBoxLayout()
        controls.addLayout(_hbox(QtWidgets.QLabel("From"), self.source, self.build))
        controls.addWidget(self.pages)
        controls.addWidget(self.trust)
        controls.addLayout(_hbox(self.show_plane, self.load_button, self.save_button))
        controls.addStretch(1)
        left = QtWidgets.QWidget()
        left.setLayout(controls)
        left.setMaximumWidth(360)

        self.alpha_lo = QtWidgets.QDoubleSpinBox(minimum=-20, maximum=20, value=-2.0, singleStep=0.5, prefix="α ")
        self.alpha_hi = QtWidgets.QDoubleSpinBox(minimum=-20, maximum=20, value=2.0, singleStep=0.5, prefix="to ")
        self.steps = QtWidgets.QSpinBox(minimum=2, maximum=25, value=9, suffix=" steps")
        for w in (self.alpha_lo, self.alpha_hi, self.steps):
            w.setKeyboardTracking(False)
        self.alpha_lo.setToolTip("α = 1 moves a code by the whole vector: from A's mean to B's")
        self.step = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.step.setObjectName("alphaSlider")
        self.step.setToolTip("Step α: the marker moves to z + α·v and the decoded view shows it")
        self.step.setMinimumWidth(120)
        self.step_label = QtWidgets.QLabel("α = —")
        self.strip_caption = QtWidgets.QLabel("Shift-click a point to inspect it; its analogy strip appears here.")
        self.strip_caption.setStyleSheet("color: #555;")
        self.strip = QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter)
        self.strip.setMinimumHeight(STRIP_PX + 6)
        self.make_grid = QtWidgets.QPushButton("Grid of selection")
        self.make_grid.setToolTip("The same steps applied to (up to 8 of) the selected images: one row each")
        self.export = QtWidgets.QPushButton("Export PNG…")
        self.grid = QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
        right = QtWidgets.QVBoxLayout()
        right.addLayout(_hbox(self.alpha_lo, self.alpha_hi, self.steps, self.step, self.step_label, stretch=True))
        right.addWidget(self.strip_caption)
        right.addWidget(self.strip)
        right.addLayout(_hbox(self.make_grid, self.export, stretch=True))
        right.addWidget(self.grid, 1)
        body = QtWidgets.QWidget()
        body.setLayout(right)
        scroll = QtWidgets.QScrollArea(widgetResizable=True)
        scroll.setWidget(body)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        layout = QtWidgets.QHBoxLayout(self)
        layout.addWidget(left)
        layout.addWidget(scroll, 1)

        self.source.currentIndexChanged.connect(self.pages.setCurrentIndex)
        self.build.clicked.connect(self.build_vector)
        self.take_a.clicked.connect(lambda: self.vectors.take_selection("A"))
        self.take_b.clicked.connect(lambda: self.vectors.take_selection("B"))
        self.show_plane.clicked.connect(self._show_plane)
        self.load_button.clicked.connect(self._load_dialog)
        self.save_button.clicked.connect(self._save_dialog)
        for w in (self.alpha_lo, self.alpha_hi, self.steps):
            w.valueChanged.connect(self._alphas_changed)
        self.step.valueChanged.connect(self._step)
        self.make_grid.clicked.connect(self.vectors.update_grid)
        self.export.clicked.connect(self._export_dialog)
        self.vectors.changed.connect(self.request_refresh)
        self.vectors.stripChanged.connect(self._show_strip)
        self.vectors.gridChanged.connect(self._show_grid)
        session.selection.changed.connect(self._show_selection_state)
        session.model_data.datasetChanged.connect(self._on_dataset)
        self._on_dataset()
        self.refresh()

    # ----- building -----------------------------------------------------------------------------
    def _on_dataset(self) -> None:
        data = self.session.model_data.data
        names = [short(n, 40) for n in data.label_names] if data is not None else []
        for combo, index in ((self.label_a, 0), (self.label_b, 1)):
            combo.clear()
            combo.addItems(names)
            combo.setCurrentIndex(min(index, len(names) - 1))
        factors = list((data.factors_train or {}) if data is not None else {})
        self.factor.clear()
        self.factor.addItems(factors)
        self.source.model().item(2).setEnabled(bool(factors))
        if not factors and self.source.currentIndex() == 2:
            self.source.setCurrentIndex(0)

    def build_vector(self) -> None:
        which = self.source.currentIndex()
        if which == 0:
            self.vectors.build_from_groups()
        elif which == 1:
            self.vectors.build_from_labels(self.label_a.currentIndex(), self.label_b.currentIndex())
        elif self.factor.currentText():
            self.vectors.build_from_factor(self.factor.currentText())

    def _show_plane(self) -> None:
        self.vectors.show_plane()

    def refresh(self) -> None:
        v = self.vectors.vector
        self._show_selection_state()
        for w in (self.show_plane, self.save_button, self.make_grid):
            w.setEnabled(v is not None)
        if v is None:
            self.trust.setText("No vector yet: choose where it comes from and Build, or Load a saved one.")
            return
        lines = [f"<b>{short(v.title, 80)}</b> ({self.vectors.origin})"]
        if v.r2 is not None:
            lines.append(f"held-out R² <b>{v.r2:.3f}</b> (the factor predicted linearly)")
        lines.append(f"held-out AUC <b>{v.auc:.3f}</b> on {v.held_out:,} points (0.5 is chance)")
        lines.append(f"bootstrap cosine <b>{v.cosine:.3f}</b> over {v.bootstraps} resamples (1: stable)")
        lines.append(f"length {v.length:.3f}: α = 1 moves from {short(v.source, 30)} to {short(v.target, 30)}")
        self.trust.setText("<br>".join(lines))

    def _show_selection_state(self) -> None:
        groups = self.vectors.groups
        count = lambda k: f"{len(groups[k]):,}" if k in groups else "—"  # noqa: E731
        n = len(self.session.selection)
        self.groups_label.setText(f"A: {count('A')} · B: {count('B')}")
        for button in (self.take_a, self.take_b):
            button.setEnabled(n > 0)
        self.make_grid.setEnabled(self.vectors.vector is not None and n > 0)

    # ----- analogies ----------------------------------------------------------------------------
    def _alphas_changed(self) -> None:
        self.vectors.set_alphas(self.alpha_lo.value(), self.alpha_hi.value(), self.steps.value())

    def _show_strip(self) -> None:
        images, alphas = self.vectors.strip, self.vectors.alphas
        self.step.blockSignals(True)
        self.step.setRange(0, len(alphas) - 1)
        self.step.setValue(int(abs(alphas).argmin()))
        self.step.blockSignals(False)
        self.step.setEnabled(images is not None)
        if images is None:
            self.strip.clear()
            self.step_label.setText("α = —")
            return
        self.step_label.setText(f"α = {alphas[self.step.value()]:+.2f}")
        self.strip_caption.setText(f"From {self.vectors.strip_of}: decode(z + α·v), α = "
                                   f"{alphas[0]:g} … {alphas[-1]:g}")
        self.strip.setPixmap(grid_pixmap(images, len(images), STRIP_PX))

    def _step(self, i: int) -> None:
        codes = self.vectors.strip_codes
        if codes is None or not 0 <= i < len(codes):
            return
        self.step_label.setText(f"α = {self.vectors.alphas[i]:+.2f}")
        self.session.set_z(codes[i], f"α = {self.vectors.alphas[i]:+.2f} along {short(self.vectors.vector.title, 60)}")

    def _show_grid(self) -> None:
        grid = self.vectors.grid
        self.export.setEnabled(grid is not None)
        if grid is None:
            self.grid.clear()
            return
        rows, cols = grid.shape[:2]
        self.grid.setPixmap(grid_pixmap(grid.reshape(rows * cols, *grid.shape[2:]), cols, GRID_PX))

    # ----- files --------------------------------------------------------------------------------
    def _load_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Load attribute vector", str(Path.home()),
                                                        "Attribute vectors (*.npz)")
        if path:
            self.vectors.load(path)

    def _save_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save attribute vector", str(Path.home() / "vector.npz"),
                                                        "Attribute vectors (*.npz)")
        if path:
            self.vectors.save(path if path.lower().endswith(".npz") else path + ".npz")

    def _export_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export analogy grid", str(Path.home() / "analogies.png"),
                                                        "PNG images (*.png)")
        if path:
            self.vectors.export_grid(path if path.lower().endswith(".png") else path + ".png")


def _hbox(*widgets, stretch: bool = False) -> QtWidgets.QHBoxLayout:
    box = QtWidgets.QHBoxLayout()
    box.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        box.addWidget(w)
    if stretch:
        box.addStretch(1)
    return box


def _row(*widgets) -> QtWidgets.QWidget:
    holder = QtWidgets.QWidget()
    holder.setLayout(_hbox(*widgets, stretch=True))
    return holder
