"""What the window says about itself outside the views: the error banner at the top and, in the
status bar, one line of status, the training run's progress, and long jobs' progress with Stop."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from latentlab.core.text import short


class ErrorBanner(QtWidgets.QFrame):
    """One clear sentence at the top of the window; the app stays usable underneath."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setStyleSheet("#errorBanner { background: #fdecea; border-bottom: 1px solid #e0a8a0; } "
                           "QLabel { color: #7a1f12; }")
        self.label = QtWidgets.QLabel(wordWrap=True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QtWidgets.QToolButton(text="✕", autoRaise=True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(short(text))
        self.show()


class TaskProgress:
    """The newest long job's progress bar and a Stop button, added to a status bar; hidden when no
    job is running. Jobs report (key, label, fraction); a negative fraction means it ended."""

    def __init__(self, status_bar: QtWidgets.QStatusBar):
        self.bar = QtWidgets.QProgressBar()
        self.bar.setObjectName("taskProgress")
        self.bar.setRange(0, 1000)
        # Wide enough for "Encoding 60,000 images · 40%" on one line; longer labels are elided, never wrapped.
        self.bar.setFixedWidth(self.bar.fontMetrics().horizontalAdvance("Computing the KL per point · 100%") + 24)
        self.stop = QtWidgets.QToolButton(text="Stop")
        self.stop.setObjectName("taskStop")
        self.stop.setToolTip("Stop this job")
        status_bar.addPermanentWidget(self.bar)
        status_bar.addPermanentWidget(self.stop)
        self.bar.hide()
        self.stop.hide()
        self._tasks: dict[str, tuple[str, float]] = {}

    def on_task(self, key: str, label: str, fraction: float) -> None:
        self._tasks.pop(key, None)
        if fraction >= 0:
            self._tasks[key] = (label, fraction)   # the newest last
        if not self._tasks:
            self.bar.hide()
            self.stop.hide()
            return
        label, fraction = self._tasks[next(reversed(self._tasks))]
        self.bar.setValue(int(1000 * fraction))
        room = self.bar.width() - 12 - self.bar.fontMetrics().horizontalAdvance(" · 100%")
        self.bar.setFormat(f"{self.bar.fontMetrics().elidedText(label, QtCore.Qt.TextElideMode.ElideRight, room)}"
                           f" · {100 * fraction:.0f}%")
        self.bar.setToolTip(label)
        self.bar.show()
        self.stop.show()


class ElidedLabel(QtWidgets.QLabel):
    """One line of plain text that never widens its window: cut with an ellipsis where it does not
    fit, the whole text in its tooltip."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def text(self) -> str:
        return self._full

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(40, super().minimumSizeHint().height())

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        super().setText(self.fontMetrics().elidedText(self._full, QtCore.Qt.TextElideMode.ElideRight, max(0, self.width())))


class RunProgress:
    """The training run's or sweep's progress bar (`trainProgress`) and its status line."""

    def __init__(self, status_bar: QtWidgets.QStatusBar, line: QtWidgets.QLabel):
        self.line = line
        self.bar = QtWidgets.QProgressBar()
        self.bar.setObjectName("trainProgress")
        self.bar.setRange(0, 1000)
        self.bar.setFixedWidth(self.bar.fontMetrics().horizontalAdvance("sweep 24/24") + 60)
        self.bar.hide()
        status_bar.addPermanentWidget(self.bar)

    def on_progress(self, snap) -> None:
        epoch = f"{min(snap.epoch + 1, snap.epochs)}/{snap.epochs}"
        self.bar.setValue(int(1000 * snap.fraction))
        self.bar.setFormat(f"epoch {epoch}")
        self.line.setText(f"Training on {snap.device} · epoch {epoch} · step {snap.step:,} · ELBO {snap.elbo:.2f} nats "
                          f"(recon {snap.recon:.2f}, KL {snap.kl:.2f}) · β {snap.beta:.3g} · {snap.samples_per_s:,.0f} samples/s")

    def on_sweep_progress(self, i: int, n: int, snap) -> None:
        self.bar.setValue(int(1000 * (i + snap.fraction) / n))
        self.bar.setFormat(f"sweep {i + 1}/{n}")
        self.line.setText(f"β sweep: model {i + 1} of {n} (β {snap.beta:.3g}) · epoch {min(snap.epoch + 1, snap.epochs)}/"
                          f"{snap.epochs} · ELBO {snap.elbo:.2f} nats · {snap.samples_per_s:,.0f} samples/s on {snap.device}")

    def on_running(self, running: bool) -> None:
        self.bar.setVisible(running)
        if running:
            self.bar.setValue(0)
