"""The Outliers tab: the images the model explains worst, ranked by reconstruction error or by the
importance-weighted estimate of log p(x), shown as a grid with their scores. Clicking one inspects it
as a Shift-click does: it becomes an interpolation endpoint and the marker, and a training image
becomes the inspected row (the Posterior tab shows it)."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from latentlab.core.text import short
from latentlab.gui.state.session import Session
from latentlab.gui.widgets.lazy import LazyView

from .pictures import tile

KEY = "outliers"
TILE_PX = 56
BY = (("recon", "reconstruction error"), ("iw", "importance-weighted log p(x)"))
SPLITS = (("test", "test images"), ("train", "training images"))


class OutliersView(LazyView):
    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.setObjectName("outliersView")
        self.session = session
        self.by = QtWidgets.QComboBox()
        for key, text in BY:
            self.by.addItem(text, key)
        self.by.setToolTip("Rank by −log p(x | z = μ) (highest first), or by the IWAE estimate of log p(x) with "
                           "K = 50 samples (lowest first; about 50 decodes per image)")
        self.split = QtWidgets.QComboBox()
        for key, text in SPLITS:
            self.split.addItem(text, key)
        self.count = QtWidgets.QSpinBox(minimum=4, maximum=200, value=24, prefix="worst ")
        self.count.setKeyboardTracking(False)
        self.rank = QtWidgets.QPushButton("Rank")
        self.rank.setToolTip("Score every image of the split again (in the background; Stop in the status bar)")
        self.summary = QtWidgets.QLabel(wordWrap=True)
        self.summary.setStyleSheet("color: #555;")
        self.grid = QtWidgets.QListWidget()
        self.grid.setObjectName("outlierGrid")
        self.grid.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        self.grid.setIconSize(QtCore.QSize(TILE_PX, TILE_PX))
        self.grid.setGridSize(QtCore.QSize(TILE_PX + 34, TILE_PX + 34))
        self.grid.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        self.grid.setMovement(QtWidgets.QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setToolTip("Click an image to inspect it")
        bar = QtWidgets.QHBoxLayout()
        for w in (QtWidgets.QLabel("Rank"), self.split, QtWidgets.QLabel("by"), self.by, self.count, self.rank):
            bar.addWidget(w)
        bar.addStretch(1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.summary)
        layout.addWidget(self.grid, 1)
        self.result: dict | None = None
        self._made_for = None
        self.rank.clicked.connect(lambda: self.start(force=True))
        for signal in (self.by.currentIndexChanged, self.split.currentIndexChanged, self.count.valueChanged):
            signal.connect(self.request_refresh)
        self.grid.itemClicked.connect(self._clicked)
        md = session.model_data
        # Not on every weights update of a run: its ranking follows the full encode after the run.
        for signal in (md.modelChanged, md.datasetChanged, session.latent.changed):
            signal.connect(self.request_refresh)

    def refresh(self) -> None:
        self.start()

    def start(self, force: bool = False) -> None:
        md = self.session.model_data
        if md.model is None or md.data is None:
            self.grid.clear()
            self.summary.setText("Open a model and its data to rank its images.")
            return
        if not self.session.latent.full and self.result is not None and not force:
            return   # a run is going: the ranking shown stays until its weights are final
        split = self.split.currentData()
        x = md.data.x_test if split == "test" else md.data.x_train
        if split == "test" and not len(x):
            self.summary.setText("This dataset has no test images; rank the training images instead.")
            return
        key = (md.version, md.data, split, self.by.currentData(), self.count.value())
        if not force and self._made_for is not None and all(a == b if i != 1 else a is b
                                                            for i, (a, b) in enumerate(zip(key, self._made_for))):
            return
        self._made_for = key
        self.summary.setText(f"Scoring {len(x):,} {split} images… (progress and Stop in the status bar)")
        self.session.jobs.submit_tracked(KEY, f"Ranking {len(x):,} {split} images", _rank, self.session.model_copy(),
                                         x, self.by.currentData(), self.count.value(),
                                         on_result=lambda r: self._on_result(r, key))

    def _on_result(self, result: dict, key) -> None:
        if key is not self._made_for:
            return
        self.result = {**result, "split": key[2]}
        data = self.session.model_data.data
        labels = data.y_test if key[2] == "test" else data.y_train
        ranked = result["ranked"]
        self.grid.clear()
        for rank, (row, score, image) in enumerate(zip(ranked.rows, ranked.scores, result["images"])):
            label = short(data.label_names[int(labels[row])], 20)
            item = QtWidgets.QListWidgetItem(QtGui.QIcon(tile(image, TILE_PX)), f"{score:.1f}")
            item.setToolTip(f"#{rank + 1}: {key[2]} image {int(row)}, label {label}; {ranked.label}: {score:.2f}")
            item.setData(QtCore.Qt.ItemDataRole.UserRole, rank)
            self.grid.addItem(item)
        finite = ranked.all_scores[np.isfinite(ranked.all_scores)]
        middle = f"; the median image scores {np.median(finite):.1f}" if len(finite) else ""
        self.summary.setText(f"The {len(ranked.rows)} worst of {len(ranked.all_scores):,} {key[2]} images by "
                             f"{ranked.label}{middle}. Click one to inspect it.")

    def _clicked(self, item: QtWidgets.QListWidgetItem) -> None:
        self.inspect(int(item.data(QtCore.Qt.ItemDataRole.UserRole)))

    def inspect(self, rank: int) -> None:
        """What a Shift-click on that image does: an endpoint, the marker and, for a training image, the
        inspected row."""
        from latentlab.gui.state.parts import Endpoint

        if self.result is None:
            return
        s, data = self.session, self.session.model_data.data
        row, z = int(self.result["ranked"].rows[rank]), self.result["means"][rank]
        split = self.result["split"]
        labels = data.y_test if split == "test" else data.y_train
        image = self.result["images"][rank]
        s.path.pick(Endpoint(z=z.astype(np.float32), image=image, label=str(data.label_names[int(labels[row])])))
        if split == "train":
            s.select_point(row)
        s.set_z(z, f"the mean of {split} image {row}")


def _rank(model, x, by: str, n: int, progress=None, should_stop=None) -> dict:
    from latentlab.core.inference.analysis import encode
    from latentlab.core.meaning.outliers import rank_outliers

    ranked = rank_outliers(model, x, by=by, n=n, progress=progress, should_stop=should_stop)
    images = x[np.sort(ranked.rows)]
    back = np.argsort(np.argsort(ranked.rows))   # images in ranked order, read in ascending rows
    images = images[back]
    return {"ranked": ranked, "images": images, "means": encode(model, images)[0]}
