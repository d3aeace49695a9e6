"""The one state object of the window, and the actions that change it.

Views read the session and listen to its signals; they forward user intent by calling its
methods. Long work (loading, training, encoding) runs in superqt workers on the thread pool and
comes back as plain numpy data through queued signals. Training snapshots can arrive far faster
than a screen refreshes, so they are coalesced: the newest waits in `_pending` and a short timer
publishes it, which bounds the GUI thread's work whatever the training speed.
"""

from __future__ import annotations

import copy
import gc
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6 import QtCore

PUBLISH_MS = 100      # at most 10 view updates a second during training
LIVE_POINTS = 2000    # training points re-encoded for each live scatter frame
LIVE_SECONDS = 0.25   # a live frame at least this often, however slow the steps


@dataclass(frozen=True)
class Endpoint:
    """One end of an interpolation: a latent code, and the data image it came from if any."""
    z: np.ndarray
    image: np.ndarray | None = None
    label: str = ""


@dataclass(frozen=True)
class TrainRequest:
    """What the user asked to train: model shape, run length and β."""
    latent_dim: int = 2
    arch: str = "mlp"
    hidden: tuple = (512, 256)
    likelihood: str = "bernoulli"
    epochs: int = 20
    lr: float = 1e-3
    beta: float = 1.0
    warm_start: bool = True


