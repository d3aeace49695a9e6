"""Functions that run on worker threads: they take plain values and a model copy, call the core and
return numpy arrays and floats. Nothing here touches Qt or the window's state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

AGGREGATE_GRID = 160
AGGREGATE_SAMPLES = 4000
HOLE_RATIO = 0.1
ENCODE_CHUNK = 65536   # images per progress step of a full encode, and between two looks at the stop flag
# Images per encoder call in a full encode. The worker thread's malloc arena keeps much of what each
# batch freed, so the batch size sets how much stays resident: encoding 400,000 28×28 images on a
# thread kept about 360 MB at 4,096 and 130 MB at 1,024, which encodes as fast on the CPU.
ENCODE_BATCH = 1024


@dataclass(frozen=True)
class Encoded:
    """A full encode of the training set: means, log-variances, per-point values to colour by (only
    the cheap ones: the others are computed when first asked for, see point_stat) and the
    per-dimension statistics of the latent space."""
    means: np.ndarray
    logvars: np.ndarray
    stats: dict
    dim_stats: tuple   # (KL per dimension in nats, active mask)


@dataclass(frozen=True)
class Loaded:
    """What opening a checkpoint or a dataset produced."""
    model: object
    data: object
    history: list | None   # None: keep the current history if the model shape is unchanged
    source: Path | None
    encoded: Encoded | None   # None: there is no data to encode
    notes: tuple = ()         # short sentences for the banner (a dataset replaced, metadata dropped)


def encode_all(model, x, progress=None, should_stop=None, span=(0.0, 1.0)) -> Encoded:
    """Means and log-variances of every image, in chunks: progress(f) maps them onto `span` of the
    job's progress, should_stop() is polled between chunks."""
    from latentlab.core.inference.analysis import active_units, mean_kl_per_dim
    from latentlab.core.inference.batches import encode_rows

    lo, hi = span
    phase = f"Encoding {len(x):,} images"
    if progress is not None:
        progress(lo, phase)
    mu, logvar = encode_rows(model, x, batch=ENCODE_BATCH, chunk=ENCODE_CHUNK, should_stop=should_stop,
                             progress=progress and (lambda f: progress(lo + (hi - lo) * f, phase)))
    # A deterministic autoencoder has no q(z|x): its KL per dimension is not a number to show.
    kl = (np.full(model.latent_dim, np.nan) if getattr(model, "deterministic", False)
          else mean_kl_per_dim(mu, logvar, model.latent_prior()))
    return Encoded(mu, logvar, {}, (kl, active_units(mu)))


def point_stat(name: str, model, x, mu, logvar, progress=None, should_stop=None) -> np.ndarray:
    """One of the per-point values to colour by (state.LAZY_STATS), in chunks with progress."""
    from latentlab.core.data.pixels import stored
    from latentlab.core.inference.analysis import point_kl, reconstruction_nll
    from latentlab.core.inference.batches import each_chunk

    out = np.empty(len(mu), np.float32)

    def step(j: slice) -> None:
        out[j] = (reconstruction_nll(model, stored(x)[j], mu[j]) if name == "reconstruction error"
                  else point_kl(mu[j], logvar[j], model.latent_prior()))

    each_chunk(len(mu), ENCODE_CHUNK if name != "KL per point" else 16 * ENCODE_CHUNK, step, progress=progress,
               should_stop=should_stop, stopped=f"Computing the {name} was stopped.")
    return out


def embedding(method: str, means: np.ndarray, seed: int, progress=None, should_stop=None):
    """A UMAP or t-SNE map of the means (core.inference.maps)."""
    from latentlab.core.inference.maps import tsne_embedding, umap_embedding

    fn = umap_embedding if method == "umap" else tsne_embedding
    return fn(means, seed=seed, progress=progress, should_stop=should_stop)


def export_latent_means(model, data, path, progress=None, should_stop=None) -> str:
    """Encode the train and test images and write the latent table (core.files.latent_table) to path."""
    from latentlab.core.tables.latent_table import encode_table, write_table

    table = encode_table(model, data, progress=lambda f: progress and progress(0.95 * f), should_stop=should_stop)
    if progress is not None:
        progress(0.95, f"Writing {path}")
    return str(write_table(path, table))


EVAL_IMAGES = 10_000   # the test-set evaluation reads at most this many images


