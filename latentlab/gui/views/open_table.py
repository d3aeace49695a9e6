"""File → Open latent table…: a table of latent means (Parquet, CSV or NPZ, as `latentlab encode`
writes them), the model that encoded it, and optionally the dataset whose images its rows are."""

from __future__ import annotations

from PySide6 import QtWidgets


class OpenTableDialog(QtWidgets.QDialog):
    def __init__(self, start_dir: str, model: str = "", dataset: str = "", parent=None):
        super().__init__(parent)
        self.setObjectName("openTableDialog")
        self.setWindowTitle("Open latent table")
        self.start_dir = start_dir
        self.table = self._line("tableFile", "", "FILE.parquet, .csv or .npz: index, split, label, mu_0.., logvar_0..")
        self.model = self._line("tableModel", model, "the model that encoded it: PATH.safetensors, PATH.py:NAME, ...")
        self.model.setToolTip("Decodes clicks, paths and traversals; its latent size must be the table's")
        self.weights = self._line("tableWeights", "", "optional: fine-tuned weights for a Python or diffusers model")
        self.dataset = self._line("tableDataset", dataset, "optional: the dataset whose images the rows are (digits, mnist:DIR, ...)")
        self.dataset.setToolTip("Hover cards, the selection's grid and the inspector read the rows' images from it "
                                "(row `index` of its `split`); without it they say there are no images")
        form = QtWidgets.QFormLayout(self)
        form.addRow("Table", self._with_button(self.table, self._choose_table))
        form.addRow("Model SPEC", self._with_button(self.model, self._choose_model))
        form.addRow("Weights", self._with_button(self.weights, self._choose_weights))
        form.addRow("Dataset SPEC", self.dataset)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Open
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    @classmethod
    def ask(cls, start_dir: str, model_data, parent=None) -> tuple:
        """The dialog filled with the open model and dataset; its values, or empty ones when cancelled."""
        md = model_data
        model = md.spec or (str(md.source) if md.source is not None and not md.foreign else "")
        dialog = cls(start_dir, model, getattr(md.data, "spec", "") or "", parent)
        if dialog.exec() != QtWidgets.QDialog.DialogCode.Accepted:
            return "", "", None, None
        return dialog.values()

    def _line(self, name: str, text: str, hint: str) -> QtWidgets.QLineEdit:
        line = QtWidgets.QLineEdit(text)
        line.setObjectName(name)
        line.setPlaceholderText(hint)
        line.setMinimumWidth(420)
        return line

    @staticmethod
    def _with_button(line: QtWidgets.QLineEdit, choose) -> QtWidgets.QHBoxLayout:
        row = QtWidgets.QHBoxLayout()
        row.addWidget(line, 1)
        button = QtWidgets.QPushButton("Browse…")
        button.clicked.connect(choose)
        row.addWidget(button)
        return row

    def values(self) -> tuple[str, str, str | None, str | None]:
        """(table, model SPEC, weights or None, dataset SPEC or None)."""
        return (self.table.text().strip(), self.model.text().strip(), self.weights.text().strip() or None,
                self.dataset.text().strip() or None)

    def _choose(self, line: QtWidgets.QLineEdit, title: str, kinds: str) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, title, self.start_dir, kinds)
        if path:
            line.setText(path)

    def _choose_table(self) -> None:
        self._choose(self.table, "Latent table", "Latent tables (*.parquet *.csv *.npz);;All files (*)")

    def _choose_model(self) -> None:
        self._choose(self.model, "Model", "Checkpoints or Python files (*.safetensors *.py);;All files (*)")
        if self.model.text().endswith(".py"):
            self.model.setText(self.model.text() + ":")
            self.model.setFocus()   # a Python file still needs the NAME to call

    def _choose_weights(self) -> None:
        self._choose(self.weights, "Fine-tuned weights", "safetensors files (*.safetensors)")
