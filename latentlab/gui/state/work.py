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
    from latentlab.core.data.pixels import stored
    from latentlab.core.errors import Cancelled
    from latentlab.core.inference.analysis import active_units, encode, mean_kl_per_dim

    k = model.latent_dim
    mu, logvar = np.empty((len(x), k), np.float32), np.empty((len(x), k), np.float32)
    lo, hi = span
    for i in range(0, len(x), ENCODE_CHUNK):
        if should_stop is not None and should_stop():
            raise Cancelled("Encoding was stopped.")
        if progress is not None:
            progress(lo + (hi - lo) * i / len(x), f"Encoding {len(x):,} images")
        # Rows as stored (uint8 for 8-bit data): encode converts them a batch at a time.
        mu[i:i + ENCODE_CHUNK], logvar[i:i + ENCODE_CHUNK] = encode(model, stored(x)[i:i + ENCODE_CHUNK],
                                                                  batch=ENCODE_BATCH)
    return Encoded(mu, logvar, {}, (mean_kl_per_dim(mu, logvar), active_units(mu)))


def point_stat(name: str, model, x, mu, logvar, progress=None, should_stop=None) -> np.ndarray:
    """One of the per-point values to colour by (state.LAZY_STATS), in chunks with progress."""
    from latentlab.core.data.pixels import stored
    from latentlab.core.errors import Cancelled
    from latentlab.core.inference.analysis import point_kl, reconstruction_nll

    out = np.empty(len(mu), np.float32)
    chunk = ENCODE_CHUNK if name != "KL per point" else 16 * ENCODE_CHUNK
    for i in range(0, len(mu), chunk):
        if should_stop is not None and should_stop():
            raise Cancelled(f"Computing the {name} was stopped.")
        if progress is not None:
            progress(i / len(mu))
        j = slice(i, i + chunk)
        out[j] = reconstruction_nll(model, stored(x)[j], mu[j]) if name == "reconstruction error" else point_kl(mu[j], logvar[j])
    return out


def embedding(method: str, means: np.ndarray, seed: int, progress=None, should_stop=None):
    """A UMAP or t-SNE map of the means (core.inference.projection)."""
    from latentlab.core.inference.projection import tsne_embedding, umap_embedding

    fn = umap_embedding if method == "umap" else tsne_embedding
    return fn(means, seed=seed, progress=progress, should_stop=should_stop)


def export_latent_means(model, data, path, progress=None, should_stop=None) -> str:
    """Encode the train and test images and write the latent table (core.files.latent_table) to path."""
    from latentlab.core.files.latent_table import encode_table, write_table

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
    notes += [f"{short(spec, 80)}: {w}." for w in opened.warnings]
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
    """Build one optimiser while the user is looking at the loaded model: the first torch.optim
    optimiser imports torch's compiler stack (seconds, and many objects for the collector to scan),
    which would otherwise land in the first training run."""
    import torch

    from latentlab.core.models.config import ModelConfig
    from latentlab.core.training.budget import activation_bytes

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    # Train checks the memory budget on the GUI thread with a meta-device forward: the first one pays
    # torch's one-time set-up (seconds), each new shape ~20 ms; both here instead (`cfg`: the loaded
    # model's, which a warm start trains).
    activation_bytes(cfg or ModelConfig(image_shape=(1, 8, 8), latent_dim=2, hidden=(8,)), 1)


def aggregate_summary(mu2: np.ndarray, logvar2: np.ndarray, mu: np.ndarray, logvar: np.ndarray, box: float) -> dict:
    """Density of q(z) on the shown pair of coordinates, its holes, the share of prior samples in
    holes and KL(q(z) || p(z)) over the full latent."""
    from latentlab.core.inference.aggregate import aggregate_density, holes, kl_aggregate_prior, prior_density, prior_samples_in_holes

    xs = ys = np.linspace(-box, box, AGGREGATE_GRID)
    density = aggregate_density(mu2, logvar2, xs, ys, cell_average=True)
    mask = holes(density, prior_density(xs, ys), ratio=HOLE_RATIO)
    rng = np.random.default_rng(0)
    _, in_hole = prior_samples_in_holes(mu2, logvar2, AGGREGATE_SAMPLES, rng, ratio=HOLE_RATIO)
    kl = kl_aggregate_prior(mu, logvar, 4000, rng)
    return {"xs": xs, "ys": ys, "density": density, "holes": mask, "hole_share": float(in_hole.mean()), "kl": kl}


def prior_samples(model, mu2, logvar2, n: int, seed: int, projection, anchor) -> dict:
    """Draw n points from the prior in the shown plane, mark those in holes, decode them (lifted
    through the anchor, so for K > 2 the unseen coordinates are the anchor's)."""
    from latentlab.core.inference.aggregate import prior_samples_in_holes
    from latentlab.core.inference.analysis import decode

    z2, in_hole = prior_samples_in_holes(mu2, logvar2, n, np.random.default_rng(seed), ratio=HOLE_RATIO)
    codes = np.stack([projection.lift(p, anchor) for p in z2])
    return {"z2": z2, "in_hole": in_hole, "images": decode(model, codes)}


def decode_codes(model, codes: np.ndarray) -> np.ndarray:
    """Decode codes of any leading shape (..., K) into images (..., C, H, W)."""
    from latentlab.core.inference.analysis import decode

    flat = decode(model, codes.reshape(-1, codes.shape[-1]))
    return flat.reshape(codes.shape[:-1] + flat.shape[1:])


SUMMARY_RECON_SAMPLE = 2000   # selected images decoded for the selection's mean reconstruction error


def selection_summary(model, x, rows: np.ndarray, mu: np.ndarray, logvar: np.ndarray | None) -> dict:
    """Mean KL and mean reconstruction error of selected points (rows of x; mu, logvar theirs).
    The reconstruction error is over a seeded sample of at most SUMMARY_RECON_SAMPLE of them."""
    from latentlab.core.inference.analysis import point_kl, reconstruction_nll

    kl = float(point_kl(mu, logvar).mean()) if logvar is not None and len(mu) else float("nan")
    sample = np.arange(len(rows))
    if len(rows) > SUMMARY_RECON_SAMPLE:
        sample = np.sort(np.random.default_rng(0).choice(len(rows), SUMMARY_RECON_SAMPLE, replace=False))
    recon = reconstruction_nll(model, x[rows[sample]], mu[sample]) if len(sample) else np.zeros(0)
    return {"rows": rows, "kl": kl, "recon": float(recon.mean()) if len(recon) else float("nan"),
            "recon_n": len(sample)}
