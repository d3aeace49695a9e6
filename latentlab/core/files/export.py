"""Image strips, grids and GIFs of decoded images, written with torchvision and Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, PngImagePlugin
from torchvision.utils import make_grid

from latentlab.core.errors import LatentLabError


def grid_image(images: np.ndarray, nrow: int, scale: int = 4, padding: int = 1) -> Image.Image:
    """Images (N, C, H, W) in [0, 1] as one PIL image, `nrow` per row, each pixel `scale`× (nearest)."""
    t = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    grid = make_grid(t, nrow=max(1, nrow), padding=padding, pad_value=1.0)
    arr = (grid.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy())
    img = Image.fromarray(arr[..., 0] if images.shape[1] == 1 else arr, mode="L" if images.shape[1] == 1 else "RGB")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    return img


def save_png(path, image: Image.Image, metadata: dict | None = None) -> Path:
    info = PngImagePlugin.PngInfo()
    for k, v in (metadata or {}).items():
        info.add_text(str(k), str(v))
    return _save(path, lambda f: image.save(f, format="PNG", pnginfo=info))


def save_gif(path, frames: np.ndarray, scale: int = 8, frame_ms: int = 120, metadata: dict | None = None) -> Path:
    """An animation of images (N, C, H, W) that plays forward then back, looping forever."""
    pics = [grid_image(f[None], nrow=1, scale=scale, padding=0).convert("P", palette=Image.Palette.ADAPTIVE)
            for f in frames]
    seq = pics + pics[-2:0:-1]
    comment = "; ".join(f"{k}={v}" for k, v in (metadata or {}).items()).encode()[:250]
    return _save(path, lambda f: seq[0].save(f, format="GIF", save_all=True, append_images=seq[1:],
                                             duration=frame_ms, loop=0, comment=comment))


def _save(path, write) -> Path:
    path = Path(path)
    try:
        with open(path, "wb") as f:
            write(f)
    except OSError as exc:
        raise LatentLabError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    return path