def evaluate_test(model, data) -> dict:
    """ELBO, reconstruction, KL and active units on the test images (the training images when the
    dataset has no test split), as `latentlab eval` reports them, without the IWAE estimate."""
    from latentlab.core.inference.analysis import evaluate

    x = data.x_test if len(data.x_test) else data.x_train
    out = evaluate(model, x[:EVAL_IMAGES])
    out["split"] = "test" if len(data.x_test) else "training"
    return out


def load_checkpoint_and_data(checkpoint, dataset, progress=None, should_stop=None) -> Loaded:
    """A checkpoint and the data to show it on. A dataset the user asked for must load and fit; the
    one the checkpoint names is only a suggestion (core.data.open_checkpoint_dataset), replaced by
    the embedded default or by no data with a note saying why."""
    from latentlab.core.data.specs import load_dataset, open_checkpoint_dataset
    from latentlab.core.errors import LatentLabError
    from latentlab.core.files.bundled import default_checkpoint
    from latentlab.core.files.checkpoint import load_checkpoint
    from latentlab.core.text import short

    path = Path(checkpoint) if checkpoint else default_checkpoint()
    if progress is not None:
        progress(0.0, f"Loading {path.name}")
    ckpt = load_checkpoint(path)
    _refuse_if_too_big(ckpt.model, 0)   # a latent size the window refuses whatever the data: before loading any
    notes = [f"{short(path.name, 80)}: {w}." for w in ckpt.warnings]
    if dataset:
        if progress is not None:
            progress(0.05, f"Loading {short(dataset, 80)}")
        data = load_dataset(dataset, should_stop=should_stop)
        if data.image_shape != ckpt.config.image_shape:
            raise LatentLabError(f"{short(path.name, 80)} expects images of shape {ckpt.config.image_shape}, "
                                 f"but {short(data.spec, 80)} has {data.image_shape}.")
    else:
        data, note = open_checkpoint_dataset(ckpt.dataset, ckpt.config.image_shape, should_stop=should_stop)
        if note:
            notes.insert(0, note)
    _refuse_if_too_big(ckpt.model, len(data.x_train) if data is not None else 0)
    encoded = (encode_all(ckpt.model, data.x_train, progress, should_stop, span=(0.4, 1.0))
               if data is not None else None)
    return Loaded(ckpt.model, data, list(ckpt.history), path, encoded, tuple(notes))


def open_model_and_data(spec, weights, likelihood, dataset, current_data, progress=None, should_stop=None) -> Loaded:
    """A model SPEC (with optional weights and likelihood) checked on one batch of the named dataset,
    else the open one, else the dataset its file records (under the same rule as a checkpoint's:
    core.data.open_checkpoint_dataset), else the digits; refused before encoding when the window
    cannot hold its view."""
    from latentlab.core.data.specs import load_dataset, open_checkpoint_dataset
    from latentlab.core.errors import DatasetError
    from latentlab.core.files.model_spec import open_model
    from latentlab.core.text import short

    opened = open_model(spec, weights=weights, likelihood=likelihood or None)
    notes = []
    if dataset:
        data = load_dataset(dataset, should_stop=should_stop)
    elif current_data is not None:
        data = current_data
    else:
        source = "the weights file" if weights is not None else "the checkpoint"
        data, note = open_checkpoint_dataset(opened.dataset, None, should_stop=should_stop, source=source)
        if note and opened.dataset:
            notes.append(note)
        if data is None:
            raise DatasetError(note or "There is no dataset to check the model on; choose one.")
    model = opened.check(data.x_train[:8])
    _refuse_if_too_big(model, len(data.x_train))
    source = Path(weights) if weights is not None else (Path(spec) if spec.lower().endswith(".safetensors") else None)
    # What the numbers assume (a prior, a likelihood that does not fit the decoder) is said in the banner.
    notes += [f"{short(spec, 80)}: {w}." for w in opened.warnings] + [f"{n}." for n in model.notes()]
    return Loaded(model, data, list(opened.history), source,
                  encode_all(model, data.x_train, progress, should_stop, span=(0.4, 1.0)), tuple(notes))


