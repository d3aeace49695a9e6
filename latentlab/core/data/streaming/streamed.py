"""Images read from disk a batch at a time instead of held in memory: `StreamedPixels` answers like
`Pixels` (len, shape, indexing by rows gives float32 in [0, 1]) over a column of encoded images that
a source (core.data.hf) reads on demand, and decodes with PIL only the rows asked for. `BytesChunk`
reads one row's encoded bytes out of an Arrow binary column (validated first) without copying it.

Every image is checked as it is decoded: its declared size before decoding (a small file may claim
gigapixels), its decoded size against the dataset's, and a broken one is refused in one sentence
that names its row. Memory stays bounded whatever the number of images: only the rows of the batch
being decoded are in memory (plus what the source caches, which it bounds itself).
"""

from __future__ import annotations

import io
import warnings
from contextlib import contextmanager
from typing import Protocol

import numpy as np

from latentlab.core.errors import DatasetError
from latentlab.core.text import reason

from ..pixels import Pixels, unit_float

# One image of a streamed dataset: the same bound as an image folder's.
MAX_IMAGE_PIXELS = 4096 * 4096
# The formats an encoded image may have (PIL tries only these: telling them apart is most of the cost
# of opening a small image).
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
# PIL modes that hold one channel; every other mode is read as RGB.
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


class ImageSource(Protocol):
    """Where the encoded images of one split come from (core.data.hf implements it)."""

    where: str                      # the file or folder, for error sentences

    def __len__(self) -> int: ...

    def encoded(self, rows: np.ndarray) -> list:
        """The encoded bytes (bytes-like, or None when a row has none) of sorted file rows."""

    def epoch_order(self, rows: np.ndarray, generator) -> np.ndarray | None:
        """A shuffled order of positions 0..len(rows)-1 that reads well from this source, or None
        for a uniform permutation (torch.randperm with `generator`)."""


@contextmanager
def opened(blob):
    """A PIL image of encoded bytes, its header read; Pillow's warning of a decompression bomb is an error."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(blob), formats=FORMATS) as im:
            yield im


def decode_images(blobs, shape: tuple[int, int, int], where: str, rows) -> np.ndarray:
    """Encoded PNG/JPEG/... bytes to uint8 (n, C, H, W) of `shape`, each checked before and after decoding."""
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    out = np.empty((len(blobs), c, h, w), np.uint8)
    mode = "L" if c == 1 else "RGB"
    for i, blob in enumerate(blobs):
        row = int(rows[i])
        if blob is None:
            raise DatasetError(f"In {where}, row {row:,} holds no image bytes.")
        try:
            with opened(blob) as im:
                if im.size != (w, h):
                    raise DatasetError(f"In {where}, row {row:,} is a {im.size[0]:,}×{im.size[1]:,} image but the "
                                       f"first is {w:,}×{h:,}; all images must have the same size.")
                if im.mode.startswith("I;16") or im.mode == "I":   # 16-bit grey: scaled, not clipped at 255
                    from ..image_folder import rgb8

                    pixels = rgb8(im)[..., 0] if c == 1 else rgb8(im)
                else:
                    pixels = np.asarray(im.convert(mode) if im.mode != mode else im)
        except DatasetError:
            raise
        except Image.DecompressionBombError:
            raise DatasetError(f"In {where}, row {row:,} claims a size far beyond the dataset's {w:,}×{h:,} "
                               "(a decompression bomb).") from None
        except UnidentifiedImageError:
            raise DatasetError(f"In {where}, row {row:,} is not a readable image (unknown or damaged format).") from None
        except Exception as exc:  # noqa: BLE001 - PIL reports broken files with many exception types
            raise DatasetError(f"In {where}, row {row:,} is not a readable image ({reason(exc)}).") from None
        if pixels.shape[:2] != (h, w):
            raise DatasetError(f"In {where}, row {row:,} decodes to {pixels.shape[1]}×{pixels.shape[0]} pixels "
                               f"but declares {w}×{h}.")
        out[i] = pixels[None] if c == 1 else pixels.transpose(2, 0, 1)
    return out


def first_image_shape(blob, where: str) -> tuple[int, int, int]:
    """(C, H, W) the dataset's images are read as, from its first image: one channel for grey modes."""
    from PIL import Image

    if blob is None:
        raise DatasetError(f"In {where}, the first row holds no image bytes.")
    try:
        with opened(blob) as im:
            w, h, mode = im.size[0], im.size[1], im.mode
    except Image.DecompressionBombError:
        raise DatasetError(f"In {where}, the first image claims more pixels than any image may have "
                           "(a decompression bomb).") from None
    except Exception as exc:  # noqa: BLE001
        raise DatasetError(f"In {where}, the first image is not readable ({reason(exc)}).") from None
    if w * h > MAX_IMAGE_PIXELS or min(w, h) < 1:
        raise DatasetError(f"In {where}, the first image is {w:,}×{h:,} pixels; images of 1 to {MAX_IMAGE_PIXELS:,} "
                           "pixels can be used.")
    return (1 if mode in GRAY_MODES else 3, h, w)


class DecodedRows:
    """What `StreamedPixels.stored` is: the same rows as uint8 0..255 (what code moving bytes to a
    device reads), decoded on indexing."""

    __slots__ = ("_pixels",)

    def __init__(self, pixels: StreamedPixels):
        self._pixels = pixels

    shape = property(lambda self: self._pixels.shape)
    ndim = 4
    dtype = np.dtype(np.uint8)

    def __len__(self) -> int:
        return len(self._pixels)

    def __getitem__(self, key) -> np.ndarray:
        return self._pixels.decode(key)

    def __array__(self, dtype=None, copy=None):
        raise DatasetError(self._pixels.refusal())


