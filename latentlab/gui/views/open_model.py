"""File → Open model…: a model SPEC typed or chosen (a Python file, a checkpoint, a diffusers folder),
optional fine-tuned weights and the likelihood to read the decoder's outputs with."""

from __future__ import annotations

from PySide6 import QtWidgets

OWN_LIKELIHOOD = "the model's own"
LIKELIHOODS = (OWN_LIKELIHOOD, "bernoulli", "bernoulli-probs", "gaussian", "gaussian:0.05")


class OpenModelDialog(QtWidgets.QDialog):
    def __init__(self, start_dir: str, parent=None):
        super().__init__(parent)
        self.setObjectName("openModelDialog")
        self.setWindowTitle("Open model")
        self.start_dir = start_dir
        self.spec = QtWidgets.QLineEdit()
        self.spec.setObjectName("modelSpec")
        self.spec.setPlaceholderText("PATH.py:NAME, package.module:NAME, PATH.safetensors, diffusers:DIR or pythae:DIR")
        self.spec.setToolTip("PATH.py:NAME imports PATH.py and calls NAME(), which returns your VAE (this runs your "
                             "code); a .safetensors checkpoint never runs code; diffusers:DIR opens an AutoencoderKL or "
                             "AutoencoderTiny folder; pythae:DIR a pythae final_model/ folder (pythae's loader runs its code)")
        self.spec.setMinimumWidth(460)
        file_button = QtWidgets.QPushButton("File…")
        file_button.setToolTip("A Python file with your model (then type the NAME of the function after the colon) "
                               "or a latentlab checkpoint")
        folder_button = QtWidgets.QPushButton("diffusers folder…")
        folder_button.setToolTip("A folder written by diffusers' AutoencoderKL or AutoencoderTiny save_pretrained")
        self.weights = QtWidgets.QLineEdit()
        self.weights.setObjectName("modelWeights")
        self.weights.setPlaceholderText("optional: fine-tuned weights saved by latentlab (.safetensors)")
        weights_button = QtWidgets.QPushButton("Browse…")
        self.likelihood = QtWidgets.QComboBox(editable=True)
        self.likelihood.addItems(LIKELIHOODS)
        self.likelihood.setToolTip("How to read the decoder's outputs: bernoulli (logits), bernoulli-probs or "
                                   "gaussian:SIGMA; by default the model's own, else bernoulli")
        spec_row = QtWidgets.QHBoxLayout()
        spec_row.addWidget(self.spec, 1)
        spec_row.addWidget(file_button)
        spec_row.addWidget(folder_button)
        weights_row = QtWidgets.QHBoxLayout()
        weights_row.addWidget(self.weights, 1)
        weights_row.addWidget(weights_button)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Open
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        form = QtWidgets.QFormLayout(self)
        form.addRow("Model SPEC", spec_row)
        form.addRow("Weights", weights_row)
        form.addRow("Likelihood", self.likelihood)
        form.addRow(buttons)
        file_button.clicked.connect(self._choose_file)
        folder_button.clicked.connect(self._choose_folder)
        weights_button.clicked.connect(self._choose_weights)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

    def values(self) -> tuple[str, str | None, str | None]:
        """(SPEC, weights file or None, likelihood or None)."""
        lik = self.likelihood.currentText().strip()
        return (self.spec.text().strip(), self.weights.text().strip() or None,
                None if lik in ("", OWN_LIKELIHOOD) else lik)

    def _choose_file(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Model file", self.start_dir,
                                                        "Python files or checkpoints (*.py *.safetensors);;All files (*)")
        if path:
            self.spec.setText(path + (":" if path.endswith(".py") else ""))
            self.spec.setFocus()  # a Python file still needs the NAME to call

    def _choose_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "diffusers AutoencoderKL folder", self.start_dir)
        if folder:
            self.spec.setText(f"diffusers:{folder}")

    def _choose_weights(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Fine-tuned weights", self.start_dir,
                                                        "safetensors files (*.safetensors)")
        if path:
            self.weights.setText(path)
