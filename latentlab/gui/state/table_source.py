"""A latent table opened in the window (`latentlab gui --table FILE`): its means are the shown points
and no image is encoded or loaded for them.

`TableData` stands where the window keeps its dataset: its "training set" is the table's rows, in the
table's order. `x_train[rows]` fetches those rows' images from the dataset given with the table
(row `index` of its `split`), only when a view asks (the hover card, the selection's grid, the
inspector); without a dataset there are no images (`has_images` is False) and those views say so.
`open_table` (a worker function) reads the table, opens the model and the dataset, and checks they
belong together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import work

NO_IMAGES = "No images: this table was opened without a dataset (latentlab gui --table FILE --dataset SPEC)."


class TableImages:
    """The images of a table's rows, read from the dataset's train and test images on demand: indexing
    it gives float32 (…, C, H, W) in [0, 1] like core.data.pixels.Pixels."""

    def __init__(self, data, split: np.ndarray, index: np.ndarray, image_shape: tuple):
        self.data, self.split, self.index, self.image_shape = data, split, index, tuple(image_shape)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.image_shape)

    ndim = 4
    dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key) -> np.ndarray:
        from latentlab.core.errors import LatentLabError

        if self.data is None:
            raise LatentLabError(NO_IMAGES)
        rows = np.arange(len(self.index))[key]
        one = np.ndim(rows) == 0
        rows = np.atleast_1d(rows)
        out = np.empty((len(rows), *self.image_shape), np.float32)
        for code, source in enumerate((self.data.x_train, self.data.x_test)):
            mine = np.flatnonzero(self.split[rows] == code)
            if len(mine):
                wanted = self.index[rows[mine]]
                order = np.argsort(wanted, kind="stable")   # sorted reads, put back in the rows' order
                out[mine[order]] = source[wanted[order]]
        return out[0] if one else out


@dataclass(frozen=True, eq=False)
class TableData:
    """What the window reads as its dataset while a table is open (the fields of core.data.Dataset)."""

    table: object                 # core.files.table_reader.TableColumns
    path: Path
    images: object                # the core.data.Dataset the rows come from, or None
    x_train: TableImages
    label_names: tuple[str, ...]
    pca: object = None            # the PCA plane of the means (K > 2), worked out with them off the GUI thread
    factors_train: dict | None = None
    factors_test: dict | None = None

    @property
    def y_train(self) -> np.ndarray:
        return self.table.label

    @property
    def x_test(self):
        return self.images.x_test if self.images is not None else np.zeros((0, *self.image_shape), np.float32)

    @property
    def y_test(self) -> np.ndarray:
        return self.images.y_test if self.images is not None else np.zeros(0, np.int64)

    @property
    def has_images(self) -> bool:
        return self.images is not None

    @property
    def spec(self) -> str:
        """The dataset the rows come from (what a checkpoint saved from here records)."""
        return self.images.spec if self.images is not None else ""

    @property
    def name(self) -> str:
        from latentlab.core.text import short

        shown = f"{short(self.path.name, 60)}"
        return f"{shown} ({short(self.images.name, 60)} images)" if self.images is not None else f"{shown} (no images)"

    @property
    def image_shape(self) -> tuple:
        return self.x_train.image_shape

    @property
    def pixel_bytes(self) -> int:
        return 4

    @property
    def continuous(self) -> bool:
        return bool(self.images.continuous) if self.images is not None else True


def open_table(path, checkpoint, spec, weights, likelihood, dataset, progress=None, should_stop=None) -> work.Loaded:
    """The table at `path` with the model it was encoded with (a checkpoint, or a model SPEC with
    optional weights and likelihood) and, if named, the dataset whose images its rows are."""
    from latentlab.core.errors import LatentLabError
    from latentlab.core.memory import trim_heap
    from latentlab.core.tables.table_reader import read_latent_table
    from latentlab.core.text import short

    def part(lo: float, hi: float):
        return None if progress is None else (lambda f, *_: progress(lo + (hi - lo) * f, f"Reading {short(Path(path).name, 60)}"))

    table = read_latent_table(path, progress=part(0.0, 0.6), should_stop=should_stop)
    trim_heap()   # the column chunks read and freed
    if progress is not None:
        progress(0.6, "Opening the model")
    model, history, source, notes = _open_model(checkpoint, spec, weights, likelihood)
    name = short(Path(path).name, 80)
    if model.latent_dim != table.latent_dim:
        raise LatentLabError(f"{name} holds K = {table.latent_dim} latent dimensions, but the model has "
                             f"K = {model.latent_dim}; open it with the model that encoded it.")
    images = None
    if dataset:
        from latentlab.core.data.specs import load_dataset

        if progress is not None:
            progress(0.65, f"Loading {short(dataset, 60)}")
        images = load_dataset(dataset, should_stop=should_stop)
        _check_rows(table, images, name)
    shape = _checked_model(model, images)
    if progress is not None:
        progress(0.8, "Summarising the latent dimensions")
    from latentlab.core.inference.projection import pca_projection

    data = TableData(table=table, path=Path(path), images=images, label_names=table.label_names,
                     x_train=TableImages(images, table.split, table.index, shape),
                     pca=pca_projection(table.mu) if table.latent_dim > 2 else None)
    return work.Loaded(model, data, history, source, encoded(table), tuple(notes) + table.notes)


def attach_dataset(data: TableData, dataset: str, model, progress=None, should_stop=None) -> work.Loaded:
    """The open table with the images of `dataset` (File → Open dataset… while a table is shown)."""
    from latentlab.core.data.specs import load_dataset
    from latentlab.core.text import short

    if progress is not None:
        progress(0.0, f"Loading {short(dataset, 60)}")
    images = load_dataset(dataset, should_stop=should_stop)
    _check_rows(data.table, images, short(data.path.name, 80))
    shape = _checked_model(model, images)
    with_images = TableData(table=data.table, path=data.path, images=images, label_names=data.label_names,
                            x_train=TableImages(images, data.table.split, data.table.index, shape), pca=data.pca)
    return work.Loaded(model, with_images, None, None, encoded(data.table))


def encoded(table) -> work.Encoded:
    from latentlab.core.inference.analysis import active_units, mean_kl_per_dim

    return work.Encoded(table.mu, table.logvar, {}, (mean_kl_per_dim(table.mu, table.logvar), active_units(table.mu)))


def _open_model(checkpoint, spec, weights, likelihood):
    from latentlab.core.text import short

    if checkpoint is not None:
        from latentlab.core.files.checkpoint import load_checkpoint

        ckpt = load_checkpoint(checkpoint)
        return ckpt.model, list(ckpt.history), Path(checkpoint), [f"{short(Path(checkpoint).name, 80)}: {w}." for w in ckpt.warnings]
    from latentlab.core.files.model_spec import open_model

    opened = open_model(spec, weights=weights, likelihood=likelihood or None)
    source = Path(weights) if weights is not None else (Path(spec) if str(spec).lower().endswith(".safetensors") else None)
    return opened.model, list(opened.history), source, [f"{short(spec, 80)}: {w}." for w in opened.warnings]


def _check_rows(table, images, name: str) -> None:
    """Every row's index exists in the dataset's split: one sentence naming the first that does not."""
    from latentlab.core.errors import LatentLabError
    from latentlab.core.text import short

    for code, split in enumerate(("train", "test")):
        size = len(images.x_train if code == 0 else images.x_test)
        mine = table.index[table.split == code]
        if len(mine) and int(mine.max()) >= size:
            raise LatentLabError(f"{name} names {split} image {int(mine.max()):,}, but {short(images.name, 60)} has "
                                 f"{size:,} {split} images: give the dataset the table was encoded from.")


def _checked_model(model, images) -> tuple:
    """The model checked on a few of the dataset's images, or on blank images of the shape it
    declares when there is no dataset; the image shape."""
    from latentlab.core.errors import LatentLabError
    from latentlab.core.models.adapters import validate

    cfg = getattr(model, "cfg", None)
    if cfg is not None:   # latentlab's own VAE knows its shape
        if images is not None and images.image_shape != cfg.image_shape:
            raise LatentLabError(f"The model expects images of shape {cfg.image_shape}, but the dataset has "
                                 f"{images.image_shape}.")
        return tuple(cfg.image_shape)
    if images is not None:
        validate(model, images.x_train[:8] if len(images.x_train) else images.x_test[:8])
        return tuple(images.image_shape)
    shape = getattr(model, "declared_image_shape", None) if model.learns_shapes else model.image_shape
    if not shape:
        raise LatentLabError("This model learns its image shape from data: open the table with --dataset SPEC.")
    validate(model, np.zeros((2, *shape), np.float32))
    return tuple(shape)
