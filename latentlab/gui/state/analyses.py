"""Work on the shown latent points that no single view owns: UMAP and t-SNE maps, per-point
statistics computed when first asked for, rectangle and lasso selections and their export, the
export of every latent mean, the aggregate posterior over the shown plane and prior samples.

Each runs as a background job of the session's runner and lands in the state part it fills.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import work
from .jobs import JobRunner
from .latent_points import LatentPoints
from .model_saver import ModelSaver
from .parts import ModelData, PointSelection
from .point_density import sampled_plane


class LatentAnalyses:
    def __init__(self, jobs: JobRunner, model_data: ModelData, latent: LatentPoints, selection: PointSelection,
                 anchor, model_copy):
        self.jobs, self.model_data, self.latent, self.selection = jobs, model_data, latent, selection
        self._anchor = anchor        # () -> the full z supplying the coordinates a plane does not show
        self.model_copy = model_copy   # () -> the read-only copy of the current weights that workers share
        self.saver = ModelSaver(jobs, model_data, model_copy)
        self._maps = None            # core.inference.maps.EmbeddingCache, made on first use
        self._prior_seed = 0
        self._stat_points: dict[str, object] = {}   # statistic -> the points its running job computes it for
        latent.changed.connect(self.update_aggregate)
        latent.projectionChanged.connect(self.update_aggregate)
        latent.aggregateWanted.connect(lambda: self.update_aggregate(only_if_missing=True))
        latent.changed.connect(self.update_map)
        latent.projectionChanged.connect(self.update_prior_contours)
        model_data.modelChanged.connect(self.update_prior_contours)
        model_data.weightsChanged.connect(self.update_prior_contours)

    # ----- UMAP and t-SNE maps, per-point statistics ---------------------------------------------
    def set_projection_method(self, method: str) -> None:
        """Show a pair of coordinates, the PCA plane, or a UMAP or t-SNE map (computed off the GUI
        thread with progress, kept per weights version)."""
        from latentlab.core.inference.maps import unavailable

        missing = unavailable(method)
        if missing is None and method == "vector" and self.latent.vector_projection is None:
            missing = "Build or load an attribute vector first (the Vector tab); its plane is then shown here."
        if missing is not None:
            self.jobs.report(missing)
            return
        self.latent.set_method(method)
        self.update_map()

    def update_map(self) -> None:
        lp, md = self.latent, self.model_data
        if not lp.nonlinear or lp.shows_map:
            self.jobs.cancel("map")
            return
        if not lp.full:
            return   # live training frames: the map follows the full encode after the run
        from latentlab.core.inference.maps import EmbeddingCache

        if self._maps is None:
            self._maps = EmbeddingCache()
        key = (lp.method, md.version, 0, len(lp.points))
        cached = self._maps.get(key)
        if cached is not None:
            lp.set_embedding(cached)
            return
        name = "UMAP" if lp.method == "umap" else "t-SNE"
        points = lp.points

        def done(embedding) -> None:
            self._maps.put(key, embedding)
            if lp.points is points and lp.set_embedding(embedding):
                self.jobs.status.emit(f"{name} of {len(points):,} latent means.")

        self.jobs.submit_tracked("map", f"{name} of {len(points):,} means", work.embedding, lp.method, points, 0,
                                 on_result=done)

    def request_stat(self, name: str) -> None:
        """Compute a per-point statistic (state.LAZY_STATS) of the shown points, once, with progress."""
        lp, md = self.latent, self.model_data
        if not lp.missing_stat(name) or md.model is None:
            return
        points, key = lp.points, f"stat {name}"
        if key in self.jobs.tracked_keys() and self._stat_points.get(name) is points:
            return   # already on its way for these points: every redraw asks again, none restarts it
        self._stat_points[name] = points
        self.jobs.submit_tracked(key, f"Computing the {name} of {len(points):,} points", work.point_stat,
                                 name, self.model_copy(), md.data.x_train, points, lp.logvars,
                                 on_result=lambda values: lp.set_stat(name, values, points))

    def show_informative_view(self) -> None:
        """A model just opened on a pair of dimensions: show the two that carry the most KL, coloured
        by the known factor of the data (if any) that follows them most closely."""
        from latentlab.core.inference.analysis import top_dims_by_kl

        lp, md = self.latent, self.model_data
        if not lp.full or lp.method != "pair" or md.data is None:
            return
        k = lp.points.shape[1]
        kl, _ = lp.dimension_stats(k, md.history)
        pair = tuple(sorted(int(d) for d in top_dims_by_kl(kl, 2))) if k > 2 else None
        lp.colour_hint = informative_factor(lp.points[:, list(pair or (0, min(1, k - 1)))], lp.color_options(md.data),
                                            md.data.factors_train or {})
        if pair is not None and pair != lp.projection.dims:
            lp.set_projection(pair=pair)
        elif lp.colour_hint:
            lp.projectionChanged.emit()   # the same plane, to be coloured by the hint

    # ----- selections and exports ---------------------------------------------------------------
    def select_region(self, outline, shape: str = "lasso") -> None:
        """Select the shown points inside a rectangle (two opposite corners) or a lasso polygon."""
        from latentlab.core.inference.selection import in_polygon, in_rectangle

        lp = self.latent
        if lp.points is None or lp.projection is None:
            return
        outline = np.asarray(outline, dtype=np.float64)
        if lp.density is not None:   # millions of points: only those in the outline's cells are looked at
            found = lp.density.select_rectangle(outline[0], outline[-1]) if shape == "rectangle" \
                else lp.density.select_polygon(outline)
        else:
            xy = lp.projection.to2d(lp.points)
            found = np.flatnonzero(in_rectangle(xy, outline[0], outline[-1]) if shape == "rectangle" else in_polygon(xy, outline))
        rows = lp.rows_of(found)
        self.selection.set(np.sort(rows), shape)
        self.jobs.status.emit(f"Selected {len(rows):,} points.")

    def selection_table(self):
        """Index, label, the 2-D view coordinates and the latent mean of each selected point, for a
        CSV: (header, rows as a float array) or None when nothing shown is selected."""
        lp, data = self.latent, self.model_data.data
        sel = self.selection.rows
        if not len(sel) or lp.points is None or data is None:
            return None
        shown = lp.shown_of(sel)
        rows = lp.rows_of(shown)
        xy = lp.projection.to2d(lp.points)[shown] if lp.shows_map else lp.projection.to2d(lp.points[shown]).reshape(-1, 2)
        mu = lp.points[shown]
        header = ["index", "label", "view_x", "view_y", *(f"mu_{d}" for d in range(mu.shape[1]))]
        return header, rows, data.y_train[rows], xy, mu

    def export_selection(self, path) -> bool:
        """The selection as CSV: index, label, view coordinates, latent mean per dimension."""
        from latentlab.core.errors import LatentLabError
        from latentlab.core.files.atomic import write_atomic

        table = self.selection_table()
        if table is None:
            self.jobs.report("Select some points first (Alt+drag a rectangle, Alt+Shift+drag a lasso).")
            return False
        header, rows, labels, xy, mu = table
        lines = [",".join(header)]
        for r, y, p, m in zip(rows, labels, xy, mu):
            lines.append(f"{r},{int(y)}," + ",".join(f"{v:.9g}" for v in (*p, *m)))
        try:
            self._refuse_inputs(path)
            write_atomic(Path(path), ("\n".join(lines) + "\n").encode())
        except LatentLabError as exc:   # write_atomic's one sentence (a missing folder, no permission, a full disk)
            self.jobs.report(str(exc))
            return False
        self.jobs.status.emit(f"Wrote {len(rows):,} selected points to {path}.")
        return True

    def export_latent_means(self, path) -> None:
        """Encode the train and test images and write their means and log-variances (CSV or NPZ)."""
        from latentlab.core.errors import LatentLabError

        md = self.model_data
        if md.model is None or md.data is None:
            self.jobs.report("There is no model to encode with yet.")
            return
        try:
            self._refuse_inputs(path)
        except LatentLabError as exc:
            self.jobs.report(str(exc))
            return
        self.jobs.submit_tracked("export means", "Exporting latent means", work.export_latent_means, self.model_copy(),
                                 md.data, str(path), on_result=lambda p: self.jobs.status.emit(f"Wrote {p}."))

    # ----- the declared prior on the latent view -------------------------------------------------
    def update_prior_contours(self) -> None:
        """Contours of a declared prior on the shown pair of coordinates replace the N(0, I) circles;
        on the PCA plane or a map a declared prior draws nothing (its projection is not computed)."""
        md = self.model_data
        if md.model is None and self.latent.prior_contours is None:
            return   # the preview before the model: nothing to draw, and torch is not imported for it
        prior = md.model.latent_prior() if md.model is not None and not getattr(md.model, "deterministic", False) else None
        from latentlab.core.models.priors import StandardNormal

        if prior is None or isinstance(prior, StandardNormal):
            self.jobs.cancel("prior contours")
            if self.latent.prior_contours is not None:
                self.latent.set_prior_contours(None)
            return
        projection = self.latent.projection
        if projection is None or projection.kind != "dims":
            self.latent.set_prior_contours({"lines": [], "masses": [], "note": ""})
            return
        self.jobs.submit("prior contours", work.prior_contours, self.model_copy(), projection.dims,
                         on_result=self.latent.set_prior_contours)

    def _refuse_inputs(self, path, *, model_file: bool = True) -> None:
        """An export never replaces the dataset's file or (with `model_file`) the model's (core.files.atomic)."""
        from latentlab.core.data.specs import spec_file
        from latentlab.core.errors import DatasetError
        from latentlab.core.files.atomic import refuse_input_as_output

        md = self.model_data
        try:
            data_file = spec_file(md.dataset_spec) if md.dataset_spec else None
        except DatasetError:   # arrays handed to latentlab.explore: no file
            data_file = None
        refuse_input_as_output(path, [("the dataset's file", data_file),
                                      ("the model's file", md.source if model_file else None)], flag="")

    def save_model(self, path) -> None:
        """latentlab's own VAE as a checkpoint; a foreign model's fine-tuned state_dict as a weights
        file with its SPEC in the metadata (reopened with --model SPEC --weights FILE), never over
        the user's own files or the dataset's. Saving over the checkpoint the model came from is a save.
        The file is written on a worker (gui.state.model_saver): `saver.wait()` waits for it."""
        from latentlab.core.errors import LatentLabError
        from latentlab.core.files.model_spec import refuse_overwrite

        md = self.model_data
        if md.model is None:
            self.jobs.report("There is no model to save yet.")
            return
        try:
            self._refuse_inputs(path, model_file=False)
            if md.foreign and md.spec:
                refuse_overwrite(path, md.spec, md.source)
        except LatentLabError as exc:
            self.jobs.report(str(exc).replace("--out ", "", 1))
            return
        lp = self.latent   # the shown means of these weights, if complete, for the file's latent preview
        preview = (lp.points, md.data.y_train, md.data.label_names) if lp.full and md.data is not None and not hasattr(md.data, "table") else None
        self.saver.save(path, dataset=md.dataset_spec, history=md.history, preview=preview)

    # ----- the aggregate posterior --------------------------------------------------------------
    def update_aggregate(self, only_if_missing: bool = False) -> None:
        """q(z) over the shown plane follows every full encode and projection while it is shown
        anywhere (the overlay or the summary), whichever tab is in front."""
        if not self.latent.has_plane:
            self.jobs.cancel("aggregate")
            if self.latent.aggregate is not None or self.latent.prior_samples is not None:
                self.latent.prior_samples = None
                self.latent.set_aggregate(None)
            return
        if not self.latent.wants_aggregate:
            self.jobs.cancel("aggregate")
            self.latent.aggregate = None   # out of date from here on: recomputed when shown again
            return
        if only_if_missing and self.latent.aggregate is not None:
            return
        mu2, logvar2, mu, logvar = sampled_plane(self.latent)   # millions of points: a sample of them
        box = max(4.0, float(np.percentile(np.abs(mu2), 99.5)) + 0.5)
        md = self.model_data
        model = self.jobs.model_copy(md.model, md.version) if md.model is not None else None
        dims = getattr(self.latent.projection, "dims", (0, 1))
        self.jobs.submit("aggregate", work.aggregate_summary, mu2, logvar2, mu, logvar, box, model, dims,
                         on_result=self.latent.set_aggregate)

    def sample_prior(self, n: int) -> None:
        """Draw n prior samples in the shown plane, mark those in holes and decode them."""
        plane = sampled_plane(self.latent)
        md = self.model_data
        if plane is None or md.model is None:
            return
        plane = plane[:2]
        self._prior_seed += 1
        self.jobs.submit("prior samples", work.prior_samples, self.model_copy(), *plane, n,
                         self._prior_seed, self.latent.projection, self._anchor(), on_result=self.latent.set_prior_samples)


def informative_factor(plane: np.ndarray, options: list[str], factors: dict, sample: int = 20000) -> str:
    """The ground-truth factor among `options` most correlated with either shown coordinate ("" when
    the data has none, or none is correlated at all); computed on an evenly strided sample."""
    step = max(1, len(plane) // sample)
    best, name = 0.1, ""
    for factor in options:
        if factor not in factors:
            continue
        f = np.asarray(factors[factor], np.float64)[::step]
        for column in plane[::step].T:
            if f.std() > 0 and column.std() > 0:
                r = abs(float(np.corrcoef(f, column)[0, 1]))
                if r > best:
                    best, name = r, factor
    return name