class StreamedPixels(Pixels):
    """(N, C, H, W) images of one split, decoded from `source` when indexed; never held whole.

    `rows` maps this split's positions to the source's rows (None: all of them, in order).
    """

    __slots__ = ("source", "rows", "image_shape")
    streamed = True

    def __init__(self, source: ImageSource, image_shape: tuple[int, int, int], rows: np.ndarray | None = None):
        self.source = source
        self.image_shape = tuple(int(v) for v in image_shape)
        self.rows = None if rows is None else np.ascontiguousarray(rows, dtype=np.int64)

    @property
    def stored(self) -> DecodedRows:
        return DecodedRows(self)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.image_shape)

    def __len__(self) -> int:
        return len(self.source) if self.rows is None else len(self.rows)

    def __getitem__(self, key) -> np.ndarray:
        return unit_float(self.decode(key))

    def __array__(self, dtype=None, copy=None):
        raise DatasetError(self.refusal())

    def refusal(self) -> str:
        return f"The images of {self.source.where} are read from disk a batch at a time and cannot be taken whole."

    def positions(self, key) -> tuple[np.ndarray, bool]:
        """The positions `key` selects (int, slice, integer or boolean array) and whether it was one int."""
        n = len(self)
        if isinstance(key, (int, np.integer)):
            i = int(key) + (n if key < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"index {int(key)} is out of bounds for {n} images")
            return np.array([i], np.int64), True
        if isinstance(key, slice):
            return np.arange(*key.indices(n), dtype=np.int64), False
        if hasattr(key, "cpu") and hasattr(key, "numpy"):   # a torch tensor of rows
            key = key.cpu().numpy()
        key = np.asarray(key)
        if key.dtype == bool:
            if key.shape != (n,):
                raise IndexError(f"a boolean index of shape {key.shape} does not fit {n} images")
            return np.flatnonzero(key), False
        if key.dtype.kind not in "iu" or key.ndim != 1:
            raise IndexError(f"images are indexed by an int, a slice or a 1-D array of rows, not {key.dtype} {key.shape}")
        pos = key.astype(np.int64)
        pos = np.where(pos < 0, pos + n, pos)
        if len(pos) and (pos.min() < 0 or pos.max() >= n):
            raise IndexError(f"row indices out of bounds for {n} images")
        return pos, False

    def decode(self, key) -> np.ndarray:
        """The selected images as uint8 (n, C, H, W), or (C, H, W) for one int."""
        pos, single = self.positions(key)
        file_rows = pos if self.rows is None else self.rows[pos]
        order = np.argsort(file_rows, kind="stable")   # read in file order, hand back in the order asked
        sorted_rows = file_rows[order]
        decoded = decode_images(self.source.encoded(sorted_rows), self.image_shape, self.source.where, sorted_rows)
        out = np.empty_like(decoded)
        out[order] = decoded
        return out[0] if single else out

    def epoch_order(self, generator) -> np.ndarray | None:
        """A shuffled order of this split's positions suited to its source, or None for a uniform one."""
        rows = np.arange(len(self), dtype=np.int64) if self.rows is None else self.rows
        return self.source.epoch_order(rows, generator)

    def __repr__(self) -> str:
        return f"StreamedPixels(shape={self.shape}, from {self.source.where})"


def image_bytes(column, where: str):
    """The binary array of encoded images in one Arrow chunk (from bytes or a struct's `bytes`), and a
    boolean mask of rows without bytes (None when none lacks them)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = column.type
    nulls = column.is_null() if column.null_count else None
    if pa.types.is_struct(t):
        if t.get_field_index("bytes") < 0:
            raise DatasetError(f"In {where}, the image column is a struct without a bytes field.")
        inner = column.field("bytes")
        nulls = inner.is_null() if nulls is None else pc.or_(nulls, inner.is_null())
        column, t = inner, inner.type
    if not (pa.types.is_binary(t) or pa.types.is_large_binary(t)):
        raise DatasetError(f"In {where}, the image column holds {t}; expected encoded image bytes or a struct with bytes.")
    try:
        column.validate(full=True)
    except pa.ArrowException as exc:
        raise DatasetError(f"In {where}, the image column is damaged ({reason(exc)}).") from None
    mask = None if nulls is None or not nulls.to_numpy(zero_copy_only=False).any() else nulls.to_numpy(zero_copy_only=False)
    return column, mask


class BytesChunk:
    """Row i's encoded bytes of one Arrow binary array, sliced from its buffers without copying."""

    __slots__ = ("offsets", "data", "mask", "nbytes")

    def __init__(self, column, mask):
        _, offs, data = column.buffers()
        import pyarrow as pa

        dtype = np.int64 if pa.types.is_large_binary(column.type) else np.int32
        self.offsets = np.frombuffer(offs, dtype)[column.offset:column.offset + len(column) + 1]
        self.data = memoryview(data) if data is not None else memoryview(b"")
        self.mask = mask
        self.nbytes = int(self.offsets[-1] - self.offsets[0]) + self.offsets.nbytes

    def get(self, i: int):
        if self.mask is not None and self.mask[i]:
            return None
        return self.data[self.offsets[i]:self.offsets[i + 1]]


def is_streamed(x) -> bool:
    return bool(getattr(x, "streamed", False))
