"""The training rows picked with a rectangle or lasso on the latent view: a state part like those in
parts.py, kept while the dataset stays."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore


class PointSelection(QtCore.QObject):
    """Training rows picked with a rectangle or lasso on the latent view."""

    changed = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows = np.zeros(0, np.int64)      # rows of data.x_train, ascending
        self.shape = ""                        # "rectangle" or "lasso"

    def __len__(self) -> int:
        return len(self.rows)

    def set(self, rows: np.ndarray, shape: str = "") -> None:
        self.rows, self.shape = np.asarray(rows, np.int64), shape
        self.changed.emit()

    def clear(self) -> None:
        if len(self.rows):
            self.set(np.zeros(0, np.int64))
