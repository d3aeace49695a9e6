"""A second model beside the window's own, on the same dataset: its latent means, a table of both
models' test numbers (and disentanglement scores when the data has factors), and one image decoded
by both. The selection is the session's (state/parts.py), so selecting in either model's
view rings the same images in the other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6 import QtCore

from .jobs import JobRunner
from .latent_points import LatentPoints
from .parts import Cursor, ModelData
from .work import encode_all

COMPARE_IMAGES = 5_000    # test images the table is computed on (the first ones)
IW_SAMPLES = 50
ENTRY_ROWS = (("elbo", "test ELBO"), ("recon", "reconstruction"), ("kl", "KL"), ("active_units", "active units"),
              ("log_px_iw", f"log p(x), IWAE K={IW_SAMPLES}"), ("gap", "gap log p(x) − ELBO"), ("mig", "MIG"),
              ("dci.disentanglement", "DCI disentanglement"), ("dci.completeness", "DCI completeness"),
              ("dci.informativeness", "DCI informativeness"), ("sap", "SAP"), ("beta_vae", "β-VAE score"),
              ("factor_vae", "FactorVAE score"))


@dataclass(frozen=True, eq=False)
class Opened:
    """Model B, opened and checked on the dataset, with the means of the training images and the
    2-D view of both models' means (a pair for K ≤ 2, else the PCA plane)."""
    model: object
    title: str
    means: np.ndarray
    xy_a: np.ndarray
    xy_b: np.ndarray
    axes: tuple               # (x label, y label) of A's view and of B's
    ranges: tuple             # ((lo, hi) of A's view, the same of B's): what each view shows first


class Comparison(QtCore.QObject):
    changed = QtCore.Signal()          # model B came or went, or the points moved
    tableChanged = QtCore.Signal()
    decodedChanged = QtCore.Signal()

    def __init__(self, jobs: JobRunner, model_data: ModelData, latent: LatentPoints, cursor: Cursor, parent=None):
        super().__init__(parent)
        self.jobs, self.model_data, self.latent, self.cursor = jobs, model_data, latent, cursor
        self.opened: Opened | None = None
        self.entries: dict[str, dict] = {}     # "A", "B" -> evaluation (and factor scores)
        self.decoded: tuple | None = None      # (row, original, decoded by A, decoded by B)
        self._points_a = None                  # model A's means the comparison was made with
        model_data.datasetChanged.connect(self.close)
        latent.changed.connect(self._on_points_a)
        cursor.selectionChanged.connect(self.decode_row)

    @property
    def active(self) -> bool:
        return self.opened is not None

    # ----- opening model B ----------------------------------------------------------------------
    def open_spec(self, spec: str, weights=None, likelihood=None) -> None:
        """A checkpoint or a model SPEC (with optional weights and likelihood) as model B."""
        self._open(f"Opening {Path(str(spec)).name} to compare", None, _open_spec, str(spec), weights,
                   likelihood or None)

    def open_point(self, point) -> None:
        """One model of the β sweep as model B."""
        from latentlab.core.training.sweep import point_model

        md = self.model_data
        base = md.model if point.config is None else None
        self._open(f"Opening the β = {point.beta:g} model to compare", None, _open_object, point_model, point, base,
                   f"β = {point.beta:g} of the sweep")

    def _open(self, label, means_b, fn, *args) -> None:
        md = self.model_data
        if md.model is None or md.data is None:
            self.jobs.report("Open a model and its data first; the second model is compared on the same data.")
            return
        a = self.jobs.model_copy(md.model, md.version)
        version = md.version
        shown = self.latent.points if self.latent.full else None   # A's means, when every one is encoded
        self.jobs.submit_tracked("compare", label, _open_and_encode, fn, args, md.data, a, shown, means_b,
                                 on_result=lambda opened: self._on_opened(opened, version, shown))

    def _on_opened(self, opened: Opened, version: int, points_a) -> None:
        if version != self.model_data.version:
            return
        self.opened, self._points_a = opened, points_a
        self.entries = {}
        self.changed.emit()
        self.tableChanged.emit()
        self.jobs.status.emit(f"Comparing with {opened.title}.")
        self.update_table()
        self.decode_row()

    def close(self) -> None:
        """Forget model B (a new dataset is not what it was compared on)."""
        self.jobs.cancel("compare")
        self.jobs.cancel("compare table")
        if self.opened is None:
            return
        self.opened, self.entries, self.decoded = None, {}, None
        self.changed.emit()
        self.tableChanged.emit()
        self.decodedChanged.emit()

    def _on_points_a(self) -> None:
        """Model A has new means (another model on the same data, or trained weights, once every image
        is encoded again): B stays, A's side and the table are made again."""
        lp = self.latent
        if self.opened is None or self.model_data.data is None or not lp.full or lp.points is self._points_a:
            return
        b = self.opened
        self._open(f"Comparing {b.title} again", b.means, _reuse, b)

    # ----- the table and the decoded image ------------------------------------------------------
    def update_table(self) -> None:
        md = self.model_data
        if self.opened is None or md.model is None:
            return
        a = self.jobs.model_copy(md.model, md.version)
        means_a = self.latent.points if self.latent.full else None
        self.jobs.submit_tracked("compare table", "Evaluating both models", _entries, a, self.opened.model, md.data,
                                 means_a, self.opened.means, on_result=self._on_entries)

    def _on_entries(self, entries: dict) -> None:
        if self.opened is not None:
            self.entries = entries
            self.tableChanged.emit()

    def rows(self) -> list[tuple[str, object, object]]:
        """(name, value for A, value for B) of every row either entry has."""
        out = []
        for key, name in ENTRY_ROWS:
            values = [_value(self.entries.get(side, {}), key) for side in ("A", "B")]
            if any(v is not None for v in values):
                out.append((name, *values))
        return out

    def decode_row(self) -> None:
        """The inspected training image (else the first one) as both models reconstruct it."""
        md = self.model_data
        if self.opened is None or md.model is None or md.data is None:
            return
        row = self.cursor.selected if self.cursor.selected is not None else 0
        a = self.jobs.model_copy(md.model, md.version)
        self.jobs.submit("compare decode", _reconstruct, a, self.opened.model, md.data.x_train[row:row + 1],
                         on_result=lambda images: self._on_decoded(row, images))

    def _on_decoded(self, row: int, images) -> None:
        self.decoded = (row, *images)
        self.decodedChanged.emit()