def load_data_for(spec, model, progress=None, should_stop=None) -> Loaded:
    """A new dataset keeps the model (a copy) when the image shape fits, else starts an untrained one;
    a model of the user's own is kept if it reads the new images, else the dataset is refused."""
    from latentlab.core.data.specs import load_dataset
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.models.vae import build_model

    if progress is not None:
        progress(0.0, f"Loading {spec}")
    data = load_dataset(spec, should_stop=should_stop)
    if model is not None and getattr(model, "cfg", None) is None:
        from latentlab.core.models.adapters import validate

        # Checked on a copy: a model that does not read these images leaves the shown one as it was.
        model = validate(model.copy(), data.x_train[:8])
        _refuse_if_too_big(model, len(data.x_train))
        return Loaded(model, data, None, None, encode_all(model, data.x_train, progress, should_stop, span=(0.4, 1.0)))
    if model is None or model.cfg.image_shape != data.image_shape:
        k = model.latent_dim if model is not None else 2
        cfg = ModelConfig(image_shape=data.image_shape, latent_dim=k)
        _refuse_if_too_big(cfg, len(data.x_train))   # before building it: large images make large layers
        model = build_model(cfg, seed=0).eval()
    else:
        _refuse_if_too_big(model, len(data.x_train))
    return Loaded(model, data, None, None, encode_all(model, data.x_train, progress, should_stop, span=(0.4, 1.0)))


def _refuse_if_too_big(model_or_cfg, n_points: int) -> None:
    """One sentence, before encoding, when the window cannot hold the view of a model (any model, a
    user's own included, or latentlab's given by its config before it is built) on n_points images."""
    from latentlab.core.errors import ResourceError
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.training.budget import model_window_refusal, window_refusal

    if isinstance(model_or_cfg, ModelConfig):
        why = window_refusal(model_or_cfg, n_points)
    else:
        why = model_window_refusal(model_or_cfg, n_points)
    if why:
        raise ResourceError(why)


def warm_up_training(cfg=None) -> None:
    """Count the loaded model's memory budget while the user is looking at it: Train checks it on the
    GUI thread, and the first count pays for building a model on the meta device."""
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.training.budget import activation_bytes

    activation_bytes(cfg or ModelConfig(image_shape=(1, 8, 8), latent_dim=2, hidden=(8,)), 1)


def device_free(name: str) -> dict:
    """{device: free bytes} for the training device `name` resolves to when it is a CUDA GPU, else {}.
    Run on a worker: CUDA's first query creates the device's context, which takes seconds."""
    from latentlab.core.memory import available_bytes
    from latentlab.core.training.device import resolve_device

    device = resolve_device(name)
    return {str(device): available_bytes(device)} if device.type == "cuda" else {}


def _plane_prior(model, dims):
    """The model's prior on the shown pair of coordinates (None: N(0, I)), and a sentence when it is
    not exact or not available."""
    from latentlab.core.inference.aggregate import PlanePrior
    from latentlab.core.models.priors import StandardNormal

    prior = model.latent_prior() if model is not None else None
    if prior is None or (isinstance(prior, StandardNormal)):
        return None, prior, ""
    try:
        plane = PlanePrior(prior, model.latent_dim, dims)
    except ValueError as exc:
        return False, prior, f"The prior's holes are not shown: {exc}."
    note = "" if plane.exact else "The declared prior's marginal on these two coordinates is a histogram of its draws."
    return plane, prior, note


def aggregate_summary(mu2: np.ndarray, logvar2: np.ndarray, mu: np.ndarray, logvar: np.ndarray, box: float,
                      model=None, dims=(0, 1)) -> dict:
    """Density of q(z) on the shown pair of coordinates, its holes, the share of prior samples in
    holes and KL(q(z) || p(z)) over the full latent, against the model's prior (N(0, I) by default)."""
    from latentlab.core.inference.aggregate import aggregate_density, holes, kl_aggregate_prior, prior_density, prior_samples_in_holes

    xs = ys = np.linspace(-box, box, AGGREGATE_GRID)
    density = aggregate_density(mu2, logvar2, xs, ys, cell_average=True)
    plane, prior, note = _plane_prior(model, dims)
    rng = np.random.default_rng(0)
    out = {"xs": xs, "ys": ys, "density": density, "note": note, "prior_grid": None,
           "prior": prior.describe() if prior is not None else "N(0, I)"}
    if plane is None:
        mask = holes(density, prior_density(xs, ys), ratio=HOLE_RATIO)
        _, in_hole = prior_samples_in_holes(mu2, logvar2, AGGREGATE_SAMPLES, rng, ratio=HOLE_RATIO)
    elif plane is False:
        mask, in_hole = np.zeros_like(density, bool), np.zeros(1, bool)
    else:
        grid = plane.density(xs, ys)
        mask = holes(density, grid, ratio=HOLE_RATIO, prior_level=plane.level(grid, 0.95))
        _, in_hole = prior_samples_in_holes(mu2, logvar2, AGGREGATE_SAMPLES, rng, ratio=HOLE_RATIO, plane=plane)
        out["prior_grid"] = grid
    kl = kl_aggregate_prior(mu, logvar, 4000, rng, prior=None if plane is None else prior)
    out.update(holes=mask, hole_share=float(in_hole.mean()) if plane is not False else float("nan"), kl=kl)
    return out


