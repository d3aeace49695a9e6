"""Image folders: one sub-folder per class holding images of one size, read file by file with every
image's declared size checked before it is decoded."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from latentlab.core.errors import Cancelled, DatasetError
from latentlab.core.text import reason

from .checks import check_memory, open_regular, require_folder
from .dataset import Dataset, split_dataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# One image of a dataset: 4096×4096 is far past what a VAE here trains on, and far below a bomb.
MAX_IMAGE_PIXELS = 4096 * 4096
# Entries looked at while listing an image folder: the walk of a whole disk ends in one sentence.
MAX_FOLDER_ENTRIES = 5_000_000


def load_image_folder(spec: str, folder: Path, should_stop) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    require_folder(folder)
    try:
        classes = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
        budget = [MAX_FOLDER_ENTRIES]
        files = [sorted(image_files(c, budget, folder)) for c in classes]
    except OSError as e:
        raise DatasetError(f"Cannot list the images in {folder} ({reason(e)}).") from None
    # Folders without images are not classes: they would only add labels with no examples.
    classes = [c for c, f in zip(classes, files) if f]
    files = [f for f in files if f]
    if not classes:
        raise DatasetError(
            f"No images found in {folder}: expected one sub-folder per class holding "
            f"{'/'.join(s[1:] for s in IMAGE_SUFFIXES)} files."
        )
    paths = [p for f in files for p in f]
    y = np.concatenate([np.full(len(f), i, dtype=np.int64) for i, f in enumerate(files)])

    first_size = None
    x = None
    for i, p in enumerate(paths):
        if i % 256 == 0 and should_stop():
            raise Cancelled(f"Loading {folder} was cancelled.")
        try:
            # Each image's declared size is checked before it is decoded: a small file can claim
            # gigapixels (a decompression bomb), and Pillow's own warning for that becomes an error.
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with open_regular(p) as fh, Image.open(fh) as im:
                    if first_size is None:
                        w, h = im.size
                        if w * h > MAX_IMAGE_PIXELS:
                            raise DatasetError(f"{p} is {w:,}×{h:,} pixels; images of at most "
                                               f"{MAX_IMAGE_PIXELS:,} pixels can be used.")
                        # uint8 RGB as decoded plus the (N, C, H, W) copy a train/test split makes.
                        check_memory(len(paths) * w * h * 6, f"{len(paths):,} images of {w:,}×{h:,} in {folder}")
                        first_size = (h, w, 3)
                    elif im.size != (first_size[1], first_size[0]):
                        raise DatasetError(
                            f"{p} is {im.size[0]}×{im.size[1]} pixels but {paths[0]} is "
                            f"{first_size[1]}×{first_size[0]}; all images must have the same size."
                        )
                    rgb = rgb8(im)
        except DatasetError:
            raise
        except UnidentifiedImageError:
            raise DatasetError(f"{p} is not a readable image (unknown or damaged format).") from None
        except Exception as e:  # noqa: BLE001
            # PIL reports truncated, oversized or otherwise broken files with many exception types.
            raise DatasetError(f"{p} is not a readable image ({reason(e)}).") from None
        if rgb.shape != first_size:
            raise DatasetError(f"{p} decodes to {rgb.shape[1]}×{rgb.shape[0]} pixels but declares "
                               f"{first_size[1]}×{first_size[0]}.")
        if x is None:
            x = np.empty((len(paths), *rgb.shape), dtype=np.uint8)
        x[i] = rgb
    # Grayscale when every image is (equal RGB channels), which also catches gray JPEGs saved as RGB.
    if (x[..., 0] == x[..., 1]).all() and (x[..., 0] == x[..., 2]).all():
        x = x[..., 0]
    else:
        x = x.transpose(0, 3, 1, 2)
    return split_dataset(
        spec, f"images: {folder.name}", x, y, [c.name for c in classes], str(folder)
    )


def rgb8(im) -> np.ndarray:
    """An image as 8-bit RGB (H, W, 3). Grey images of 16 bits (PNG's I;16, or I) are scaled from
    their full range, 65535 to 255, as Pillow scales 16-bit colour: its convert("RGB") would clip them
    at 255 instead, turning almost every pixel white."""
    if im.mode.startswith("I;16") or im.mode == "I":
        grey = np.asarray(im, dtype=np.float64)
        grey = np.clip(np.rint(grey / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


def image_files(top: Path, budget: list, folder: Path) -> list[Path]:
    """Image files under `top` (not following links to folders), counting every entry against budget."""
    found, stack = [], [top]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                budget[0] -= 1
                if budget[0] < 0:
                    raise DatasetError(f"{folder} holds more than {MAX_FOLDER_ENTRIES:,} files and folders; "
                                       "point images:DIR at the dataset's own folder.")
                if e.name.startswith("."):
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                elif Path(e.name).suffix.lower() in IMAGE_SUFFIXES and e.is_file():
                    found.append(Path(e.path))
    return found

