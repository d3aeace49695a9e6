"""Training controls: dataset, model shape, run length, the β slider, Train/Stop."""

from __future__ import annotations

import math

from PySide6 import QtCore, QtWidgets

from .session import TrainRequest

BETA_MIN, BETA_MAX = 0.01, 20.0
_TICKS = 1000
BETA_DEBOUNCE_MS = 500


class BetaSlider(QtWidgets.QWidget):
    """β on a log scale, with its value shown and editable. `committed` fires when the user lets go
    of the handle, finishes typing, or stops pressing keys: that is when a retrain should start."""

    committed = QtCore.Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setObjectName("betaSlider")
        self.slider.setRange(0, _TICKS)
        self.slider.setToolTip("β weights the KL term; log scale from 0.01 to 20. Letting go retrains.")
        self.box = QtWidgets.QDoubleSpinBox(decimals=3, minimum=BETA_MIN, maximum=BETA_MAX)
        self.box.setStepType(QtWidgets.QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
        self.box.setKeyboardTracking(False)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.box)
        self._debounce = QtCore.QTimer(self, singleShot=True, interval=BETA_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._commit)
        self.slider.valueChanged.connect(self._slider_moved)
        self.slider.sliderReleased.connect(self._commit)
        self.box.editingFinished.connect(self._box_edited)
        self.setValue(1.0)

    def value(self) -> float:
        return self.box.value()

    def setValue(self, beta: float) -> None:
        """Set β without starting a retrain."""
        for w in (self.slider, self.box):
            w.blockSignals(True)
        self.box.setValue(beta)
        self.slider.setValue(to_ticks(beta))
        for w in (self.slider, self.box):
            w.blockSignals(False)

    def _slider_moved(self, ticks: int) -> None:
        self.box.blockSignals(True)
        self.box.setValue(from_ticks(ticks))
        self.box.blockSignals(False)
        if not self.slider.isSliderDown():  # keys, wheel or page clicks: wait until they stop
            self._debounce.start()

    def _box_edited(self) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(to_ticks(self.box.value()))
        self.slider.blockSignals(False)
        self._commit()

    def _commit(self) -> None:
        self._debounce.stop()
        self.committed.emit(self.value())


def to_ticks(beta: float) -> int:
    lo, hi = math.log10(BETA_MIN), math.log10(BETA_MAX)
    return round((math.log10(min(max(beta, BETA_MIN), BETA_MAX)) - lo) / (hi - lo) * _TICKS)


def from_ticks(ticks: int) -> float:
    lo, hi = math.log10(BETA_MIN), math.log10(BETA_MAX)
    return float(f"{10 ** (lo + (hi - lo) * ticks / _TICKS):.3g}")


class TrainingControls(QtWidgets.QGroupBox):
    """Forwards Train/Stop and β commits to the session; shows whether a run is going."""

    openDatasetRequested = QtCore.Signal(str)

    def __init__(self, session, parent=None):
        super().__init__("Training", parent)
        self.session = session
        self.dataset = QtWidgets.QComboBox(editable=True)
        self.dataset.addItems(["digits", "sprites"])
        self.dataset.setToolTip("digits, sprites, mnist:DIR, fashion-mnist:DIR, kmnist:DIR, npz:FILE, images:DIR")
        # Enter in the editable box also fires `activated`, so that one connection covers typing too.
        self.dataset.activated.connect(lambda _i: self.openDatasetRequested.emit(self.dataset.currentText()))
        self.arch = QtWidgets.QComboBox()
        self.arch.addItems(["mlp", "conv"])
        self.latent_dim = QtWidgets.QSpinBox(minimum=1, maximum=64, value=2)
        self.hidden = QtWidgets.QLineEdit("512,256")
        self.hidden.setToolTip("Hidden layer widths, comma-separated")
        self.likelihood = QtWidgets.QComboBox()
        self.likelihood.addItems(["bernoulli", "gaussian"])
        self.epochs = QtWidgets.QSpinBox(minimum=1, maximum=100000, value=30)
        self.lr = QtWidgets.QDoubleSpinBox(decimals=5, minimum=1e-5, maximum=1.0, singleStep=1e-4, value=1e-3)
        self.beta = BetaSlider()
        self.warm = QtWidgets.QCheckBox("Warm start from the current weights")
        self.warm.setChecked(True)
        self.button = QtWidgets.QPushButton("Train")
        self.button.setObjectName("trainButton")
        self.button.setToolTip("Start training (Ctrl+T); while training, stop it (Esc)")
        form = QtWidgets.QFormLayout(self)
        form.addRow("Dataset", self.dataset)
        form.addRow("Architecture", self.arch)
        form.addRow("Latent size K", self.latent_dim)
        form.addRow("Hidden widths", self.hidden)
        form.addRow("Likelihood", self.likelihood)
        form.addRow("Epochs", self.epochs)
        form.addRow("Learning rate", self.lr)
        form.addRow("β", self.beta)
        form.addRow(self.warm)
        form.addRow(self.button)
        self.button.clicked.connect(self.toggle)
        self.beta.committed.connect(self._beta_committed)
        session.trainingChanged.connect(self._on_training)
        session.modelChanged.connect(self._on_model)
        session.datasetChanged.connect(self._on_dataset)

    def request(self) -> TrainRequest:
        try:
            hidden = tuple(int(v) for v in self.hidden.text().split(",") if v.strip())
        except ValueError:
            hidden = ()
        return TrainRequest(latent_dim=self.latent_dim.value(), arch=self.arch.currentText(), hidden=hidden or (512, 256),
                            likelihood=self.likelihood.currentText(), epochs=self.epochs.value(), lr=self.lr.value(),
                            beta=self.beta.value(), warm_start=self.warm.isChecked())

    def toggle(self) -> None:
        if self.session.busy:
            self.session.stop()
        else:
            self.session.train(self.request())

    def _beta_committed(self, _beta: float) -> None:
        self.session.train(self.request())

    def _on_training(self, running: bool) -> None:
        self.button.setText("Stop" if running else "Train")

    def _on_model(self) -> None:
        """Show the loaded model's own shape so that warm starts keep it."""
        cfg = self.session.model.cfg
        for w in (self.arch, self.latent_dim, self.hidden, self.likelihood):
            w.blockSignals(True)
        self.arch.setCurrentText(cfg.arch)
        self.latent_dim.setValue(cfg.latent_dim)
        self.hidden.setText(",".join(str(v) for v in cfg.hidden))
        self.likelihood.setCurrentText(cfg.likelihood)
        for w in (self.arch, self.latent_dim, self.hidden, self.likelihood):
            w.blockSignals(False)
        if self.session.history:
            self.beta.setValue(float(self.session.history[-1].get("beta", 1.0)))

    def _on_dataset(self) -> None:
        spec = self.session.dataset_spec
        if self.dataset.findText(spec) < 0:
            self.dataset.addItem(spec)
        self.dataset.setCurrentText(spec)
