"""The Python API: explore or evaluate your own VAE from a script or a notebook.

    import latentlab
    latentlab.evaluate(my_vae, images)          # the dict `latentlab eval --json` prints
    latentlab.explore(my_vae, images, labels)   # the window, on your model and images

`model` is an nn.Module with encode(x) and decode(z) (see the README's "Explore your own VAE"),
a `latentlab.LatentModel`, or a model SPEC string. `data` is a numpy array or tensor of images
(N×H×W, N×C×H×W or N×H×W×C; values in 0..1, or 0..255 for integers), a torch Dataset yielding
(image, label), a latentlab dataset SPEC string, or a `core.data.Dataset`.

What is passed gets the command line's checks: labels become contiguous classes named by their
values, memory is checked before arrays or a torch Dataset are copied, `iw_samples` is bounded as
`--iw-samples` is, a model too wide for the window is refused before it opens, and a NaN result is
one sentence rather than a number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentlab.core.errors import DatasetError, LatentLabError

MAX_IW_SAMPLES = 1_000_000   # as `latentlab eval --iw-samples`


def evaluate(model, data, *, likelihood=None, iw_samples: int = 100, device: str = "cpu",
             split: str | None = None) -> dict:
    """ELBO, reconstruction, KL (total and per dimension), active units, and the importance-weighted
    log p(x) with the gap; the same dict `latentlab eval --json` prints.

    Arrays, tensors and torch Datasets are scored whole (`examples` says how many); a dataset SPEC
    or a Dataset on its test split, as `latentlab eval` does. `split="test"` or `"train"` picks a
    split of an array too (its seeded 80/20 division). What the numbers assumed (a prior, a
    likelihood that does not fit the decoder's outputs) is in `notes` and raised as warnings."""
    import warnings

    from latentlab.core.inference import analysis

    if not 0 <= int(iw_samples) <= MAX_IW_SAMPLES:
        raise ValueError(f"iw_samples must be a whole number from 0 to {MAX_IW_SAMPLES:,}, not {int(iw_samples):,}.")
    if split not in (None, "all", "test", "train"):
        raise ValueError(f"split must be 'all', 'test' or 'train', not {split!r}.")
    lm, spec = _model(model, likelihood, device)
    ds = as_dataset(data)
    whole = split == "all" or (split is None and ds.spec == "array")
    if whole:
        x, which = _all_images(ds), "all"
    elif split == "train" or not len(ds.x_test):
        x, which = ds.x_train, "train"
    else:
        x, which = ds.x_test, "test"
    stats = analysis.evaluate(_validated(lm, ds), x, iw_samples=int(iw_samples))
    stats.update(checkpoint=spec, model=spec, description=lm.describe(), dataset=ds.spec, split=which)
    for note in stats.get("notes", ()):
        warnings.warn(note, stacklevel=2)
    return stats


def _all_images(ds):
    """Every image of a dataset, train and test together, as Pixels (one copy)."""
    from latentlab.core.data.pixels import as_pixels, stored

    if not len(ds.x_test):
        return ds.x_train
    return as_pixels(np.concatenate([stored(ds.x_train), stored(ds.x_test)]))


def explore(model, data=None, labels=None, *, likelihood=None):
    """Open the latentlab window on `model` and `data` (default: the digits).

    In a plain script this blocks until the window is closed. Inside IPython it returns the window
    at once, with Qt's event loop integrated into the prompt (as `%gui qt` does)."""
    from latentlab.core.errors import ResourceError
    from latentlab.core.training.budget import model_window_refusal

    lm, _ = _model(model, likelihood, "cpu")
    ds = as_dataset("digits" if data is None else data, labels)
    _validated(lm, ds)
    why = model_window_refusal(lm, len(ds.x_train))
    if why:
        raise ResourceError(why)
    try:
        from latentlab.gui.app import open_window
    except ImportError:
        raise LatentLabError("latentlab.explore needs a window that can open a model object, which this version "
                             "of the GUI does not have yet; use latentlab.evaluate or `latentlab eval --model`.") from None
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["latentlab"])
    window = open_window(lm, ds)
    shell = _ipython()
    if shell is not None:
        if not getattr(shell, "active_eventloop", None):
            shell.enable_gui("qt")
        return window
    app.exec()
    return window


