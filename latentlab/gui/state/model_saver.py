"""Saving the model from the window, off the GUI thread.

Writing a large model's weights (with the fsync that makes the save durable) takes seconds, about
2 s for 291 MB on the reference machine, which would freeze the window for as long. So the file is
written by a worker, from the read-only copy of the weights that workers share (taken when the save
is asked for: weights that change meanwhile stay unsaved). Saves run one at a time, in the order
asked, so two saves to one file end with the later one's content. Whoever must know that a save is
on disk (the unsaved-work questions, closing the window) waits for it with `wait`, which keeps the
window answering.

The file is streamed from the weights (core.files.safetensors_file), so the worker holds the
interpreter lock only in short stretches; benchmarks/save_stall.py measures the window meanwhile.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

from PySide6 import QtCore


@dataclass(frozen=True)
class _Save:
    path: Path
    model: object        # the shared read-only copy of the weights to save
    version: int         # the weights' version when the save was asked for
    foreign: bool
    spec: str | None
    dataset: str
    history: tuple
    preview: tuple | None


def _write(save: _Save) -> str | None:
    """Runs on a worker: None once the file is on disk, or the sentence that says why not."""
    from latentlab.core.errors import LatentLabError
    from latentlab.core.files.model_spec import save_model
    from latentlab.core.text import reason, short

    try:
        save_model(save.path, save.model, dataset=save.dataset, history=save.history, preview=save.preview)
    except LatentLabError as exc:
        return str(exc).replace("--out ", "", 1)
    except Exception as exc:   # noqa: BLE001 - a disk that fills up mid-write, a model too large to serialise:
        # the queue must hear of every save's end, so nothing escapes as an unreported worker error
        return f"Cannot write {short(str(save.path), 120)}: {reason(exc)}; the model in the window is kept."
    return None


class ModelSaver:
    """The window's saves of its model: queued here, written by the JobRunner's workers."""

    def __init__(self, jobs, model_data, model_copy):
        self.jobs, self.model_data, self.model_copy = jobs, model_data, model_copy
        self._queue: deque[_Save] = deque()
        self._count = 0

    @property
    def busy(self) -> bool:
        """A save is being written or waits its turn."""
        return bool(self._queue)

    def save(self, path, *, dataset: str, history, preview) -> None:
        """Save the current weights to `path` (checked by the caller) once earlier saves are done."""
        md = self.model_data
        self._queue.append(_Save(Path(path), self.model_copy(), md.version, md.foreign, md.spec, dataset,
                                 tuple(history), preview))
        self.jobs.status.emit(f"Saving {path}…")
        if len(self._queue) == 1:
            self._start()

    def _start(self) -> None:
        self._count += 1
        # A key of its own: a later save must not drop this one's result (whether it reached the disk).
        self.jobs.submit(f"save {self._count}", _write, self._queue[0], on_result=self._done)

    def _done(self, error: str | None) -> None:
        save = self._queue.popleft()
        md = self.model_data
        if error is not None:
            self.jobs.report(error)
        else:
            # A foreign model's source stays its user's weights file, which is never written. Weights
            # changed since the save was asked for are not those on disk: still unsaved.
            md.set_saved(md.version == save.version, None if save.foreign else save.path)
            self.jobs.status.emit(f"Saved {save.path}" + (
                f"; reopen it with --model {save.spec} --weights {save.path}" if save.foreign else ""))
        if self._queue:
            self._start()

    def wait(self, timeout_ms: int = 120_000) -> bool:
        """Keep the window answering until every save asked for is on disk (or failed); False on timeout."""
        deadline = QtCore.QDeadlineTimer(timeout_ms)
        while self._queue and not self.jobs.closed and not deadline.hasExpired():
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
            QtCore.QThread.msleep(5)
        return not self._queue
