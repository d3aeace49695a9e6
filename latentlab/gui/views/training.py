"""Training controls: dataset, model shape, run length, the β slider, Train/Stop."""

from __future__ import annotations

import math

from PySide6 import QtCore, QtWidgets
from superqt.utils import qdebounced

from latentlab.gui.state.parts import ModelData
from latentlab.gui.state.runs import RunController, TrainRequest
from latentlab.gui.widgets.small_screens import scrolling

BETA_MIN, BETA_MAX = 0.01, 20.0
_TICKS = 1000
BETA_DEBOUNCE_MS = 500
DATASET_FORMS = "digits, sprites, mnist:DIR, fashion-mnist:DIR, kmnist:DIR, npz:FILE, images:DIR"


class BetaSlider(QtWidgets.QWidget):
    """β on a log scale, with its value shown and editable. `committed` fires when the user lets go
    of the handle, finishes typing, or stops pressing keys: that is when a retrain should start."""

    committed = QtCore.Signal(float)
    valueChanged = QtCore.Signal(float)   # every change by the user, committed or not

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
        self._debounced_commit = qdebounced(self._commit, timeout=BETA_DEBOUNCE_MS, parent=self)
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
        self.valueChanged.emit(self.value())
        if not self.slider.isSliderDown():  # keys, wheel or page clicks: wait until they stop
            self._debounced_commit()

    def _box_edited(self) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(to_ticks(self.box.value()))
        self.slider.blockSignals(False)
        self.valueChanged.emit(self.value())
        self._commit()

    def _commit(self) -> None:
        self._debounced_commit.cancel()
        self.committed.emit(self.value())


def to_ticks(beta: float) -> int:
    lo, hi = math.log10(BETA_MIN), math.log10(BETA_MAX)
    return round((math.log10(min(max(beta, BETA_MIN), BETA_MAX)) - lo) / (hi - lo) * _TICKS)


def from_ticks(ticks: int) -> float:
    lo, hi = math.log10(BETA_MIN), math.log10(BETA_MAX)
    return float(f"{10 ** (lo + (hi - lo) * ticks / _TICKS):.3g}")


