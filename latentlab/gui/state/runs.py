"""Training runs and β sweeps: the current training request, starting and stopping runs, the run
queued behind a stopping one, and publishing training snapshots at a bounded rate.

Snapshots can arrive far faster than a screen refreshes, so they are coalesced: the newest waits in
`_pending` and a throttle publishes it, which bounds the GUI thread's work whatever the training speed.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from dataclasses import dataclass, replace

import numpy as np
from PySide6 import QtCore

from latentlab.core.models.config import DEFAULT_HIDDEN, DEFAULT_LATENT_DIM
from latentlab.core.training.live_budget import FLOOR as LIVE_POINTS  # the budget allows more

from . import work

PUBLISH_MS = 100      # at most 10 view updates a second during training
LIVE_SECONDS = 0.25   # a live frame at least this often, however slow the steps
RUN = "run"           # the job runner's key for the one training run or sweep


def device_name() -> str:
    """The training device the window asks for (resolved by core.training.device.resolve_device)."""
    return os.environ.get("LATENTLAB_DEVICE", "auto")


@dataclass(frozen=True)
class TrainRequest:
    """What the user asked to train: model shape, run length and β."""
    latent_dim: int = DEFAULT_LATENT_DIM
    arch: str = "mlp"
    hidden: tuple = DEFAULT_HIDDEN
    likelihood: str = "bernoulli"
    epochs: int = 30
    lr: float = 1e-3
    beta: float = 1.0
    warm_start: bool = True


class RunController(QtCore.QObject):
    trainingChanged = QtCore.Signal(bool)            # a run or a sweep started or ended
    progress = QtCore.Signal(object)                 # the newest Snapshot while training
    sweepProgress = QtCore.Signal(int, int, object)  # model index, count, Snapshot
    sweepChanged = QtCore.Signal()                   # β-sweep results
    requestChanged = QtCore.Signal()

    def __init__(self, session, parent=None):
        from superqt.utils import qthrottled

        super().__init__(parent)
        self.session = session
        self.request = TrainRequest()
        self.training = False
        self.sweeping = False
        self.sweep_points: list = []     # core.training.sweep.SweepPoint, sorted by β
        self.sweep_dataset = ""          # the spec of the dataset the sweep's models were trained on
        self.sweep_saved = True          # the sweep's models are all in a saved sweep folder
        self.last_snapshot = None
        self._stop = threading.Event()
        self._queued: TrainRequest | None = None
        self._pending = None             # the newest snapshot not yet shown
        self._pending_weights = None     # the newest weights not yet shown (epoch ends only)
        self._live_order = None          # core.training.scatter_order of the run's data
        self._live_rows = None
        self.live_budget = None          # core.training.live_budget.LiveBudget of the run going
        self.live_clock = time.perf_counter   # what the budget times with (tests inject their own)
        self.device_free: dict[str, int | None] = {}   # a GPU's free bytes, measured on a worker (measure_device)
        self._sweep_count = 0
        self._publish = qthrottled(self._publish_pending, timeout=PUBLISH_MS, leading=False, parent=self)

    @property
    def busy(self) -> bool:
        """A training run or a β sweep is going."""
        return self.training or self.sweeping

    def set_request(self, **changes) -> None:
        request = replace(self.request, **changes)
        if request != self.request:
            self.request = request
            self.requestChanged.emit()

    # ----- training ----------------------------------------------------------------------------
    def train(self, request: TrainRequest | None = None) -> None:
        """Start a run; a run still going is cancelled first and this one starts when it has stopped."""
        s = self.session
        request = request or self.request
        if s.model_data.data is None or hasattr(s.model_data.data, "table"):
            s.jobs.report("Load a dataset before training." if s.model_data.data is None else
                          "A latent table's points are fixed: open the model on its dataset to train it.")
            return
        if self.busy:
            self._queued = request
            self._stop.set()  # the queued run starts once this one has wound down
            return
        configs = self._configs(request, epochs=request.epochs, lr=request.lr, beta=request.beta,
                                scatter_points=LIVE_POINTS, snapshot_seconds=LIVE_SECONDS,
                                seed=int(np.random.default_rng().integers(1 << 31)))
        if configs is None:
            return
        from latentlab.core.models.vae import build_model
        from latentlab.core.training.live_budget import LiveBudget
        from latentlab.core.training.loop import scatter_order
        from latentlab.core.training.sharded import train

        cfg, tcfg, device = configs
        md = s.model_data
        # A foreign model is always fine-tuned: a copy of it, from its current weights.
        warm = md.foreign or (request.warm_start and md.model is not None and getattr(md.model, "cfg", None) == cfg)
        if warm:
            model, history = s.jobs.private_copy(md.model), list(md.history)
        else:
            # From scratch: show the fresh weights at once, so decoding matches the moving scatter.
            model, history = build_model(cfg, seed=tcfg.seed), []
            s.replace_model(s.jobs.private_copy(model), md.data, [], None, encode=False)
        self._stop = threading.Event()
        self.training = True
        self.trainingChanged.emit(True)
        s.jobs.status.emit(f"Training on {device.type}…")
        s.jobs.cancel("encode")  # an encode of the weights before this run must not land after it
        gc.freeze()  # the model and data outlive the run: the collector need not rescan them during it
        n = len(md.data.x_train)
        self._live_order, self._live_rows = scatter_order(n), None
        # As many live points as 10% of the training time encodes (all of them on a GPU), never fewer than LIVE_POINTS.
        self.live_budget = LiveBudget(n, on_gpu=device.type == "cuda", clock=self.live_clock)
        s.jobs.run_generator(RUN, train, model, md.data, tcfg, history=history, should_stop=self._stop.is_set,
                             live_budget=self.live_budget,
                             on_yield=self._on_snapshot, on_finished=self._on_train_finished,
                             error_prefix="Training failed: ")

    def _configs(self, request: TrainRequest, **train_fields):
        """Model and training configs for a request on the open dataset (no model config for a foreign
        model, whose shape is its own); None (and a message) if invalid."""
        from latentlab.core.errors import LatentLabError
        from latentlab.core.models.config import ModelConfig, TrainConfig
        from latentlab.core.training.budget import check_training_fits
        from latentlab.core.training.device import cpu_threads, resolve_device

        md = self.session.model_data
        data = md.data
        if md.foreign and not md.model.trainable:
            self.session.jobs.report(f"{md.model.describe()} has no trainable parameters, so there is nothing to fine-tune.")
            return None
        try:
            cfg = None if md.foreign else ModelConfig(
                image_shape=data.image_shape, latent_dim=request.latent_dim, arch=request.arch,
                hidden=tuple(request.hidden), likelihood=request.likelihood)
            device = resolve_device(device_name())
            # The free cores less one for the GUI thread (LATENTLAB_THREADS sets it): more only wait on each other.
            tcfg = TrainConfig(device=device.type, threads=cpu_threads(leave=1), **train_fields)
            # Before any model or batch is built: a size that cannot fit is one sentence, not a stall.
            # (A user's model exists already; its copy is the only new allocation besides the batch.)
            if cfg is not None:
                # A GPU's free memory comes from the last measure_device (none yet: not refused here).
                free = (lambda d: self.device_free.get(str(d))) if device.type == "cuda" else None
                check_training_fits(cfg, len(data.x_train) + len(data.x_test), tcfg.batch_size, device,
                                    advice="Choose a smaller latent size or hidden widths.", pixel_bytes=data.pixel_bytes,
                                    free_bytes=free)
        except (ValueError, LatentLabError) as exc:
            self.session.jobs.report(str(exc))
            return None
        return cfg, tcfg, device

    def measure_device(self) -> None:
        """Measure the training GPU's free memory on a worker, for Train's check: on CUDA the first query
        creates the device's context (seconds), which the GUI thread must never wait for."""
        self.session.jobs.submit("device memory", work.device_free, device_name(), on_result=self.device_free.update)

    def stop(self) -> None:
        """The user's Stop: end the running job and forget any run queued behind it."""
        self._queued = None
        self._stop.set()

    def abandon(self) -> None:
        """The model is being replaced: the run still going trains one nobody shows any more."""
        self.stop()
        self.session.jobs.cancel(RUN)

    def _on_snapshot(self, snap) -> None:
        if snap.record is not None:
            self.session.model_data.history.append(snap.record)
        if snap.weights is not None:
            self._pending_weights = snap.weights
        self._pending = snap
        if snap.done:
            self._publish.cancel()
            self._publish_pending()
        else:
            self._publish()

    def _publish_pending(self) -> None:
        snap, self._pending = self._pending, None
        if snap is None:
            return
        s, md = self.session, self.session.model_data
        weights, self._pending_weights = self._pending_weights, None
        if weights is not None and md.model is not None:
            md.load_weights(weights)
            if s.cursor.z is not None:
                s.set_z(s.cursor.z)
        if snap.record is not None or snap.done:
            md.historyChanged.emit()
        if snap.latent is not None:
            s.latent.set_points(snap.latent, self._rows_for(len(snap.latent)))
        self.last_snapshot = snap
        self.progress.emit(snap)
        if snap.error:
            s.jobs.report(snap.error)

    def _rows_for(self, m: int) -> np.ndarray:
        """The training rows of a live frame of m points (see core.training.scatter_subset)."""
        from latentlab.core.training.loop import scatter_subset

        if self._live_rows is None or len(self._live_rows) != m:
            self._live_rows = scatter_subset(len(self._live_order), m, self._live_order)
        return self._live_rows

    def _on_train_finished(self, current: bool = True) -> None:
        if current:
            self._publish_pending()
            snap = self.last_snapshot
            if snap is not None and snap.done and not snap.error:
                ended = "stopped" if snap.cancelled else "finished"
                self.session.jobs.status.emit(f"Training {ended} after {snap.step:,} steps.")
            elif snap is not None and snap.diverged:   # the banner has the why; the weights shown are the last good ones
                self.session.jobs.status.emit("Training diverged; the last good weights are shown.")
        self._publish.cancel()
        self._pending = None
        self.training = False
        self.trainingChanged.emit(False)
        self._after_run(current, encode=True)

    def _after_run(self, current: bool, encode: bool) -> None:
        queued, self._queued = self._queued, None
        if self.session.jobs.closed or not current:
            return
        self.measure_device()   # what the run used is free again, and other processes may have come or gone
        if queued is not None:
            self.train(queued)
        elif encode:
            self.session.encode_all()

    # ----- β sweep ----------------------------------------------------------------------------
    @property
    def sweep_unsaved(self) -> bool:
        return bool(self.sweep_points) and not self.sweep_saved

    def start_sweep(self, betas: list[float], epochs: int) -> None:
        """Train one fresh model per β, with the shape and learning rate of the current request."""
        s = self.session
        if s.model_data.data is None or self.busy or hasattr(s.model_data.data, "table"):
            s.jobs.report("A β sweep trains on a dataset: open one (not a latent table) first." if not self.busy and
                          s.model_data.data is not None else "Stop the current run before starting a β sweep.")
            return
        if not s.confirm_discard("start a new sweep", "sweep"):
            return
        from latentlab.core.training.sweep import run_sweep

        configs = self._configs(self.request, epochs=epochs, lr=self.request.lr, scatter_points=0,
                                snapshot_every=10 ** 9)
        if configs is None:
            return
        cfg, tcfg, _ = configs
        if cfg is None:  # one fine-tuned copy of the foreign model per β
            cfg = s.jobs.private_copy(s.model_data.model)
        self.set_sweep([], dataset=s.model_data.dataset_spec)
        self._stop = threading.Event()
        self.sweeping = True
        self._sweep_count = len(betas)
        self.trainingChanged.emit(True)
        s.jobs.run_generator(RUN, run_sweep, s.model_data.data, cfg, list(betas), tcfg, self._stop.is_set,
                             on_yield=self._on_sweep_event, on_finished=self._on_sweep_finished,
                             error_prefix="β sweep failed: ")

    def _on_sweep_event(self, event) -> None:
        from latentlab.core.training.sweep import SweepPoint

        i, item = event
        if isinstance(item, SweepPoint):
            self.set_sweep(sorted([*self.sweep_points, item], key=lambda p: p.beta), saved=False)
            return
        self.sweepProgress.emit(i, self._sweep_count, item)
        if item.error:
            self.session.jobs.report(f"β sweep stopped: {item.error}")

    def _on_sweep_finished(self, current: bool = True) -> None:
        self.sweeping = False
        self.trainingChanged.emit(False)
        self.session.jobs.status.emit(f"β sweep: {len(self.sweep_points)} models.")
        self._after_run(current, encode=False)

    def explore_point(self, point) -> None:
        """Make one model of the sweep (core.training.sweep.SweepPoint) the explorer's model."""
        from latentlab.core.text import beta_text
        from latentlab.core.training.sweep import point_model

        s, md = self.session, self.session.model_data
        if self.busy:
            s.jobs.report("Stop the running job before loading a model from the sweep.")
            return
        if self.sweep_dataset and self.sweep_dataset != md.dataset_spec:
            s.jobs.report(f"This sweep was trained on {self.sweep_dataset}; open that dataset to explore its models.")
            return
        if not s.confirm_discard("load a model of the sweep"):
            return
        # A foreign model's sweep holds fine-tuned copies of it: the point's weights go into a copy.
        model = point_model(point, md.model if point.config is None else None)
        saved = point.path is not None and point.config is not None
        s.replace_model(model, None, point.history, md.source if point.config is None else point.path,
                        name="" if saved else f"β = {beta_text(point.beta)} of the sweep")
        s.jobs.status.emit(f"Loaded the β = {beta_text(point.beta)} model of the sweep.")

    def save_sweep(self, folder) -> None:
        """Every model of the sweep into `folder` (beta_*.safetensors), remembered as saved there;
        raises LatentLabError with one sentence when it cannot."""
        from dataclasses import replace as with_path

        from latentlab.core.training.sweep import save_sweep

        md = self.session.model_data
        base = md.model if md.foreign else None   # a foreign model's sweep holds fine-tuned copies of it
        paths = save_sweep(folder, self.sweep_points, self.sweep_dataset or md.dataset_spec, base=base)
        self.set_sweep([with_path(p, path=f) for p, f in zip(self.sweep_points, paths)], saved=True)

    def set_sweep(self, points: list, *, dataset: str | None = None, saved: bool = True) -> None:
        """The sweep's models (`saved`: all of them are in a sweep folder), trained on `dataset`."""
        self.sweep_points = list(points)
        self.sweep_saved = saved
        if dataset is not None:
            self.sweep_dataset = dataset
        self.sweepChanged.emit()

    def shutdown(self) -> None:
        self._queued = None
        self._stop.set()
        self._publish.cancel()
