"""Views in hidden tabs should not redraw on every training update; they catch up when shown."""

from __future__ import annotations

from PySide6 import QtWidgets


class LazyView(QtWidgets.QWidget):
    def request_refresh(self, *_args) -> None:
        if self.isVisible():
            self.refresh()
            self._dirty = False
        else:
            self._dirty = True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if getattr(self, "_dirty", True):
            self._dirty = False
            self.refresh()

    def refresh(self) -> None:  # pragma: no cover - every view implements it
        raise NotImplementedError