def _value(entry: dict, key: str):
    for part in key.split("."):
        entry = entry.get(part) if isinstance(entry, dict) else None
    return entry


# ----- worker functions ---------------------------------------------------------------------------
def _open_spec(spec, weights, likelihood):
    from latentlab.core.files.model_spec import open_model

    opened = open_model(spec, weights=weights, likelihood=likelihood)
    title = Path(spec).name if spec.lower().endswith(".safetensors") else spec
    return opened.model, title + (f" + {Path(weights).name}" if weights else "")


def _open_object(make, point, base, title):
    return make(point, base), title


def _reuse(opened: Opened):
    return opened.model, opened.title


def _plane(means: np.ndarray):
    """2-D positions of the means (a pair for K ≤ 2, else the PCA plane), the axis labels, and the
    range a view shows first (0.5 to 99.5 percentiles)."""
    from latentlab.core.inference.projection import dims_projection, pca_projection

    k = means.shape[1]
    p = pca_projection(means) if k > 2 else dims_projection(k, 0, 1 if k > 1 else 0)
    xy = p.to2d(means).astype(np.float32)
    lo, hi = (np.percentile(xy, q, axis=0).astype(float) for q in (0.5, 99.5))
    return xy, p.axis_labels, (tuple(lo), tuple(hi))


def _open_and_encode(fn, args, data, model_a, means_a, means_b, progress=None, should_stop=None) -> Opened:
    """Model B opened and checked on the data; A's and B's means (those given are not encoded again)."""
    from latentlab.core.models.adapters import validate

    if progress is not None:
        progress(0.0, "Opening the second model")
    model, title = fn(*args)
    if means_b is None:
        model = validate(model, data.x_train[:8])
        means_b = encode_all(model, data.x_train, progress, should_stop, span=(0.05, 0.5)).means
    if means_a is None:
        means_a = encode_all(model_a, data.x_train, progress, should_stop, span=(0.5, 1.0)).means
    (xy_a, axes_a, range_a), (xy_b, axes_b, range_b) = _plane(means_a), _plane(means_b)
    return Opened(model=model, title=title, means=means_b, xy_a=xy_a, xy_b=xy_b, axes=(axes_a, axes_b),
                  ranges=(range_a, range_b))


def _entries(model_a, model_b, data, means_a, means_b, progress=None, should_stop=None) -> dict:
    """Both models' test numbers as `latentlab eval` gives them (IWAE on K samples, on at most
    COMPARE_IMAGES test images) and, when the data has factors, their disentanglement scores (on the
    training means given; encoded here when None)."""
    from latentlab.core.errors import Cancelled
    from latentlab.core.inference.analysis import evaluate
    from latentlab.core.meaning.disentanglement import disentanglement_scores, model_factor_scores

    x = data.x_test if len(data.x_test) else data.x_train
    out, steps = {}, 4 if data.factors_train else 2
    for i, (side, model, means) in enumerate((("A", model_a, means_a), ("B", model_b, means_b))):
        if should_stop is not None and should_stop():
            raise Cancelled("The comparison was stopped.")
        if progress is not None:
            progress(i / steps, f"Evaluating model {side}")
        entry = evaluate(model, x[:COMPARE_IMAGES], iw_samples=IW_SAMPLES)
        if data.factors_train:
            def inner(f, phase=None, i=i):
                if progress is not None:
                    progress((2 + i + f) / steps, phase)
            scores = (model_factor_scores(model, data, progress=inner, should_stop=should_stop) if means is None else
                      disentanglement_scores(means, data.factors_train, progress=inner, should_stop=should_stop))
            entry.update(scores.as_dict())
        out[side] = entry
    return out


def _reconstruct(model_a, model_b, x):
    from latentlab.core.inference.analysis import decode, encode

    return x[0], decode(model_a, encode(model_a, x)[0])[0], decode(model_b, encode(model_b, x)[0])[0]
