"""Images as a dataset holds them: 8-bit sources stay uint8 in memory (a quarter of float32: 950,000
MNIST-sized images are 745 MB instead of 2.9 GB) and become float32 in [0, 1] one batch at a time,
where a model consumes them.

`Pixels` is that store. Indexing it is the one way to read images: `pixels[rows]` is always float32
in [0, 1], whatever the storage. `pixels.stored` is the array itself, for code that moves bytes
(the training loop uploads it to the device once) and converts each batch there with `unit_tensor`.
"""

from __future__ import annotations

import numpy as np

BYTE_SCALE = np.float32(255.0)


def unit_float(x) -> np.ndarray:
    """Images as float32 in [0, 1]: uint8 is read as 0..255 and divided in float32 (no float64
    intermediate), float32 passes through untouched, any other dtype is cast to float32."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        out = x.astype(np.float32)
        out /= BYTE_SCALE
        return out
    return x if x.dtype == np.float32 else x.astype(np.float32)


_SCALES = {}   # device -> the divisor as a tensor there


def unit_tensor(t, out=None):
    """The torch counterpart of unit_float, on t's device: uint8 becomes float32 / 255 (into `out`
    when given), float32 passes through. The divisor is a tensor on the device, not a Python number:
    CUDA multiplies by the reciprocal of a scalar, which can differ from unit_float in the last bit."""
    import torch

    if t.dtype == torch.uint8:
        scale = _SCALES.get(t.device)
        if scale is None:
            scale = _SCALES[t.device] = torch.tensor(255.0, device=t.device)
        # Widened by a plain copy first: a division that also casts from uint8 runs a slower loop
        # (about 3× on 4,096 images); the result is the same float32 division, bit for bit.
        out = torch.empty(t.shape, dtype=torch.float32, device=t.device) if out is None else out
        return out.copy_(t).div_(scale)
    return t if t.dtype == torch.float32 else t.float()


def stored(x):
    """The array behind x: a Pixels' store, or x itself (an array of images, uint8 or float)."""
    return x.stored if isinstance(x, Pixels) else x


def batch_tensor(x, start: int, stop: int, device):
    """Rows start:stop of images (Pixels, or an array of uint8 0..255 or floats in [0, 1]) as a
    float32 tensor in [0, 1] on `device`: the stored bytes travel and are converted there."""
    import torch

    part = plain_layout(stored(x)[start:stop])
    return unit_tensor(torch.from_numpy(part).to(device))


def plain_layout(a: np.ndarray) -> np.ndarray:
    """a as a C-contiguous array whose strides are the plain ones, also on its length-1 axes: numpy
    and torch call an (N, 1, H, W) view of N×H×W×1 memory contiguous, but torch's convolutions then
    answer in channels-last layout, where a model's `x.view(B, -1)` fails."""
    a = np.ascontiguousarray(a)
    want = tuple(int(np.prod(a.shape[i + 1:])) * a.itemsize for i in range(a.ndim))
    return a if a.strides == want or a.size == 0 else np.lib.stride_tricks.as_strided(a, a.shape, want)


class Pixels:
    """A read-only view of (N, C, H, W) images stored as uint8 (0..255) or float32 ([0, 1]).

    It answers len(), shape, ndim and dtype like the float32 array it stands for, and indexing it
    returns float32 arrays in [0, 1]; nothing converts the whole store unless np.asarray asks for it.
    """

    __slots__ = ("stored",)

    def __init__(self, stored: np.ndarray):
        stored = np.asarray(stored)
        if stored.dtype not in (np.uint8, np.float32):
            stored = stored.astype(np.float32)
        if stored.ndim != 4:
            raise ValueError(f"Pixels hold (N, C, H, W) images, not an array of shape {stored.shape}")
        self.stored = stored

    @property
    def shape(self) -> tuple[int, ...]:
        return self.stored.shape

    @property
    def ndim(self) -> int:
        return 4

    @property
    def dtype(self) -> np.dtype:
        """What indexing returns (the storage may be narrower: see `stored`)."""
        return np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.stored)

    def __getitem__(self, key) -> np.ndarray:
        return unit_float(self.stored[key])

    def __array__(self, dtype=None, copy=None):
        out = unit_float(self.stored)
        if out is self.stored:
            out = out.copy()   # callers of np.asarray must not write into the store
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"Pixels(shape={self.shape}, stored as {self.stored.dtype})"


def as_pixels(x) -> Pixels:
    """x as Pixels: Pixels pass through, arrays (N, C, H, W) are wrapped (uint8 and float32 without a copy)."""
    return x if isinstance(x, Pixels) else Pixels(x)
