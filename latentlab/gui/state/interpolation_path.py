"""The interpolation path between two latent endpoints: a state part like those in parts.py."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore

from .parts import Endpoint, PathMode


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
