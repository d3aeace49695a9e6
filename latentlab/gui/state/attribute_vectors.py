"""The attribute vector the window works with: the two groups it may come from, the vector itself
(built, or loaded from a file), its plane on the latent view, and the analogies decoded along it.

Every computation (the vector and its trust, its plane, the analogy strip and grid, files) runs as a
background job; this part holds the results and says when they change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore

from .jobs import JobRunner
from .latent_points import LatentPoints
from .parts import Cursor, ModelData, PointSelection

GRID_ROWS = 8        # selected images in an analogy grid (a seeded sample of a bigger selection)
SOURCES = ("two selections", "two labels", "a factor")


class AttributeVectors(QtCore.QObject):
    changed = QtCore.Signal()          # the groups or the vector
    stripChanged = QtCore.Signal()     # the analogy strip of the inspected image
    gridChanged = QtCore.Signal()      # the analogy grid of the selection

    def __init__(self, jobs: JobRunner, model_data: ModelData, latent: LatentPoints, cursor: Cursor,
                 selection: PointSelection, parent=None):
        super().__init__(parent)
        self.jobs, self.model_data, self.latent, self.cursor, self.selection = jobs, model_data, latent, cursor, selection
        self.groups: dict[str, np.ndarray] = {}   # "A"/"B" -> training rows, taken from selections
        self.vector = None          # core.inference.attributes.AttributeVector
        self.origin = ""            # where the vector came from, for the panel ("built", a file name)
        self.alphas = np.linspace(-2.0, 2.0, 9)
        self.strip: np.ndarray | None = None       # (n_alpha, C, H, W): the inspected image's analogy
        self.strip_codes: np.ndarray | None = None  # (n_alpha, K)
        self.strip_of = ""                         # what the strip starts from ("image 12", "the marker")
        self.grid: np.ndarray | None = None        # (rows, n_alpha, C, H, W): the selection's analogies
        self.grid_rows: np.ndarray | None = None
        model_data.modelChanged.connect(self._on_model)
        model_data.datasetChanged.connect(self._drop_groups)
        latent.changed.connect(self._on_points)
        cursor.selectionChanged.connect(self.update_strip)

    # ----- groups and building ------------------------------------------------------------------
    def take_selection(self, which: str) -> int:
        """Make the current selection group `which` ("A" or "B"); returns its size."""
        self.groups[which] = self.selection.rows.copy()
        self.changed.emit()
        return len(self.groups[which])

    def _drop_groups(self) -> None:
        self.groups = {}
        self.changed.emit()

    def build_from_groups(self) -> None:
        a, b = self.groups.get("A"), self.groups.get("B")
        if a is None or b is None or not len(a) or not len(b):
            self.jobs.report("Take two selections first: select points, then A ← selection; select others, then B ← selection.")
            return
        names = (f"selection A ({len(a):,})", f"selection B ({len(b):,})")
        self._build("groups", names, ("rows", a, self.latent.rows), ("rows", b, self.latent.rows))

    def build_from_labels(self, a: int, b: int) -> None:
        data = self.model_data.data
        if data is None or a == b:
            self.jobs.report("Choose two different labels.")
            return
        labels = self.latent.labels(data)
        if labels is None:
            return
        names = (str(data.label_names[a]), str(data.label_names[b]))
        self._build("labels", names, ("label", labels, a), ("label", labels, b))

    def build_from_factor(self, name: str) -> None:
        values = self.latent.values(name, self.model_data.data)
        if values is None or self.latent.points is None:
            self.jobs.report(f"The dataset has no factor {name}.")
            return
        self._build("factor", name, self.latent.points, values)

    def _build(self, kind, names, first, second) -> None:
        if self.latent.points is None:
            self.jobs.report("There are no encoded points to build a vector from yet.")
            return
        points, version = self.latent.points, self.model_data.version
        self.jobs.submit_tracked("vector", "Building the attribute vector", _build_vector, kind, names, first, second,
                                 points, on_result=lambda r: self._set(*r, origin="built", version=version))

    # ----- files --------------------------------------------------------------------------------
    def load(self, path) -> None:
        """A vector file (.npz) for the current model: its latent size must match."""
        if self.latent.points is None:
            self.jobs.report("Open a model and its data before loading a vector.")
            return
        version = self.model_data.version
        self.jobs.submit("vector file", _load_vector, str(path), self.latent.points,
                         on_result=lambda r: self._set(*r, origin=Path(path).name, version=version))

    def save(self, path) -> None:
        if self.vector is None:
            self.jobs.report("There is no attribute vector to save yet.")
            return
        md = self.model_data
        model = md.spec or (str(md.source) if md.source is not None else "")
        self.jobs.submit("vector file", _save_vector, str(path), self.vector, model, md.dataset_spec,
                         on_result=lambda p: self.jobs.status.emit(f"Saved the vector to {p}."))

    def _set(self, vector, projection, origin: str, version: int) -> None:
        if version != self.model_data.version:
            return   # built for weights that have been replaced meanwhile
        self.vector, self.origin = vector, origin
        self.latent.set_vector_projection(projection)
        self.changed.emit()
        self.jobs.status.emit(f"Attribute vector {vector.title}: held-out AUC {vector.auc:.3f}, "
                              f"bootstrap cosine {vector.cosine:.3f}.")
        self.update_strip()
        self.grid = self.grid_rows = None
        self.gridChanged.emit()

    def show_plane(self) -> None:
        if self.vector is None:
            self.jobs.report("Build or load an attribute vector first.")
            return
        self.latent.set_method("vector")

    def _on_model(self) -> None:
        """A vector is a direction in one model's latent space: another model drops it, and the view
        falls back to the PCA plane (or a pair, for K ≤ 2)."""
        from latentlab.core.meaning.attributes import VectorProjection

        self.vector, self.strip, self.grid = None, None, None
        lp = self.latent
        lp.vector_projection = None
        if lp.method == "vector":
            lp.method = "pca" if self.model_data.model.latent_dim > 2 else "pair"
            if isinstance(lp.projection, VectorProjection):
                lp.projection = None   # the next points get a plane of their own
            lp.set_projection()
        self.changed.emit()
        self.stripChanged.emit()
        self.gridChanged.emit()

    def _on_points(self) -> None:
        """New weights move the means: the plane's second axis follows them (the vector stays)."""
        lp = self.latent
        if self.vector is None or not lp.full or lp.points.shape[1] != self.vector.latent_dim:
            return
        from latentlab.core.meaning.attributes import vector_projection

        points = lp.points
        self.jobs.submit("vector plane", vector_projection, self.vector, points,
                         on_result=lambda p: lp.points is points and lp.set_vector_projection(p))

    # ----- analogies ----------------------------------------------------------------------------
    def set_alphas(self, lo: float, hi: float, n: int) -> None:
        from latentlab.core.meaning.attributes import alpha_values

        self.alphas = alpha_values(lo, hi, n)
        self.update_strip()
        if self.grid is not None:
            self.update_grid()

    def update_strip(self) -> None:
        """decode(z + α·v) for the inspected image's mean (or the marker's z when none is inspected)."""
        md, v = self.model_data, self.vector
        if v is None or md.model is None or v.latent_dim != md.model.latent_dim:
            self.strip = self.strip_codes = None
            self.stripChanged.emit()
            return
        row = self.cursor.selected
        x = md.data.x_train[row:row + 1] if row is not None and md.data is not None else None
        z = self.cursor.z if self.cursor.z is not None else np.zeros(v.latent_dim, np.float32)
        self.strip_of = f"training image {row}" if x is not None else "the marker"
        copy = self.jobs.model_copy(md.model, md.version)
        self.jobs.submit("analogy strip", _analogy, copy, v, x, z, self.alphas,
                         on_result=self._on_strip)

    def _on_strip(self, result) -> None:
        self.strip_codes, self.strip = result
        self.stripChanged.emit()

    def update_grid(self) -> None:
        """The analogies of (a sample of) the selected images: one row each, one column per α."""
        md, v, rows = self.model_data, self.vector, self.selection.rows
        if v is None or md.model is None or md.data is None:
            self.jobs.report("Build or load an attribute vector first.")
            return
        if not len(rows):
            self.jobs.report("Select some points first (Alt+drag a rectangle, Alt+Shift+drag a lasso).")
            return
        if len(rows) > GRID_ROWS:
            rows = np.sort(np.random.default_rng(0).choice(rows, GRID_ROWS, replace=False))
        copy = self.jobs.model_copy(md.model, md.version)
        self.jobs.submit("analogy grid", _grid, copy, v, md.data.x_train[rows], self.alphas,
                         on_result=lambda images: self._on_grid(rows, images))

    def _on_grid(self, rows, images) -> None:
        self.grid_rows, self.grid = rows, images
        self.gridChanged.emit()

    def export_grid(self, path) -> None:
        """The selection's analogy grid (image rows × α columns) as a PNG, with what it shows in its
        metadata; written on a worker."""
        if self.grid is None or self.vector is None:
            self.jobs.report("Make the selection's grid first (Grid of selection).")
            return
        meta = {"vector": self.vector.title, "alphas": ",".join(f"{a:g}" for a in self.alphas),
                "rows": ",".join(str(int(r)) for r in self.grid_rows), "dataset": self.model_data.dataset_spec}
        self.jobs.submit("export grid", _write_grid, str(path), self.grid, meta,
                         on_result=lambda p: self.jobs.status.emit(f"Wrote {p}."))


