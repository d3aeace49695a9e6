"""The image decoded at the current latent point, with z and log p(z)."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from latentlab.gui.state.parts import Cursor
from latentlab.gui.widgets.images import to_pixmap

IMAGE_PX = 224      # the image's side where there is room
MIN_IMAGE_PX = 96   # and on a short screen, where the Training form below it scrolls


class ImageLabel(QtWidgets.QLabel):
    """Asks for IMAGE_PX square and makes do with MIN_IMAGE_PX, whatever pixmap it shows (a QLabel
    would ask for its pixmap's size, which follows the label's: a loop that only ever shrinks)."""

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(IMAGE_PX, IMAGE_PX)

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(MIN_IMAGE_PX, MIN_IMAGE_PX)


class DecodedView(QtWidgets.QFrame):
    def __init__(self, cursor: Cursor, parent=None):
        super().__init__(parent)
        self.setObjectName("decodedView")
        self.cursor = cursor
        self.image_label = ImageLabel(alignment=QtCore.Qt.AlignmentFlag.AlignCenter)
        self.image_label.setStyleSheet("background: #202020;")
        self.z_label = QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignCenter)
        self.z_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.z_label.setWordWrap(True)
        # Room for two lines from the start, so new text never re-lays out the window mid-drag.
        self.z_label.setMinimumHeight(2 * self.z_label.fontMetrics().lineSpacing() + 4)
        # How a map view found z (UMAP's inverse, or the nearest point for t-SNE); shown only then.
        self.note_label = QtWidgets.QLabel(alignment=QtCore.Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.note_label.setStyleSheet("color: #555; font-style: italic;")
        self.note_label.hide()
        title = QtWidgets.QLabel("<b>Decoded E[x | z]</b>")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(title)
        layout.addWidget(self.image_label, 1)
        layout.addWidget(self.z_label)
        layout.addWidget(self.note_label)
        cursor.changed.connect(self.refresh)
        self.current_image: np.ndarray | None = None

    def refresh(self) -> None:
        s = self.cursor
        if s.image is None or s.z is None:
            self.z_label.setText(s.waiting)
            return
        from latentlab.core.inference.analysis import log_prior

        self.current_image = s.image
        # Never larger than the label: a squeezed column (a map's caption line) must not paint over z.
        side = max(64, min(self.image_label.width(), self.image_label.height()))
        self.image_label.setPixmap(to_pixmap(s.image, side))
        shown = s.z if len(s.z) <= 8 else s.z[:8]
        coords = ", ".join(f"{v:+.2f}" for v in shown) + (", …" if len(s.z) > 8 else "")
        prior = s.prior
        if prior is None:
            self.z_label.setText(f"z = ({coords})")
        else:
            assumed = "" if prior.declared else " (N(0, I) assumed)"
            self.z_label.setText(f"z = ({coords})<br>log p(z) = {float(log_prior(s.z, prior)):.2f} nats{assumed}")
        self.note_label.setText(s.note)
        if self.note_label.isHidden() == bool(s.note):
            self.note_label.setVisible(bool(s.note))

    def hasHeightForWidth(self) -> bool:
        # Its wrapping caption has its lines' room already; reported up, height-for-width makes the
        # column's layout squeeze the Training form below it under its minimum height.
        return False

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.current_image is not None:
            self.refresh()
