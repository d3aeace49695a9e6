"""numpy images (C, H, W) in [0, 1] to Qt pixmaps, scaled with nearest-neighbour so pixels stay crisp,
and the card that shows one beside the mouse."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets


def to_qimage(img: np.ndarray) -> QtGui.QImage:
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[0] in (1, 3):
        img = img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
    u8 = np.ascontiguousarray(np.clip(np.asarray(img) * 255.0 + 0.5, 0, 255).astype(np.uint8))
    h, w = u8.shape[:2]
    if u8.ndim == 2:
        q = QtGui.QImage(u8.data, w, h, w, QtGui.QImage.Format.Format_Grayscale8)
    else:
        q = QtGui.QImage(u8.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888)
    return q.copy()  # detach from the numpy buffer, which dies with this frame


def to_pixmap(img: np.ndarray, size: int) -> QtGui.QPixmap:
    """Largest integer-free nearest-neighbour scaling of the image that fits in size x size (none for None)."""
    if img is None:
        return QtGui.QPixmap()
    # Scaled as 32-bit pixels: the same pixels, but Qt scales 8-bit grey about six times slower
    # (a decoded view's image took longer to scale than to decode).
    q = to_qimage(img).convertToFormat(QtGui.QImage.Format.Format_RGB32)
    return QtGui.QPixmap.fromImage(q.scaled(size, size, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                                            QtCore.Qt.TransformationMode.FastTransformation))


def pil_to_pixmap(img) -> QtGui.QPixmap:
    """A Pillow image (L or RGB) as a pixmap, pixel for pixel."""
    arr = np.asarray(img.convert("L" if img.mode == "L" else "RGB"), dtype=np.float32) / 255.0
    return QtGui.QPixmap.fromImage(to_qimage(arr if arr.ndim == 2 else np.transpose(arr, (2, 0, 1))))


class HoverCard(QtWidgets.QFrame):
    """An image and a caption floating beside the mouse, kept inside its parent widget."""

    def __init__(self, parent: QtWidgets.QWidget):
        super().__init__(parent)
        self.setObjectName("hoverCard")
        # It floats where the next press may land: the press (and the drag it starts) goes to the plot.
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setStyleSheet("#hoverCard { background: rgba(255,255,255,235); border: 1px solid #888; } "
                           "QLabel { color: #111; }")
        self.image = QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignCenter)
        self.text = QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignCenter)
        card = QtWidgets.QVBoxLayout(self)
        card.setContentsMargins(4, 4, 4, 4)
        card.setSpacing(2)
        card.addWidget(self.image)
        card.addWidget(self.text)
        self.hide()

    def show_near(self, at: QtCore.QPoint, pixmap: QtGui.QPixmap, text: str) -> None:
        self.image.setPixmap(pixmap)
        self.text.setText(text)
        self.adjustSize()
        parent = self.parentWidget()
        x = min(at.x() + 14, parent.width() - self.width() - 2)
        y = min(at.y() + 14, parent.height() - self.height() - 2)
        self.move(max(0, x), max(0, y))
        self.show()
        self.raise_()