class Session(QtCore.QObject):
    datasetChanged = QtCore.Signal()
    modelChanged = QtCore.Signal()          # a different model (shape or identity)
    weightsChanged = QtCore.Signal()        # new weights for the same model, from training
    pointsChanged = QtCore.Signal()         # the latent points shown in the scatter
    projectionChanged = QtCore.Signal()
    historyChanged = QtCore.Signal()
    pointChanged = QtCore.Signal()          # the decoded point z and its image
    trainingChanged = QtCore.Signal(bool)
    progress = QtCore.Signal(object)        # the newest Snapshot while training
    status = QtCore.Signal(str)
    errorRaised = QtCore.Signal(str)
    loaded = QtCore.Signal()                # a checkpoint + dataset finished loading and encoding
    pathChanged = QtCore.Signal()           # interpolation endpoints A / B, or how the path runs between them
    anchorChanged = QtCore.Signal()
    selectionChanged = QtCore.Signal()      # the data point the posterior inspector looks at
    sweepChanged = QtCore.Signal()          # β-sweep results
    aggregateChanged = QtCore.Signal()      # aggregate-posterior overlay or prior samples
    sweepProgress = QtCore.Signal(int, int, object)  # model index, count, Snapshot

    def __init__(self, parent=None):
        super().__init__(parent)
        self.data = None                    # core.data.Dataset
        self.model = None                   # core.model.VAE on the CPU, for decoding in this thread
        self.dataset_spec = ""
        self.history: list[dict] = []
        self.checkpoint_path: Path | None = None
        self.points: np.ndarray | None = None      # (n, K) posterior means shown
        self.point_index: np.ndarray | None = None  # their rows in data.x_train
        self.logvars: np.ndarray | None = None     # (n, K) matching log-variances, after a full encode
        self.point_stats: dict[str, np.ndarray] = {}  # per-point values to colour by, after a full encode
        self.dim_stats: tuple | None = None         # (KL per dimension, active mask) of that encode
        self.projection = None                     # core.projection.Projection
        self.use_pca = False
        self.anchor_mode = "origin"                # where a 2D click takes the unseen coordinates from
        self.endpoints: dict[str, Endpoint] = {}   # "A", "B"
        self.selected: int | None = None           # row of data.x_train under inspection
        self.sweep_points: list = []               # core.sweep.SweepPoint, sorted by β
        self.sweeping = False
        self.aggregate: dict | None = None         # q(z) density grid and holes over the shown 2D view
        self.prior_samples: dict | None = None     # prior draws, which fall in holes, their decodes
        self.path_mode = "linear"                  # or "slerp"
        self.path_steps = 10
        self.z: np.ndarray | None = None
        self.image: np.ndarray | None = None
        self.training = False
        self.last_snapshot = None
        self._worker = None
        self._stop = threading.Event()
        self._queued: TrainRequest | None = None
        self._pending = None           # the newest snapshot not yet shown
        self._pending_weights = None   # the newest weights not yet shown (epoch ends only)
        self._generation = 0    # bumped whenever the model is replaced: older runs' output is ignored
        self._encode_seq = 0    # only the newest full encode may set the points
        self._closed = False
        self._warmed = False
        self._publish = QtCore.QTimer(self, singleShot=True, interval=PUBLISH_MS)
        self._publish.timeout.connect(self._publish_pending)

    # ----- loading ---------------------------------------------------------------------------
    def load(self, checkpoint: str | Path | None = None, dataset: str | None = None) -> None:
        """Load a checkpoint (default: the bundled one) and its dataset off the GUI thread."""
        if self.busy:
            self.stop()  # the run belongs to the model being replaced
        self.status.emit("Loading…")
        self.run_job(_load_job, checkpoint, dataset, on_result=self._on_loaded)

    def open_dataset(self, spec: str) -> None:
        if self.busy:
            self.stop()
        self.status.emit(f"Loading dataset {spec}…")
        self.run_job(_dataset_job, spec, self.model, on_result=self._on_loaded)

    def _on_loaded(self, result) -> None:
        ckpt, data, model, (mu, logvar, stats, dims) = result
        self._generation += 1
        self._encode_seq += 1
        if ckpt is not None:
            self.history, self.checkpoint_path = list(ckpt.history), ckpt.path
        elif self.model is None or model.cfg != self.model.cfg:
            self.history = []
        self.data, self.model = data, model
        self.dataset_spec = data.spec
        self.endpoints = {}
        self.selected = None
        self.datasetChanged.emit()
        self.modelChanged.emit()
        self.historyChanged.emit()
        self.pathChanged.emit()
        self._set_points(mu, None, logvar, stats, dims)
        self.set_z(np.zeros(model.latent_dim, np.float32))
        # Everything loaded so far lives as long as the app: keep the collector from rescanning it,
        # which otherwise costs a few hundred milliseconds per full collection in any thread.
        gc.freeze()
        if not self._warmed:
            self._warmed = True
            self.run_job(_warm_up_training, on_result=lambda _: gc.freeze())
        self.status.emit(f"{data.name}: {len(data.x_train):,} training images, K = {model.latent_dim}")
        self.loaded.emit()

    def save_checkpoint(self, path: str | Path) -> None:
        from ..core.checkpoint import save_checkpoint
        from ..core.errors import LatentLabError

        if self.model is None:
            self.errorRaised.emit("There is no model to save yet.")
            return
        try:
            save_checkpoint(path, self.model, dataset=self.dataset_spec, history=self.history)
        except LatentLabError as exc:
            self.errorRaised.emit(str(exc))
            return
        self.checkpoint_path = Path(path)
        self.status.emit(f"Saved {path}")

    @property
    def busy(self) -> bool:
        """A training run or a β sweep is going."""
        return self.training or self.sweeping

    # ----- the decoded point -----------------------------------------------------------------
    def set_z(self, z) -> None:
        """Decode z (K,) with the current model; cheap enough for the GUI thread (one sample)."""
        if self.model is None:
            return
        from ..core.analysis import decode

        self.z = np.asarray(z, dtype=np.float32).reshape(self.model.latent_dim)
        self.image = decode(self.model, self.z[None])[0]
        self.pointChanged.emit()

    def set_view_point(self, u: float, v: float) -> None:
        """A position in the 2D view, lifted to a full z through the anchor."""
        if self.projection is None:
            return
        self.set_z(self.projection.lift((u, v), self.anchor()))

    def anchor(self, mode: str | None = None) -> np.ndarray:
        """The full z that supplies the coordinates a 2D view cannot show."""
        mode = mode or self.anchor_mode
        k = self.model.latent_dim
        if mode == "marker" and self.z is not None and len(self.z) == k:
            return self.z.copy()
        if mode == "endpoint A" and "A" in self.endpoints and len(self.endpoints["A"].z) == k:
            return self.endpoints["A"].z.copy()
        return np.zeros(k, np.float32)

    def set_anchor_mode(self, mode: str) -> None:
        self.anchor_mode = mode
        self.anchorChanged.emit()

    def nearest_point(self, u: float, v: float) -> int | None:
        if self.points is None or self.projection is None or not len(self.points):
            return None
        pos = self.projection.to2d(self.points)
        return int(np.argmin((pos[:, 0] - u) ** 2 + (pos[:, 1] - v) ** 2))

    def pick_endpoint_at(self, u: float, v: float) -> None:
        """Shift-click: the nearest data point becomes endpoint A, then B, then A again."""
        i = self.nearest_point(u, v)
        if i is None:
            return
        which = "B" if "A" in self.endpoints and "B" not in self.endpoints else "A"
        if which == "A":
            self.endpoints.pop("B", None)
        labels = self.labels_for_points()
        self.endpoints[which] = Endpoint(z=self.points[i].astype(np.float32), image=self.image_of_point(i),
                                         label=self.data.label_names[int(labels[i])])
        self.pathChanged.emit()
        self.select_point(self._row(i))
        self.set_z(self.points[i])

    def _row(self, i: int) -> int:
        return i if self.point_index is None else int(self.point_index[i])

    def select_point(self, row: int) -> None:
        """Inspect training image `row` (its posterior, its mean in the latent view)."""
        if self.data is None or not 0 <= row < len(self.data.x_train):
            return
        self.selected = int(row)
        self.selectionChanged.emit()

    def selected_mean(self) -> np.ndarray | None:
        """The encoder's mean for the selected image, with the current model (one encode, cheap)."""
        if self.selected is None or self.model is None:
            return None
        from ..core.analysis import encode

        return encode(self.model, self.data.x_train[self.selected:self.selected + 1])[0][0]

    def set_endpoint(self, which: str, z=None) -> None:
        """Make a latent position (default: the marker) endpoint `which`."""
        z = self.z if z is None else z
        if z is None:
            return
        self.endpoints[which] = Endpoint(z=np.asarray(z, np.float32).copy())
        self.pathChanged.emit()

    def set_projection(self, dims: tuple[int, int] | None = None, pca: bool | None = None) -> None:
        from ..core.projection import dims_projection, pca_projection

        if self.model is None:
            return
        k = self.model.latent_dim
        if pca is not None:
            self.use_pca = pca
        if self.use_pca and self.points is not None and k > 2:
            self.projection = pca_projection(self.points)
        else:
            i, j = dims if dims is not None else (self.projection.dims if self.projection is not None
                                                  and self.projection.latent_dim == k else (0, 1))
            self.projection = dims_projection(k, i, j if k > 1 else 0)
        self.projectionChanged.emit()

    def labels_for_points(self) -> np.ndarray | None:
        if self.data is None or self.points is None:
            return None
        return self.data.y_train if self.point_index is None else self.data.y_train[self.point_index]

    def path(self) -> np.ndarray | None:
        """The interpolation path from A to B, (steps, K), or None without both endpoints."""
        from ..core.analysis import interpolate

        a, b = self.endpoints.get("A"), self.endpoints.get("B")
        if a is None or b is None or len(a.z) != len(b.z):
            return None
        return interpolate(a.z, b.z, self.path_steps, self.path_mode)

    def set_path_settings(self, mode: str | None = None, steps: int | None = None) -> None:
        self.path_mode = mode or self.path_mode
        self.path_steps = steps or self.path_steps
        self.pathChanged.emit()

    def color_options(self) -> list[str]:
        """What points can be coloured by besides their label."""
        factors = [n for n in (self.data.factors_train or {}) if n != "shape"] if self.data is not None else []
        return factors + list(self.point_stats)

    def values_for_points(self, name: str) -> np.ndarray | None:
        """A continuous per-point value (a ground-truth factor, or a statistic of the full encode)."""
        if self.points is None or self.data is None:
            return None
        if name in self.point_stats:
            return self.point_stats[name]
        factors = self.data.factors_train or {}
        if name not in factors:
            return None
        values = factors[name]
        return values if self.point_index is None else values[self.point_index]

    def image_of_point(self, i: int) -> np.ndarray | None:
        if self.data is None:
            return None
        row = i if self.point_index is None else int(self.point_index[i])
        return self.data.x_train[row]

    def _set_points(self, mu: np.ndarray, index: np.ndarray | None, logvar: np.ndarray | None = None,
                    stats: dict | None = None, dims: tuple | None = None) -> None:
        k_changed = self.projection is None or self.projection.latent_dim != mu.shape[1]
        self.points, self.point_index, self.logvars = mu, index, logvar
        self.point_stats = stats or {}
        self.dim_stats = dims
        if k_changed or (self.use_pca and index is None):
            self.set_projection()
        self.pointsChanged.emit()

    # ----- training ----------------------------------------------------------------------------
    def train(self, request: TrainRequest) -> None:
        """Start a run; a run still going is cancelled first and this one starts when it has stopped."""
        if self.data is None:
            self.errorRaised.emit("Load a dataset before training.")
            return
        if self.training or self.sweeping:
            self._queued = request
            self._stop.set()  # the queued run starts once this one has wound down
            return
        from ..core.model import build_model

        configs = self._configs(request, epochs=request.epochs, lr=request.lr, beta=request.beta,
                                scatter_points=LIVE_POINTS, snapshot_seconds=LIVE_SECONDS,
                                seed=int(np.random.default_rng().integers(1 << 31)))
        if configs is None:
            return
        cfg, tcfg, device = configs
        warm = request.warm_start and self.model is not None and self.model.cfg == cfg
        model = copy.deepcopy(self.model) if warm else build_model(cfg, seed=tcfg.seed)
        history = list(self.history) if warm else []
        if not warm:
            # From scratch: show the fresh weights at once, so decoding matches the moving scatter.
            shape_changed = self.model is None or self.model.cfg != cfg
            self.model = copy.deepcopy(model)
            self.history = []
            self.historyChanged.emit()
            if shape_changed:
                self.endpoints = {}
                self.modelChanged.emit()
                self.pathChanged.emit()
                self.set_z(np.zeros(cfg.latent_dim, np.float32))
            else:
                self.weightsChanged.emit()
                if self.z is not None:
                    self.set_z(self.z)
        self._stop = threading.Event()
        self.training = True
        self.trainingChanged.emit(True)
        self.status.emit(f"Training on {device.type}…")
        from ..core.training import scatter_subset, train

        self._generation += 1
        self._encode_seq += 1
        gc.freeze()  # the model and data outlive the run: the collector need not rescan them during it
        self._live_index = scatter_subset(len(self.data.x_train), LIVE_POINTS)
        self._start_run(train, model, self.data, tcfg, history=history, should_stop=self._stop.is_set,
                        on_yield=self._on_snapshot, on_finished=self._on_train_finished)

    def _configs(self, request: TrainRequest, **train_fields):
        """Model and training configs for a request on the open dataset; None (and a message) if invalid."""
        from ..core.config import ModelConfig, TrainConfig
        from ..core.device import resolve_device
        from ..core.errors import LatentLabError

        try:
            cfg = ModelConfig(image_shape=self.data.image_shape, latent_dim=request.latent_dim, arch=request.arch,
                              hidden=tuple(request.hidden), likelihood=request.likelihood)
            device = resolve_device(os.environ.get("LATENTLAB_DEVICE", "auto"))
            # Leave the GUI thread a core: torch's pool would otherwise take them all.
            tcfg = TrainConfig(device=device.type, threads=max(1, (os.cpu_count() or 2) - 1), **train_fields)
        except (ValueError, LatentLabError) as exc:
            self.errorRaised.emit(str(exc))
            return None
        return cfg, tcfg, device

    def _start_run(self, fn, *args, on_yield, on_finished, **kwargs) -> None:
        """Run a generator (training or a sweep) on the pool; it stops when self._stop is set. Its
        output is dropped once the model it trains has been replaced (a checkpoint opened meanwhile)."""
        from superqt.utils import create_worker

        worker = create_worker(fn, *args, **kwargs, _start_thread=False, _ignore_errors=True)
        gen = self._generation
        worker.yielded.connect(lambda item: gen == self._generation and on_yield(item))
        worker.errored.connect(self._on_train_error)
        worker.finished.connect(lambda: on_finished(current=gen == self._generation))
        self._worker = worker
        worker.start()

    def stop(self) -> None:
        """The user's Stop: end the running job and forget any run queued behind it."""
        self._queued = None
        self._stop.set()

    # ----- β sweep ----------------------------------------------------------------------------
    def start_sweep(self, betas: list[float], epochs: int, lr: float, request: TrainRequest) -> None:
        """Train one fresh model per β in the background, one after another."""
        if self.data is None or self.training or self.sweeping:
            self.errorRaised.emit("Stop the current run before starting a β sweep.")
            return
        from ..core.sweep import run_sweep

        configs = self._configs(request, epochs=epochs, lr=lr, scatter_points=0, snapshot_every=10 ** 9)
        if configs is None:
            return
        cfg, tcfg, _ = configs
        self.sweep_points = []
        self.sweepChanged.emit()
        self._stop = threading.Event()
        self.sweeping = True
        self._sweep_count = len(betas)
        self.trainingChanged.emit(True)
        self._start_run(run_sweep, self.data, cfg, list(betas), tcfg, self._stop.is_set,
                        on_yield=self._on_sweep_event, on_finished=self._on_sweep_finished)

    def _on_sweep_event(self, event) -> None:
        from ..core.sweep import SweepPoint

        i, item = event
        if isinstance(item, SweepPoint):
            self.sweep_points = sorted([*self.sweep_points, item], key=lambda p: p.beta)
            self.sweepChanged.emit()
            return
        self.sweepProgress.emit(i, self._sweep_count, item)
        if item.error:
            self.errorRaised.emit(f"β sweep stopped: {item.error}")

    def _on_sweep_finished(self, current: bool = True) -> None:
        self._worker = None
        self.sweeping = False
        self.trainingChanged.emit(False)
        self.status.emit(f"β sweep: {len(self.sweep_points)} models.")
        queued, self._queued = self._queued, None
        if queued is not None and current and not self._closed:
            self.train(queued)

    def set_aggregate(self, aggregate: dict | None = None, prior_samples: dict | None = None) -> None:
        self.aggregate, self.prior_samples = aggregate, prior_samples
        self.aggregateChanged.emit()

    def set_sweep(self, points: list) -> None:
        self.sweep_points = list(points)
        self.sweepChanged.emit()

    def use_sweep_point(self, point) -> None:
        """Make one model of the sweep the explorer's model."""
        import torch

        from ..core.model import build_model

        if self.training or self.sweeping:
            self.errorRaised.emit("Stop the running job before loading a model from the sweep.")
            return
        model = build_model(point.config, seed=None)
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in point.weights.items()})
        model.eval()
        self._generation += 1
        k_changed = self.model is None or self.model.latent_dim != model.latent_dim
        self.model = model
        self.history = list(point.history)
        self.checkpoint_path = point.path
        self.modelChanged.emit()
        self.historyChanged.emit()
        if k_changed:
            self.endpoints = {}
            self.pathChanged.emit()
            self.set_z(np.zeros(model.latent_dim, np.float32))
        else:
            self.set_z(self.z)
        self.status.emit(f"Loaded the β = {point.beta:g} model of the sweep.")
        self.encode_all()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Stop everything and wait for the pool, so no thread outlives the window."""
        self._closed = True
        self._queued = None
        self._stop.set()
        self._publish.stop()
        QtCore.QThreadPool.globalInstance().waitForDone(timeout_ms)

    def _on_snapshot(self, snap) -> None:
        if snap.record is not None:
            self.history.append(snap.record)
        if snap.weights is not None:
            self._pending_weights = snap.weights
        self._pending = snap
        if snap.done:
            self._publish.stop()
            self._publish_pending()
        elif not self._publish.isActive():
            self._publish.start()

    def _publish_pending(self) -> None:
        snap, self._pending = self._pending, None
        if snap is None:
            return
        weights, self._pending_weights = self._pending_weights, None
        if weights is not None and self.model is not None:
            import torch

            self.model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
            self.weightsChanged.emit()
            if self.z is not None:
                self.set_z(self.z)
        if snap.record is not None or snap.done:
            self.historyChanged.emit()
        if snap.latent is not None:
            self._set_points(snap.latent, self._live_index)
        self.last_snapshot = snap
        self.progress.emit(snap)
        if snap.error:
            self.errorRaised.emit(snap.error)

    def _on_train_error(self, exc: Exception) -> None:
        self.errorRaised.emit(f"Training failed: {exc}")

    def _on_train_finished(self, current: bool = True) -> None:
        if current:
            self._publish_pending()
        self._pending = None
        self._worker = None
        self.training = False
        self.trainingChanged.emit(False)
        queued, self._queued = self._queued, None
        if self._closed or not current:
            return
        if queued is not None:
            self.train(queued)
            return
        self.encode_all()

    def encode_all(self) -> None:
        """Encode the whole training set off the GUI thread and show it."""
        if self.model is None or self.data is None:
            return
        self.status.emit(f"Encoding {len(self.data.x_train):,} points…")
        self._encode_seq += 1
        seq = self._encode_seq
        self.run_job(_encode_job, copy.deepcopy(self.model), self.data.x_train,
                     on_result=lambda result: self._on_encoded(result, seq))

    def _on_encoded(self, result, seq: int) -> None:
        mu, logvar, stats, dims = result
        if seq != self._encode_seq or self.busy:  # a newer model or run has taken over
            return
        self._set_points(mu, None, logvar, stats, dims)
        self.status.emit(f"Encoded {len(mu):,} points.")

    # ----- helpers ----------------------------------------------------------------------------
    def run_job(self, fn, *args, on_result) -> None:
        """Run fn(*args) on the thread pool; its result comes back to on_result in this thread."""
        from superqt.utils import create_worker  # imported on first use: it is slow to import

        if self._closed:
            return
        # superqt keeps a started worker alive until it finishes; holding it here as well would
        # keep its arguments (a model copy, the data) alive after it is done.
        worker = create_worker(fn, *args, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(on_result)
        worker.errored.connect(self._on_job_error)
        worker.start()

    def _on_job_error(self, exc: Exception) -> None:
        from ..core.errors import LatentLabError

        if isinstance(exc, LatentLabError):
            msg = str(exc)
        elif isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
            msg = "Ran out of memory in a background job; the current model and data are kept."
        else:
            msg = f"{type(exc).__name__}: {exc}"
        self.status.emit("")
        self.errorRaised.emit(msg)


def _load_job(checkpoint, dataset):
    from ..core.bundled import default_checkpoint
    from ..core.checkpoint import load_checkpoint
    from ..core.data import load_dataset
    from ..core.errors import LatentLabError

    path = Path(checkpoint) if checkpoint else default_checkpoint()
    ckpt = load_checkpoint(path)
    ckpt.path = path
    data = load_dataset(dataset or ckpt.dataset or "digits")
    if data.image_shape != ckpt.config.image_shape:
        raise LatentLabError(f"{path.name} expects images of shape {ckpt.config.image_shape}, "
                             f"but {data.spec} has {data.image_shape}.")
    return ckpt, data, ckpt.model, _encode_job(ckpt.model, data.x_train)


def _dataset_job(spec, model):
    """A new dataset keeps the model when the image shape fits, else starts an untrained one."""
    from ..core.config import ModelConfig
    from ..core.data import load_dataset
    from ..core.model import build_model

    data = load_dataset(spec)
    if model is None or model.cfg.image_shape != data.image_shape:
        k = model.latent_dim if model is not None else 2
        model = build_model(ModelConfig(image_shape=data.image_shape, latent_dim=k), seed=0).eval()
    else:
        model = copy.deepcopy(model)
    return None, data, model, _encode_job(model, data.x_train)


def _warm_up_training() -> None:
    """Build one optimiser while the user is looking at the loaded model: the first torch.optim
    optimiser imports torch's compiler stack (seconds, and many objects for the collector to scan),
    which would otherwise land in the first training run."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _encode_job(model, x):
    """Means and log-variances of every point, the per-point values the scatter can be coloured by,
    and KL per dimension with the active units."""
    from ..core.analysis import active_units, encode, mean_kl_per_dim, point_kl, reconstruction_nll

    mu, logvar = encode(model, x)
    stats = {"reconstruction error": reconstruction_nll(model, x, mu), "KL per point": point_kl(mu, logvar)}
    return mu, logvar, stats, (mean_kl_per_dim(mu, logvar), active_units(mu))
