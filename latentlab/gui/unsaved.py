"""Unsaved work: before an action drops a model trained in the window or a β sweep that no file
holds, the window asks Save / Discard / Cancel, as editors do; nothing is asked when there is none."""

from __future__ import annotations

import weakref

from PySide6 import QtGui, QtWidgets

from latentlab.core.errors import LatentLabError
from latentlab.core.text import short

Button = QtWidgets.QMessageBox.StandardButton


class UnsavedWork:
    """The session's `confirm_discard` hook for one window. `ask` is the only blocking call (tests
    replace it with an answer); Save runs the same save dialogs as the File menu and the sweep tab."""

    def __init__(self, window, session):
        # The window owns this helper: a strong reference back would keep a deleted window's wrapper alive.
        self._window, self.session = weakref.ref(window), session
        session.confirm_discard = self.confirm

    @property
    def window(self):
        return self._window()

    def pending(self, work: str = "all") -> list[str]:
        """What would be lost, one phrase each: work is "model", "sweep" or "all"."""
        md, runs = self.session.model_data, self.session.runs
        lost = []
        if work in ("model", "all") and md.model is not None and md.unsaved:
            lost.append(f"the model trained here ({short(md.title, 60)})")
        if work in ("sweep", "all") and runs.sweep_unsaved:
            lost.append(f"the β sweep of {len(runs.sweep_points)} models")
        return lost

    def confirm(self, action: str, work: str = "model") -> bool:
        """True when the action may go ahead: nothing unsaved, saved now, or discarded by choice."""
        self.session.analyses.saver.wait()   # a save still being written decides what is unsaved
        lost = self.pending(work)
        if not lost:
            return True
        answer = self.ask(action, lost)
        if answer == Button.Save:
            return self.save(work)
        return answer == Button.Discard

    def ask(self, action: str, lost: list[str]) -> Button:
        """Save, Discard or Cancel, from the user."""
        if QtGui.QGuiApplication.platformName() in ("offscreen", "minimal"):
            return Button.Discard   # nobody can see a dialog there (screenshots, headless scripts)
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, "Unsaved work",
                                    f"Save {' and '.join(lost)} before you {action}?",
                                    Button.Save | Button.Discard | Button.Cancel, self.window)
        box.setInformativeText("Discarded, it is gone: nothing else holds it.")
        box.setDefaultButton(Button.Save)
        return Button(box.exec())

    def save(self, work: str) -> bool:
        """Save what is unsaved through the usual dialogs; False if any is cancelled or fails."""
        md, runs = self.session.model_data, self.session.runs
        if work in ("model", "all") and md.unsaved:
            self.window.save_checkpoint_dialog()
            self.session.analyses.saver.wait()   # the file is written on a worker: on disk before going on
            if md.unsaved:
                return False
        if work in ("sweep", "all") and runs.sweep_unsaved:
            folder = QtWidgets.QFileDialog.getExistingDirectory(self.window, "Save the sweep into a folder")
            if not folder:
                return False
            try:
                runs.save_sweep(folder)
            except LatentLabError as exc:
                self.session.report_error(str(exc))
                return False
        return True
