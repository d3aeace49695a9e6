"""What the window says about itself outside the views: the error banner at the top and, in the
status bar, the progress of long jobs with a Stop button."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

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
        self.bar.setMaximumWidth(180)
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
        self.bar.setFormat(f"{label} · {100 * fraction:.0f}%")
        self.bar.setToolTip(label)
        self.bar.show()
        self.stop.show()