# ----- worker functions ---------------------------------------------------------------------------
def _group(points, how) -> np.ndarray:
    """The means of one group: ("label", labels, k) or ("rows", training rows, the shown points' rows)."""
    if how[0] == "label":
        return points[how[1] == how[2]]
    rows, shown_rows = how[1], how[2]
    return points[rows[rows < len(points)]] if shown_rows is None else points[np.isin(shown_rows, rows)]


def _build_vector(kind, names, first, second, points, progress=None, should_stop=None):
    from latentlab.core.meaning.attributes import vector_between, vector_for_factor, vector_projection

    if kind == "factor":
        vector = vector_for_factor(first, second, names, progress=progress, should_stop=should_stop)
    else:
        if kind == "groups":   # a point in both groups says nothing about their difference
            both = np.intersect1d(first[1], second[1])
            first, second = (("rows", np.setdiff1d(g[1], both), g[2]) for g in (first, second))
        vector = vector_between(_group(points, first), _group(points, second), names=names, kind=kind,
                                progress=progress, should_stop=should_stop)
    return vector, vector_projection(vector, points)


def _save_vector(path, vector, model, dataset):
    from latentlab.core.meaning.vectors import save_vector

    return save_vector(path, vector, model=model, dataset=dataset)


def _load_vector(path, points):
    from latentlab.core.errors import LatentLabError
    from latentlab.core.meaning.attributes import vector_projection
    from latentlab.core.meaning.vectors import load_vector

    vector, _ = load_vector(path)
    if vector.latent_dim != points.shape[1]:
        raise LatentLabError(f"The vector has {vector.latent_dim} dimensions but this model's latent space has "
                             f"{points.shape[1]}.")
    return vector, vector_projection(vector, points)


def _analogy(model, vector, x, z, alphas):
    from latentlab.core.inference.analysis import decode, encode

    if x is not None:
        z = encode(model, x)[0][0]
    codes = vector.codes(z, alphas)
    return codes, decode(model, codes)


def _grid(model, vector, x, alphas):
    from latentlab.core.inference.analysis import decode, encode

    codes = vector.grid_codes(encode(model, x)[0], alphas)
    images = decode(model, codes.reshape(-1, codes.shape[-1]))
    return images.reshape(codes.shape[:2] + images.shape[1:])


def _write_grid(path, grid, meta):
    from latentlab.core.files.export import grid_image, save_png

    n_rows, n_cols = grid.shape[:2]
    return save_png(path, grid_image(grid.reshape(n_rows * n_cols, *grid.shape[2:]), nrow=n_cols,
                                     scale=max(1, 48 // grid.shape[-1])), meta)