class TrainingControls(QtWidgets.QGroupBox):
    """Edits the run controller's training request, starts and stops runs, shows whether one is going."""

    openDatasetRequested = QtCore.Signal(str)

    def __init__(self, runs: RunController, model_data: ModelData, parent=None):
        super().__init__("Training", parent)
        self.runs = runs
        self.model_data = model_data
        self.dataset = QtWidgets.QComboBox(editable=True)
        self.dataset.addItems(["digits", "sprites"])
        self.dataset.setToolTip(DATASET_FORMS)
        # Enter in the editable box also fires `activated`, so that one connection covers typing too.
        self.dataset.activated.connect(lambda _i: self.openDatasetRequested.emit(self.dataset.currentText()))
        self.arch = QtWidgets.QComboBox()
        self.arch.addItems(["mlp", "conv"])
        self.latent_dim = QtWidgets.QSpinBox(minimum=1, maximum=64)
        self.hidden = QtWidgets.QLineEdit(",".join(str(v) for v in runs.request.hidden))
        self.hidden.setToolTip("Hidden layer widths, comma-separated")
        self.hidden.setPlaceholderText("your model's own")
        self.likelihood = QtWidgets.QComboBox()
        self.likelihood.addItems(["bernoulli", "gaussian"])
        self.epochs = QtWidgets.QSpinBox(minimum=1, maximum=100000)
        self.lr = QtWidgets.QDoubleSpinBox(decimals=5, minimum=1e-5, maximum=1.0, singleStep=1e-4)
        self.beta = BetaSlider()
        self.warm = QtWidgets.QCheckBox("Warm start from the current weights")
        self.button = QtWidgets.QPushButton("Train")
        self.button.setObjectName("trainButton")
        self.button.setToolTip("Start training (Ctrl+T); while training, stop it (Esc)")
        fields = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(fields)
        form.setContentsMargins(0, 0, 4, 0)
        form.addRow("Dataset", self.dataset)
        form.addRow("Architecture", self.arch)
        form.addRow("Latent size K", self.latent_dim)
        form.addRow("Hidden widths", self.hidden)
        form.addRow("Likelihood", self.likelihood)
        form.addRow("Epochs", self.epochs)
        form.addRow("Learning rate", self.lr)
        # On a short screen these fields scroll; β, the warm start and Train stay in sight below them.
        two_rows = 2 * self.dataset.sizeHint().height() + form.verticalSpacing()
        # It asks for two rows: the decoded image above gets its size first, these take what is left.
        self.fields = scrolling(fields, across=False, hint_height=two_rows)
        self.fields.setObjectName("trainingFields")
        self.fields.setMinimumHeight(two_rows)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.fields, 1)
        layout.addWidget(QtWidgets.QLabel("β, the weight of the KL term"))
        layout.addWidget(self.beta)   # the whole width of the form: a drag across it spans 0.01 … 20
        layout.addWidget(self.warm)
        layout.addWidget(self.button)
        self._show_request()
        set_request = runs.set_request
        self.arch.currentTextChanged.connect(lambda v: set_request(arch=v))
        self.latent_dim.valueChanged.connect(lambda v: set_request(latent_dim=v))
        # An emptied box is one being retyped: the request keeps its widths until there is a new list.
        self.hidden.textChanged.connect(lambda text: text.strip() and set_request(hidden=parse_hidden(text)))
        self.likelihood.currentTextChanged.connect(lambda v: set_request(likelihood=v))
        self.epochs.valueChanged.connect(lambda v: set_request(epochs=v))
        self.lr.valueChanged.connect(lambda v: set_request(lr=v))
        self.beta.valueChanged.connect(lambda v: set_request(beta=v))
        self.warm.toggled.connect(lambda v: set_request(warm_start=v))
        self.button.clicked.connect(self.toggle)
        self.beta.committed.connect(self._beta_committed)
        runs.trainingChanged.connect(self._on_training)
        runs.requestChanged.connect(self._show_request)
        model_data.datasetChanged.connect(self.show_dataset)
        model_data.modelChanged.connect(self._on_model)
        model_data.modelChanged.connect(self.show_dataset)
        self._tooltips = {w: w.toolTip() for w in (self.arch, self.latent_dim, self.hidden, self.likelihood, self.warm,
                                                   self.button, self.beta.slider)}

    def _on_model(self) -> None:
        """A foreign model keeps its own shape: the fields that set a new model's shape are disabled
        (and say why), and training fine-tunes a copy of it from its current weights."""
        md = self.model_data
        shape_fields = (self.arch, self.latent_dim, self.hidden, self.likelihood, self.warm)
        for w in (*shape_fields, self.button, self.beta.slider):
            w.setToolTip(self._tooltips[w])
        for w in (*shape_fields, self.button, self.beta):
            w.setEnabled(True)
        # A foreign latent can be far wider than a new model's (the box shows its K).
        self.latent_dim.setMaximum(max(64, md.model.latent_dim if md.foreign else 0))
        self._show_request()
        if not md.foreign:
            return
        name = md.model.describe()
        why = f"Set by your model, {name}: latentlab fine-tunes a copy of it and keeps its architecture and likelihood"
        for w in shape_fields:
            w.setEnabled(False)
            w.setToolTip(why)
        self.warm.setToolTip(f"{name} is always fine-tuned from its current weights (a copy; your files are not written)")
        if not md.model.trainable:
            for w in (self.button, self.beta):
                w.setEnabled(False)
            why = (f"{name} is a deterministic autoencoder: latentlab fine-tunes with the ELBO, which needs q(z|x)"
                   if getattr(md.model, "deterministic", False) else
                   f"{name} has no trainable parameters, so there is nothing to fine-tune")
            for w in (self.button, self.beta.slider):
                w.setToolTip(why)
        else:
            self.button.setToolTip(f"Fine-tune a copy of {name} with latentlab's objective (Ctrl+T); your files are "
                                   "not written. While training, stop it (Esc)")

    def toggle(self) -> None:
        if self.runs.busy:
            self.runs.stop()
        else:
            self.runs.train()

    def _beta_committed(self, beta: float) -> None:
        self.runs.set_request(beta=beta)
        self.runs.train()

    def _on_training(self, running: bool) -> None:
        self.button.setText("Stop" if running else "Train")

    def _show_request(self) -> None:
        """Show the request as it is in the state (a loaded model's shape, restored settings)."""
        r = self.runs.request
        widgets = (self.arch, self.latent_dim, self.hidden, self.likelihood, self.epochs, self.lr, self.warm)
        for w in widgets:
            w.blockSignals(True)
        self.arch.setCurrentText(r.arch)
        self.latent_dim.setValue(r.latent_dim)
        # While the user types, leave a list that already means the request alone ("64," is (64,)).
        if not self.hidden.hasFocus() or parse_hidden(self.hidden.text()) != tuple(r.hidden):
            self.hidden.setText(",".join(str(v) for v in r.hidden))
        self.likelihood.setCurrentText(r.likelihood)
        self.epochs.setValue(r.epochs)
        self.lr.setValue(r.lr)
        self.warm.setChecked(r.warm_start)
        if self.model_data.foreign:  # its architecture is the user's own: the request's values would mislead
            self.arch.setCurrentIndex(-1)
            self.likelihood.setCurrentIndex(-1)
            self.hidden.clear()
        for w in widgets:
            w.blockSignals(False)
        if abs(self.beta.value() - r.beta) > 1e-9:
            self.beta.setValue(r.beta)

    def show_loading(self, spec: str) -> None:
        """The dataset being opened, in italics until it is open (or has failed)."""
        font = self.dataset.font()
        font.setItalic(True)
        self.dataset.setFont(font)
        self.dataset.setCurrentText(spec)
        self.dataset.setToolTip(f"Opening {spec}…")
        self.dataset.lineEdit().setCursorPosition(0)

    def show_dataset(self, *_args) -> None:
        """The open dataset, from the start of its spec (the kind), all of it in the tooltip and the list."""
        font = self.dataset.font()
        font.setItalic(False)
        self.dataset.setFont(font)
        spec = self.model_data.dataset_spec
        self.dataset.setToolTip((f"{spec}\n\n" if spec else "") + DATASET_FORMS)
        if not spec:   # a model open without data: nothing chosen, so picking any dataset opens it
            self.dataset.setCurrentIndex(-1)
            return
        if self.dataset.findText(spec) < 0:
            self.dataset.addItem(spec)
        self.dataset.setCurrentText(spec)
        self.dataset.lineEdit().setCursorPosition(0)
        widest = max(self.dataset.fontMetrics().horizontalAdvance(self.dataset.itemText(i))
                     for i in range(self.dataset.count()))
        self.dataset.view().setMinimumWidth(min(widest + 30, 900))


def parse_hidden(text: str) -> tuple[int, ...]:
    """Hidden widths typed as "512,256"; the default shape while the text is not a list of numbers."""
    try:
        hidden = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        hidden = ()
    return hidden or TrainRequest.hidden
