"""The window's state and the actions that change more than one part of it.

A Session owns the state parts (parts.py): `model_data`, `latent`, `cursor`, `path`; the run
controller `runs` (runs.py); and the job runner `jobs` (jobs.py) that does all background work.
Views listen to the parts they show and forward user intent to the methods here. Every model enters
through `replace_model`, which holds the one rule for what survives a change of model.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
from PySide6 import QtCore

from . import work
from .analyses import LatentAnalyses
from .attribute_vectors import AttributeVectors
from .comparison import Comparison
from .jobs import JobRunner
from .latent_points import LatentPoints
from .parts import MANY_DIMS, AnchorMode, Cursor, Endpoint, InterpolationPath, ModelData, PointSelection
from .point_density import PointDensity
from .runs import RunController, TrainRequest
from .table_source import attach_dataset, open_table

__all__ = ["Session", "TrainRequest", "Endpoint"]

# A user's model whose one-image decode takes longer than this decodes off the GUI thread.
SLOW_DECODE_MS = 40.0

# How long closing waits for background work. Loads, encodes and runs poll the stop flag and end
# within one chunk or step; only work that cannot be interrupted (reading one large file) is left.
SHUTDOWN_WAIT_MS = 10000


class Session(QtCore.QObject):
    loaded = QtCore.Signal()   # a checkpoint or dataset finished loading and its points are shown
    notice = QtCore.Signal(str)   # one sentence for the banner about a load that went ahead (not an error)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.jobs = JobRunner(self)
        self.model_data = ModelData(self)
        self.latent = LatentPoints(self)
        self.density = PointDensity(self.jobs, self.latent, self)   # before any view listens to latent
        self.cursor = Cursor(self)
        self.path = InterpolationPath(self)
        self.runs = RunController(self, self)
        self.selection = PointSelection(self)
        self._warmed = False
        self._pending_point: tuple[float, float] | None = None   # a click made before the first model was ready
        self._slow_decode = False   # the current model decodes on a worker (see set_z)
        self._slow_decodes = 0
        self.jobs.errorRaised.connect(self._on_error)
        self.analyses = LatentAnalyses(self.jobs, self.model_data, self.latent, self.selection, self.anchor,
                                       self.model_copy)
        self.model_data.datasetChanged.connect(self.selection.clear)
        self.model_data.weightsChanged.connect(lambda: self.path.follow(self.model_data.model, self.model_data.data))
        # Asked before an action drops unsaved work: confirm_discard(action, work) with a phrase such as
        # "open another model" and the work it drops ("model", "sweep" or "all"); False cancels the
        # action. The window asks Save / Discard / Cancel (gui/unsaved.py); without one nothing is asked.
        self.confirm_discard = lambda action, work="model": True
        self.vectors = AttributeVectors(self.jobs, self.model_data, self.latent, self.cursor, self.selection, self)
        self.comparison = Comparison(self.jobs, self.model_data, self.latent, self.cursor, self)

    @property
    def errorRaised(self):
        return self.jobs.errorRaised

    @property
    def status(self):   # the window's one error and status channel is the job runner's
        return self.jobs.status

    @property
    def awaiting_model(self) -> bool:
        """No model yet, but one is loading (the decoded view says so): clicks wait for it."""
        return self.model_data.model is None and bool(self.cursor.waiting)

    def _on_error(self, _message: str) -> None:
        if self.model_data.model is None:   # the first load failed: no model is coming for a waiting click
            self._pending_point = None
            self.cursor.set_waiting("")

    def report_error(self, message: str) -> None:
        self.jobs.report(message)

    # ----- models and data ------------------------------------------------------------------
    def replace_model(self, model, data=None, history=(), source: Path | None = None, *, name: str = "",
                      encoded: work.Encoded | None = None, encode: bool = True, without_data: bool = False) -> None:
        """Make `model` (on `data`, default: the open dataset) the window's model.

        The rule for what survives: the marker's z and the endpoints A/B are latent codes, kept while
        the latent size stays the same (and, for endpoints, the dataset they came from); endpoints
        picked from data images move to those images' encodings under the new model; the inspected
        data row is kept while the dataset stays. Work still running on the old model is dropped.
        The points are `encoded` if given, else encoded again unless `encode` is False. With
        `without_data` the model is shown on no data at all (no points). `name` is the title of a
        model without a file of its own."""
        md = self.model_data
        data = None if without_data else md.data if data is None else data
        old_k = md.model.latent_dim if md.model is not None else None
        same_data = data is md.data
        if self.runs.busy:
            self.runs.abandon()
        self.jobs.cancel("encode")
        self.jobs.cancel("decode")
        self._slow_decode, self._slow_decodes = False, 0
        md.replace(model, data, history, source, name)
        self.cursor.prior = None if getattr(model, "deterministic", False) else model.latent_prior()
        self.latent.no_kl = bool(getattr(model, "deterministic", False))
        k = model.latent_dim
        if old_k != k:
            # Thousands of coordinates make a poor pair of axes: a wide latent opens on the PCA of its means.
            lp = self.latent
            if k > MANY_DIMS and lp.method == "pair":
                lp.method = "pca"
            elif k <= MANY_DIMS and lp.method == "pca":
                lp.method = "pair"
        if not (same_data and old_k == k):
            if self.path.endpoints:
                self.status.emit("Interpolation endpoints cleared: they were codes of the "
                                 + ("previous dataset." if not same_data else f"previous latent size (K = {old_k})."))
            self.path.clear()
        else:
            self.path.follow(model, data)
        if not same_data:
            self.cursor.select(None)
        self._sync_request()
        if encoded is not None:
            self._show_encoded(encoded)
        elif data is None:
            self.latent.clear()
        z = self.cursor.z if old_k == k and self.cursor.z is not None else np.zeros(k, np.float32)
        self.set_z(z)
        if self._pending_point is not None:
            self.set_view_point(*self._pending_point)
            self._pending_point = None
        if encoded is None and encode:
            self.encode_all()

    def _sync_request(self) -> None:
        """The training form shows the model's own shape, so that warm starts keep it."""
        md = self.model_data
        cfg = getattr(md.model, "cfg", None)
        beta = float(md.history[-1].get("beta", 1.0)) if md.history else self.runs.request.beta
        if cfg is None:  # a foreign model keeps its own shape; fine-tuning always starts from its weights
            self.runs.set_request(latent_dim=md.model.latent_dim, beta=beta, warm_start=True)
            return
        self.runs.set_request(latent_dim=cfg.latent_dim, arch=cfg.arch, hidden=tuple(cfg.hidden),
                              likelihood=cfg.likelihood, beta=beta)

    def show_preview(self, checkpoint: str | Path | None = None, dataset: str | None = None) -> bool:
        """Before any model is open: draw the latent preview the checkpoint (default: the bundled one)
        stores, with numpy alone, while load() imports torch and opens it. Clicks made meanwhile are
        decoded once the model is ready. False (nothing shown) when it has none that applies."""
        from latentlab.core.files.bundled import default_checkpoint
        from latentlab.core.files.preview import read_preview

        if self.model_data.model is not None:
            return False
        preview = read_preview(checkpoint or default_checkpoint())
        if preview is None or (dataset and dataset != preview.dataset):
            return False
        self.latent.set_preview(preview)
        self.cursor.set_waiting("Loading model…")
        return True

    def load(self, checkpoint: str | Path | None = None, dataset: str | None = None) -> None:
        """Load a checkpoint (default: the bundled one) and its dataset off the GUI thread."""
        if not self.confirm_discard("open another model"):
            return
        self.runs.stop()  # the run belongs to the model being replaced
        self.status.emit("Loading…")
        if self.model_data.model is None:
            self.cursor.set_waiting("Loading model…")
        self.jobs.submit_tracked("load", "Opening", work.load_checkpoint_and_data, checkpoint, dataset,
                                 on_result=self._on_loaded)

    def open_model(self, spec: str, weights: str | Path | None = None, likelihood: str | None = None,
                   dataset: str | None = None) -> None:
        """Open a model SPEC (with fine-tuned weights and a likelihood, if given) off the GUI thread,
        check it on a batch of the named dataset (default: the open one) and make it the window's
        model. A model that fails keeps the current one; the banner says why in one sentence."""
        if not self.confirm_discard("open another model"):
            return
        self.status.emit(f"Opening {spec}…")
        self.jobs.submit_tracked("load", "Opening", work.open_model_and_data, str(spec), weights, likelihood, dataset,
                                 None if dataset else self.model_data.data, on_result=self._on_loaded)

    def open_model_object(self, model, data) -> None:
        """A model object already checked on `data` (latentlab.explore) becomes the window's model."""
        self.replace_model(model, data, [], None)
        self._warm_up(model)
        self.status.emit(f"{data.name}: {len(data.x_train):,} training images, {model.describe()}")
        notes = model.notes() if hasattr(model, "notes") else ()
        if notes:
            from latentlab.core.text import short

            self.notice.emit(short(" ".join(f"{n}." for n in notes)))
        self.loaded.emit()

    def open_table(self, path, checkpoint=None, spec: str | None = None, weights=None, likelihood=None, dataset=None) -> None:
        """A latent table's means with the model that encoded them; a dataset gives its rows' images (table_source)."""
        self.jobs.submit_tracked("load", "Opening", open_table, str(path), checkpoint, spec, weights, likelihood, dataset, on_result=self._on_loaded)

    def open_dataset(self, spec: str) -> None:
        self.runs.stop()
        self.status.emit(f"Loading dataset {spec}…")
        md = self.model_data
        if getattr(md.data, "table", None) is not None:   # a table: the dataset only supplies its rows' images
            return self.jobs.submit_tracked("load", "Opening", attach_dataset, md.data, spec, md.model, on_result=self._on_loaded)
        model = self.model_copy() if md.model is not None else None
        self.jobs.submit_tracked("load", "Opening", work.load_data_for, spec, model, on_result=self._on_loaded)

    def _on_loaded(self, result: work.Loaded) -> None:
        md = self.model_data
        history = result.history
        if history is None:   # a dataset opened: the model's history stays with an unchanged model
            same = md.model is not None and getattr(md.model, "cfg", None) == getattr(result.model, "cfg", None)
            history = md.history if same else []
        source = result.source if result.source is not None else md.source
        self.replace_model(result.model, result.data, history, source, encoded=result.encoded,
                           without_data=result.data is None)
        self.analyses.show_informative_view()
        # Everything loaded so far lives as long as the app: keep the collector from rescanning it,
        # which otherwise costs a few hundred milliseconds per full collection in any thread.
        gc.freeze()
        self._warm_up(result.model)
        what = result.model.describe() if self.model_data.foreign else f"K = {result.model.latent_dim}"
        if result.data is None:
            self.status.emit(f"No data open, {what}")
        else:
            rows = "rows" if hasattr(result.data, "table") else "training images"   # a table's rows may have no images
            self.status.emit(f"{result.data.name}: {len(result.data.x_train):,} {rows}, {what}")
        self.loaded.emit()
        if result.notes:   # one banner line: the data shown first, then what the file's metadata lost
            from latentlab.core.text import short

            self.notice.emit(short(" ".join(result.notes)))

    def _warm_up(self, model) -> None:
        """Once, after the first model: what the first training run would otherwise pay, on workers."""
        if not self._warmed and not hasattr(self.model_data.data, "table"):   # a table's model is never trained
            self._warmed = True
            self.jobs.submit("warm-up", work.warm_up_training, getattr(model, "cfg", None), on_result=lambda _: gc.freeze())
            self.runs.measure_device()

    def use_sweep_point(self, point) -> None:
        """Make one model of the sweep the explorer's model."""
        self.runs.explore_point(point)

    def save_checkpoint(self, path: str | Path) -> None:
        """The model to `path`, written on a worker (LatentAnalyses.save_model; analyses.saver.wait())."""
        self.analyses.save_model(path)

    def encode_all(self) -> None:
        """Encode the whole training set off the GUI thread and show it."""
        md = self.model_data
        if md.model is None or md.data is None:
            return
        self.status.emit(f"Encoding {len(md.data.x_train):,} points…")
        self.jobs.submit_tracked("encode", "Encoding", work.encode_all, self.model_copy(),
                                 md.data.x_train, on_result=self._on_encoded)

    def _on_encoded(self, encoded: work.Encoded) -> None:
        if self.runs.busy:  # a run has taken over the points
            return
        self._show_encoded(encoded)
        self.status.emit(f"Encoded {len(encoded.means):,} points.")

    def _show_encoded(self, e: work.Encoded) -> None:
        self.latent.known_pca = (e.means, getattr(self.model_data.data, "pca", None))   # a table's, worked out where it was read
        self.latent.set_points(e.means, None, e.logvars, e.stats, e.dim_stats)
        self.evaluate()

    def evaluate(self) -> None:
        """The test-set evaluation of the current weights, off the GUI thread; a result for weights
        that changed meanwhile is dropped."""
        md = self.model_data
        if md.model is None or md.data is None or not getattr(md.data, "has_images", True):
            return
        version = md.version
        self.jobs.submit("evaluate", work.evaluate_test, self.model_copy(), md.data,
                         on_result=lambda r: md.version == version and md.set_evaluation(r))

    # ----- the decoded point, anchor, selection, endpoints --------------------------------------
    def set_z(self, z, note: str = "") -> None:
        """Decode z (K,) with the current model: on the GUI thread while one decode is cheap (well
        under a millisecond for latentlab's models); a model whose decode took longer than
        SLOW_DECODE_MS decodes on a worker, the newest position winning, so dragging over a large
        autoencoder never freezes the window. `note`: how a map's click became z (the caption)."""
        model = self.model_data.model
        if model is None:
            return
        import time

        from latentlab.core.inference.analysis import decode

        z = np.asarray(z, dtype=np.float32).reshape(model.latent_dim)
        if self._slow_decode:
            self.jobs.submit("decode", work.decode_codes, self.model_copy(), z[None],
                             on_result=lambda images: self.cursor.set(z, images[0], note))
            return
        self.jobs.cancel("decode")  # a slow decode still running must not land after this one
        t = time.perf_counter()
        image = decode(model, z[None])[0]
        slow = self.model_data.foreign and (time.perf_counter() - t) * 1000 > SLOW_DECODE_MS
        self._slow_decodes = self._slow_decodes + 1 if slow else 0
        self._slow_decode = self._slow_decodes >= 2   # twice running: not one hiccup of a busy machine
        self.cursor.set(z, image, note)

    def set_view_point(self, u: float, v: float) -> None:
        """A position in the 2D view, lifted to a full z through the anchor (for a UMAP or t-SNE map,
        through the map's own way back, which the decoded view's caption names)."""
        projection = self.latent.projection
        if self.awaiting_model:
            self._pending_point = (u, v)   # decoded as soon as the model is ready
            self.cursor.set_waiting("Loading model… (your click is decoded when it is ready)")
            return
        if projection is None or self.model_data.model is None:
            return
        if hasattr(projection, "lift_with_note"):
            def lifted(found) -> None:
                if self.latent.projection is projection:
                    projection.place(found[0], (u, v))
                    self.set_z(*found)

            if projection.kind == "umap":   # its inverse transform takes a second or more: on a worker, newest wins
                self.jobs.submit("lift", projection.lift_with_note, (u, v), on_result=lifted)
            else:
                lifted(projection.lift_with_note((u, v)))
        else:
            self.set_z(projection.lift((u, v), self.anchor()))

    def anchor(self, mode: AnchorMode | str | None = None) -> np.ndarray:
        """The full z that supplies the coordinates a 2D view cannot show."""
        mode = AnchorMode(mode or self.cursor.anchor_mode)
        k = self.model_data.model.latent_dim
        z, a = self.cursor.z, self.path.endpoints.get("A")
        if mode is AnchorMode.MARKER and z is not None and len(z) == k:
            return z.copy()
        if mode is AnchorMode.ENDPOINT_A and a is not None and len(a.z) == k:
            return a.z.copy()
        return np.zeros(k, np.float32)

    def pick_endpoint_at(self, u: float, v: float) -> None:
        """Shift-click: the nearest data point becomes endpoint A, then B, then A again."""
        lp, data = self.latent, self.model_data.data
        i = lp.nearest(u, v)
        if i is None:
            return
        label = data.label_names[int(lp.labels(data)[i])]
        self.path.pick(Endpoint(z=lp.points[i].astype(np.float32), image=lp.image(i, data), label=label, row=lp.row(i)))
        self.select_point(lp.row(i))
        self.set_z(lp.points[i])

    def set_endpoint(self, which: str, z=None) -> None:
        """Make a latent position (default: the marker) endpoint `which`."""
        z = self.cursor.z if z is None else z
        if z is not None:
            self.path.set_endpoint(which, Endpoint(z=np.asarray(z, np.float32).copy()))

    def select_point(self, row: int) -> None:
        """Inspect training image `row` (its posterior, its mean in the latent view)."""
        data = self.model_data.data
        if data is not None and 0 <= row < len(data.x_train):
            self.cursor.select(int(row))

    def selected_mean(self) -> np.ndarray | None:
        """The encoder's mean for the selected image, with the current model (one encode, cheap)."""
        row, md = self.cursor.selected, self.model_data
        if row is None or md.model is None or hasattr(md.data, "table"):   # a table's row: the mean it holds
            return None if row is None or md.model is None else self.latent.points[row]
        from latentlab.core.inference.analysis import encode

        return encode(md.model, md.data.x_train[row:row + 1])[0][0]

    def dimension_stats(self) -> tuple[np.ndarray, np.ndarray]:
        md = self.model_data
        return self.latent.dimension_stats(md.model.latent_dim, md.history)

    def model_copy(self):
        """The read-only copy of the current weights that workers share."""
        md = self.model_data
        return self.jobs.model_copy(md.model, md.version)

    def wait_until_idle(self, timeout_ms: int = 60000) -> bool:
        """Let every background job and training run finish and its results arrive (tests, scripts)."""
        return self.jobs.wait_until_idle(timeout_ms)

    def shutdown(self, timeout_ms: int | None = None) -> None:
        """Finish the saves asked for, then stop everything and wait for the pool (no thread outlives the window)."""
        self.analyses.saver.wait()
        self.runs.shutdown()
        self.jobs.shutdown(SHUTDOWN_WAIT_MS if timeout_ms is None else timeout_ms)
