"""Decoded images as pixmaps for the meaning panels: a grid with crisp pixels, and a captioned tile."""

from __future__ import annotations

import numpy as np
from PySide6 import QtGui

from latentlab.gui.widgets.images import pil_to_pixmap, to_pixmap


def grid_pixmap(images: np.ndarray, columns: int, px: int = 48, padding: int = 2) -> QtGui.QPixmap:
    """Images (N, C, H, W) in rows of `columns`, each scaled by a whole factor to about px pixels."""
    from latentlab.core.files.export import grid_image

    scale = max(1, round(px / max(1, images.shape[-1])))
    return pil_to_pixmap(grid_image(np.asarray(images, np.float32), nrow=columns, scale=scale, padding=padding))


def tile(image: np.ndarray, px: int) -> QtGui.QPixmap:
    return to_pixmap(image, px)