def _ipython():
    import sys

    if "IPython" not in sys.modules:
        return None
    return sys.modules["IPython"].get_ipython()


def _model(model, likelihood, device):
    """(LatentModel, the label `eval --json` reports as its model) for whatever the caller passed."""
    from latentlab.core.files.model_spec import load_model
    from latentlab.core.models.foreign import as_model

    if isinstance(model, (str, Path)):
        return load_model(str(model), likelihood=likelihood, device=device), str(model)
    # The same wrapper a SPEC gets: a diffusers AutoencoderKL reads [-1, 1], a pythae model its halves.
    lm = as_model(model, likelihood=likelihood, name=type(model).__name__)
    return lm.to(device).eval(), getattr(lm, "spec", None) or type(model).__name__


def _validated(lm, ds):
    from latentlab.core.models.adapters import validate

    return validate(lm, ds.x_train[:8])


def as_dataset(data, labels=None):
    """A latentlab Dataset from a SPEC, a Dataset, an array or tensor of images, or a torch Dataset;
    arrays are split 80/20 into train and test like any unsplit dataset."""
    from latentlab.core.data.checks import check_memory
    from latentlab.core.data.dataset import split_dataset
    from latentlab.core.data.image_arrays import images_from_array, label_classes, labels_from_array
    from latentlab.core.data.specs import Dataset, load_dataset

    if isinstance(data, Dataset):
        return data
    if isinstance(data, str):
        return load_dataset(data)
    x, y = _arrays(data, labels)
    where = "the images passed to latentlab"
    if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
        # Converted once (floats to float32) and copied once more by the train/test split: checked
        # before either, so a memory-mapped array of billions of values is refused, not read.
        check_memory(2 * x.size * (1 if x.dtype == np.uint8 else 4), f"{where} ({x.size:,} values)")
    x = images_from_array(x, where, "the image array")
    y = labels_from_array(y, len(x), where, "labels")
    if y is None:
        y, names = np.zeros(len(x), np.int64), ("0",)
    else:
        y, _, names = label_classes(y)
    return split_dataset("array", "your images", x, y, names, where)


def _arrays(data, labels):
    import torch

    if isinstance(data, torch.Tensor):
        return data.detach().cpu().numpy(), _labels(labels)
    if isinstance(data, np.ndarray):
        return data, _labels(labels)
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        x, y = _from_torch_dataset(data)
        return x, _labels(labels) if labels is not None else y
    raise DatasetError(f"latentlab reads images from a numpy array, a tensor, a torch Dataset or a dataset SPEC, "
                       f"not a {type(data).__name__}.")


def _from_torch_dataset(data):
    """(images, labels or None) of every item, into arrays sized from the first item once the whole
    is known to fit in memory (a list of a hundred million small arrays would not)."""
    from latentlab.core.data.checks import check_memory

    n = len(data)
    if n == 0:
        raise DatasetError("The torch Dataset passed to latentlab is empty.")
    first, label = _item(data[0])
    check_memory(n * (3 * first.nbytes + 8), f"the torch Dataset's {n:,} images of shape {first.shape}")
    x = np.empty((n, *first.shape), first.dtype)
    y = np.zeros(n, np.int64) if label is not None else None
    for i in range(n):
        img, label = _item(data[i]) if i else (first, label)
        if img.shape != first.shape:
            raise DatasetError("The torch Dataset passed to latentlab yields images of different shapes.")
        x[i] = img
        if y is not None:
            try:
                y[i] = int(label)
            except (TypeError, ValueError, OverflowError):
                raise DatasetError(f"The torch Dataset passed to latentlab gives item {i:,} the label "
                                   f"{str(label)[:40]!r}, not a whole number of at most 64 bits.") from None
    return x, y


def _item(item):
    import torch

    img, lab = (item[0], item[1]) if isinstance(item, (tuple, list)) and len(item) >= 2 else (item, None)
    img = np.asarray(img.detach().cpu() if isinstance(img, torch.Tensor) else img)
    return img, (None if lab is None else lab.item() if isinstance(lab, torch.Tensor) and lab.numel() == 1 else lab)


def _labels(labels):
    if labels is None:
        return None
    import torch

    return labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
