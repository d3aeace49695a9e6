"""The window's state, in small evented parts. Each part holds plain values and says when they
change; it starts no work and knows no widget. The Session (session.py) owns one of each and holds
the actions that change several at once; views listen to the parts they show. The largest part,
LatentPoints, has a module of its own (latent_points.py)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
from PySide6 import QtCore

# Above this many latent dimensions the scatter starts on the PCA of the means and the traversals
# show the top dimensions by KL: K in the thousands has too many pairs and rows to show them all.
MANY_DIMS = 32


class AnchorMode(str, Enum):
    """Where the coordinates a 2D view (or a traversal row) does not set come from."""
    ORIGIN = "origin"
    MARKER = "marker"
    ENDPOINT_A = "endpoint A"


class PathMode(str, Enum):
    LINEAR = "linear"
    SLERP = "slerp"   # a great circle: keeps the norm, so the path stays where the prior has its mass


class SweepRange(str, Enum):
    """The values a traversal row sweeps one dimension through."""
    SIGMA = "-3σ … 3σ"
    QUANTILES = "prior quantiles"


@dataclass(frozen=True)
class Endpoint:
    """One end of an interpolation: a latent code, and the data image (and its training row) it came
    from if any; such an endpoint follows that image's encoding when the weights change."""
    z: np.ndarray
    image: np.ndarray | None = None
    label: str = ""
    row: int | None = None


class ModelData(QtCore.QObject):
    """The model and the dataset it explores, the model's training history and where it came from."""

    datasetChanged = QtCore.Signal()
    modelChanged = QtCore.Signal()      # a different model (replace_model)
    weightsChanged = QtCore.Signal()    # new weights for the same model, from training
    historyChanged = QtCore.Signal()
    evaluationChanged = QtCore.Signal()
    savedChanged = QtCore.Signal()      # the model's name or whether its weights are saved

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = None           # decodes in the GUI thread; workers get copies from the job runner
        # The test-set evaluation (core.inference.analysis.evaluate's dict) of the current weights; None until
        # the full encode after a load or a run has been followed by one.
        self.evaluation: dict | None = None
        self.data = None            # core.data.Dataset
        self.history: list[dict] = []
        # The checkpoint file the model came from, or a foreign model's weights file, if any.
        self.source: Path | None = None
        self.name = ""              # what the title calls a model that has no file of its own (a sweep's)
        self.unsaved = False        # weights trained in this window and not written to any file yet
        self.version = 0            # bumped on every change of model or weights

    @property
    def dataset_spec(self) -> str:
        return self.data.spec if self.data is not None else ""

    @property
    def foreign(self) -> bool:
        """The model is not one of latentlab's own VAEs (a user's nn.Module, a diffusers autoencoder):
        its shape is its own, so only what the LatentModel protocol offers applies to it."""
        return self.model is not None and getattr(self.model, "cfg", None) is None

    @property
    def spec(self) -> str:
        """The model SPEC a foreign model was opened from ('' when it was handed over as an object)."""
        return str(getattr(self.model, "spec", "") or "")

    @property
    def title(self) -> str:
        own = self.name or (self.source.name if self.source is not None else "")
        if self.foreign:
            return self.model.describe() + (f" + {own}" if own else "")
        return own or "new model"

    def replace(self, model, data, history: list, source: Path | None, name: str = "") -> None:
        dataset_changed = data is not self.data
        self.model, self.data, self.history, self.source = model, data, list(history), source
        self.name, self.unsaved = name, False
        self.version += 1
        self.set_evaluation(None)
        if dataset_changed:
            self.datasetChanged.emit()
        self.modelChanged.emit()
        self.historyChanged.emit()

    def load_weights(self, weights: dict) -> None:
        """Copy numpy weights from a training snapshot into the shown model."""
        import torch

        self.model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})
        self.version += 1
        self.set_saved(False)
        if self.evaluation is not None:
            self.set_evaluation(None)
        self.weightsChanged.emit()

    def set_saved(self, saved: bool, source: Path | None = None) -> None:
        """The weights were just written to `source` (saved), or changed since (not saved)."""
        if source is not None:
            self.source, self.name = source, ""
        if self.unsaved == saved or source is not None:
            self.unsaved = not saved
            self.savedChanged.emit()

    def set_evaluation(self, evaluation: dict | None) -> None:
        self.evaluation = evaluation
        self.evaluationChanged.emit()


class Cursor(QtCore.QObject):
    """The decoded point (z and its image), the anchor mode, and the data point under inspection."""

    changed = QtCore.Signal()            # z and its image
    anchorChanged = QtCore.Signal()
    selectionChanged = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.z: np.ndarray | None = None
        self.image: np.ndarray | None = None
        self.note = ""                       # how z was found, when a view cannot invert exactly
        self.waiting = ""                    # "Loading model…" before the first model is ready
        self.anchor_mode = AnchorMode.ORIGIN
        self.selected: int | None = None     # row of data.x_train under inspection
        self.prior = None                    # the model's p(z) (core.models.priors); None: no log p(z) to show

    def set(self, z: np.ndarray, image: np.ndarray, note: str = "") -> None:
        self.z, self.image, self.note, self.waiting = z, image, note, ""
        self.changed.emit()

    def set_waiting(self, text: str) -> None:
        """What the decoded view says while there is no model to decode with yet."""
        self.waiting = text
        self.changed.emit()

    def set_anchor_mode(self, mode) -> None:
        self.anchor_mode = AnchorMode(mode)
        self.anchorChanged.emit()

    def select(self, row: int | None) -> None:
        self.selected = row
        self.selectionChanged.emit()


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


class InterpolationPath(QtCore.QObject):
    """Endpoints A and B and how the path runs between them."""

    changed = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.endpoints: dict[str, Endpoint] = {}
        self.mode = PathMode.LINEAR
        self.steps = 10

    def set_endpoint(self, which: str, endpoint: Endpoint) -> None:
        self.endpoints[which] = endpoint
        self.changed.emit()

    def next_pick(self) -> str:
        """Picking from data fills A, then B, then starts again at A."""
        return "B" if "A" in self.endpoints and "B" not in self.endpoints else "A"

    def pick(self, endpoint: Endpoint) -> None:
        which = self.next_pick()
        if which == "A":
            self.endpoints.pop("B", None)
        self.set_endpoint(which, endpoint)

    def clear(self) -> None:
        self.endpoints = {}
        self.changed.emit()

    def follow(self, model, data) -> None:
        """Endpoints picked from data images move to those images' encodings under `model` (one small
        encode); endpoints set as free latent codes stay where they are."""
        rows = {k: e.row for k, e in self.endpoints.items() if e.row is not None}
        if not rows or model is None or data is None:
            return
        from dataclasses import replace

        from latentlab.core.inference.analysis import encode

        means = encode(model, data.x_train[list(rows.values())])[0]
        for (which, _), z in zip(rows.items(), means):
            self.endpoints[which] = replace(self.endpoints[which], z=np.asarray(z, np.float32))
        self.changed.emit()

    def set_settings(self, mode=None, steps: int | None = None) -> None:
        self.mode = PathMode(mode) if mode else self.mode
        self.steps = steps or self.steps
        self.changed.emit()

    def codes(self) -> np.ndarray | None:
        """The path from A to B, (steps, K), or None without both endpoints."""
        a, b = self.endpoints.get("A"), self.endpoints.get("B")
        if a is None or b is None or len(a.z) != len(b.z):
            return None
        from latentlab.core.inference.analysis import interpolate

        return interpolate(a.z, b.z, self.steps, self.mode.value)