PRIOR_MASSES = (0.39, 0.86, 0.99)   # the shares of N(0, I) inside the circles of radius 1, 2, 3 in 2-D


def prior_contours(model, dims) -> dict | None:
    """Where a declared prior's marginal on the shown pair of coordinates holds PRIOR_MASSES of its
    mass, as polylines (None: the prior is N(0, I), drawn as circles)."""
    import pyqtgraph as pg

    plane, _, note = _plane_prior(model, dims)
    if plane is None:
        return None
    if plane is False:
        return {"lines": [], "masses": [], "note": note}
    z = plane.sample(20_000, np.random.default_rng(0))
    lo, hi = np.percentile(z, 0.05, axis=0), np.percentile(z, 99.95, axis=0)
    pad = 0.15 * (hi - lo)
    xs, ys = np.linspace(lo[0] - pad[0], hi[0] + pad[0], 160), np.linspace(lo[1] - pad[1], hi[1] + pad[1], 160)
    grid = plane.density(xs, ys)
    lines, masses = [], []
    for mass in PRIOR_MASSES:
        for curve in pg.isocurve(grid, plane.level(grid, mass), connected=True):
            rc = np.asarray(curve, np.float64)   # (row, column) indices into the grid
            if len(rc) > 2:
                lines.append(np.c_[xs[0] + rc[:, 1] * (xs[1] - xs[0]), ys[0] + rc[:, 0] * (ys[1] - ys[0])])
                masses.append(mass)
    return {"lines": lines, "masses": masses, "note": note}


def prior_samples(model, mu2, logvar2, n: int, seed: int, projection, anchor) -> dict:
    """Draw n points from the prior in the shown plane, mark those in holes, decode them (lifted
    through the anchor, so for K > 2 the unseen coordinates are the anchor's)."""
    from latentlab.core.errors import LatentLabError
    from latentlab.core.inference.aggregate import prior_samples_in_holes
    from latentlab.core.inference.analysis import decode

    plane, _, note = _plane_prior(model, getattr(projection, "dims", (0, 1)))
    if plane is False:
        raise LatentLabError(note)
    z2, in_hole = prior_samples_in_holes(mu2, logvar2, n, np.random.default_rng(seed), ratio=HOLE_RATIO, plane=plane)
    codes = projection.lift_many(z2, anchor)
    return {"z2": z2, "in_hole": in_hole, "images": decode(model, codes)}


def decode_codes(model, codes: np.ndarray) -> np.ndarray:
    """Decode codes of any leading shape (..., K) into images (..., C, H, W)."""
    from latentlab.core.inference.analysis import decode

    flat = decode(model, codes.reshape(-1, codes.shape[-1]))
    return flat.reshape(codes.shape[:-1] + flat.shape[1:])


SUMMARY_RECON_SAMPLE = 2000   # selected images decoded for the selection's mean reconstruction error


def selection_summary(model, x, rows: np.ndarray, mu: np.ndarray, logvar: np.ndarray | None) -> dict:
    """Mean KL and mean reconstruction error of selected points (rows of x, None when there are no images; mu, logvar theirs).
    The reconstruction error is over a seeded sample of at most SUMMARY_RECON_SAMPLE of them."""
    from latentlab.core.inference.analysis import point_kl, reconstruction_nll

    kl = float(point_kl(mu, logvar, model.latent_prior()).mean()) if logvar is not None and len(mu) else float("nan")
    sample = np.arange(len(rows))
    if len(rows) > SUMMARY_RECON_SAMPLE:
        sample = np.sort(np.random.default_rng(0).choice(len(rows), SUMMARY_RECON_SAMPLE, replace=False))
    recon = reconstruction_nll(model, x[rows[sample]], mu[sample]) if len(sample) and x is not None else np.zeros(0)
    return {"rows": rows, "kl": kl, "recon": float(recon.mean()) if len(recon) else float("nan"),
            "recon_n": len(recon)}
