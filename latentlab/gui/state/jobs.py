"""The one runner for background work in the window.

Every job has a key ("encode", "posterior", "run", ...). Submitting under a key supersedes whatever
was submitted under it before: an older job still finishes (a thread cannot be killed) but its
result is dropped, so the newest request always wins. Workers get read-only model copies made here,
one per weights version, so many jobs on the same weights share one copy. Every failure ends up in
`errorRaised` as one sentence. Long work that can report progress and be stopped goes through
`submit_tracked`: its progress reaches `task` (the status bar shows it) and `cancel` stops it.
Shaped after napari's layer slicer (submit, drop superseded, wait_until_idle, shutdown) on superqt's
thread workers.
"""

from __future__ import annotations

import copy
import threading
from typing import Callable

import shiboken6
from PySide6 import QtCore


def _ending(fn: Callable) -> Callable:
    """fn, with a SystemExit (or any other exception that is not an Exception, which the worker
    would not report) turned into an error the runner reports: otherwise the worker thread ends
    without a word and the job never finishes (a user's model calling sys.exit())."""
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:
            raise
        except BaseException as exc:  # noqa: BLE001 - see the docstring
            from latentlab.core.errors import LatentLabError
            from latentlab.core.text import reason

            raise LatentLabError(f"The background work stopped on {type(exc).__name__} ({reason(exc, 80)}); "
                                 "the current model and data are kept.") from None

    return run


class JobRunner(QtCore.QObject):
    errorRaised = QtCore.Signal(str)   # one sentence for the banner
    status = QtCore.Signal(str)        # the status bar's line
    task = QtCore.Signal(str, str, float)   # key, what runs, fraction done; a negative fraction: it is over
    _progressed = QtCore.Signal(str, int, str, float)   # the same from a worker thread, with its sequence number

    def __init__(self, parent=None):
        super().__init__(parent)
        self._latest: dict[str, int] = {}
        self._in_flight = 0
        self._closed = False
        self._stopping = threading.Event()   # set at shutdown; long loads poll it and end early
        self._copy_version: object = None
        self._copy = None
        self._stops: dict[str, tuple[threading.Event, str]] = {}
        self._progressed.connect(self._on_progressed)

    # ----- submitting ---------------------------------------------------------------------------
    def submit(self, key: str, fn: Callable, *args, on_result: Callable | None = None) -> None:
        """Run fn(*args) on the thread pool; on_result(result) runs in this thread unless a newer
        job was submitted under the same key (or the key was cancelled) meanwhile."""
        if not self._closed:
            self._start(key, self._supersede(key), fn, args, on_result)

    def _start(self, key: str, seq: int, fn: Callable, args: tuple, on_result: Callable | None) -> None:
        from superqt.utils import create_worker  # slow to import: on first use

        # superqt keeps a started worker alive until it finishes; holding it here as well would keep
        # its arguments (a model copy, the data) alive after it is done.
        worker = create_worker(_ending(fn), *args, _start_thread=False, _ignore_errors=True)
        if on_result is not None:
            worker.returned.connect(lambda result: self.is_current(key, seq) and on_result(result))
        worker.errored.connect(self.report)
        self._track(worker)

    def submit_tracked(self, key: str, label: str, fn: Callable, *args, on_result: Callable | None = None) -> None:
        """Like submit, for long work: fn(*args, progress=, should_stop=) reports fractions done through
        progress(f) or progress(f, "phase text") and polls should_stop() (raising core.errors.Cancelled when it answers True)."""
        if self._closed:
            return
        self._stop_work(key)
        stop = threading.Event()
        self._stops[key] = (stop, label)
        seq = self._supersede(key)

        def report(fraction: float, phase: str | None = None) -> None:
            self._progressed.emit(key, seq, phase or label, min(max(float(fraction), 0.0), 1.0))

        def tracked():
            try:
                return fn(*args, progress=report, should_stop=stop.is_set)
            finally:
                self._progressed.emit(key, seq, label, -1.0)

        self.task.emit(key, label, 0.0)
        self._start(key, seq, tracked, (), on_result)

    def _on_progressed(self, key: str, seq: int, label: str, fraction: float) -> None:
        if self.is_current(key, seq):
            if fraction < 0:
                self._stops.pop(key, None)
            self.task.emit(key, label, fraction)

    def tracked_keys(self) -> list[str]:
        """Keys of the long jobs still going."""
        return list(self._stops)

    def _stop_work(self, key: str) -> None:
        stop = self._stops.pop(key, None)
        if stop is not None:
            stop[0].set()
            self.task.emit(key, stop[1], -1.0)

    def run_generator(self, key: str, fn: Callable, *args, on_yield: Callable, on_finished: Callable,
                      error_prefix: str = "", **kwargs) -> None:
        """Run a generator (training, a sweep) on the pool. Its items reach on_yield while the key is
        current; on_finished(current=...) always runs, saying whether the key was superseded."""
        from superqt.utils import create_worker

        if self._closed:
            return
        seq = self._supersede(key)
        worker = create_worker(fn, *args, **kwargs, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(lambda item: self.is_current(key, seq) and on_yield(item))
        worker.errored.connect(lambda exc: self.report(exc, error_prefix))
        # A run ending after its window was deleted has no one to tell (its state objects are gone).
        worker.finished.connect(lambda: shiboken6.isValid(self) and on_finished(current=self.is_current(key, seq)))
        self._track(worker)

    @property
    def should_stop(self) -> Callable[[], bool]:
        """For workers to poll (thread-safe): true once the window is closing."""
        return self._stopping.is_set

    def cancel(self, key: str) -> None:
        """Drop the results of every job under `key` still running, and stop long work under it."""
        self._stop_work(key)
        self._supersede(key)

    def is_current(self, key: str, seq: int) -> bool:
        return not self._closed and self._latest.get(key) == seq

    def _supersede(self, key: str) -> int:
        seq = self._latest.get(key, 0) + 1
        self._latest[key] = seq
        return seq

    def _track(self, worker) -> None:
        self._in_flight += 1
        worker.finished.connect(self._finished)
        worker.start()

    def _finished(self) -> None:
        self._in_flight -= 1

    # ----- model copies -------------------------------------------------------------------------
    def model_copy(self, model, version):
        """A copy of `model` for workers to read; one per weights version, shared by every job on it."""
        if self._copy_version != version or self._copy is None:
            self._copy, self._copy_version = copy.deepcopy(model), version
        return self._copy

    @staticmethod
    def private_copy(model):
        """A copy the caller may change (a training run's own weights)."""
        return copy.deepcopy(model)

    # ----- errors -------------------------------------------------------------------------------
    def report(self, error, prefix: str = "") -> None:
        """Every error of the window comes through here, as one sentence of bounded length."""
        from latentlab.core.errors import Cancelled, LatentLabError
        from latentlab.core.text import short

        if self._closed:
            return   # work stopped because the window is closing: nobody is there to read about it
        if isinstance(error, Cancelled):
            self.status.emit(short(str(error)))   # the user asked for it: no banner
            return
        if isinstance(error, str):
            msg = error
        elif isinstance(error, MemoryError) or "out of memory" in str(error).lower():
            msg = "Ran out of memory in a background job; the current model and data are kept."
        elif isinstance(error, LatentLabError) or prefix:
            msg = prefix + str(error)
            detail = getattr(error, "detail", ())   # the cause's own lines (missing keys...): the diagnosis
            if detail:
                msg += " " + " · ".join(detail[:3])
        else:
            msg = f"{type(error).__name__}: {error}"
        if not isinstance(error, str):
            self.status.emit("")
        self.errorRaised.emit(short(msg))

    # ----- lifetime -----------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        return self._in_flight == 0

    def wait_until_idle(self, timeout_ms: int = 60000) -> bool:
        """Process events until every job (and what its result started) has finished; False on timeout."""
        deadline = QtCore.QDeadlineTimer(timeout_ms)
        pool = QtCore.QThreadPool.globalInstance()
        while not deadline.hasExpired():
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
            if self._in_flight == 0 and pool.activeThreadCount() == 0:
                QtCore.QCoreApplication.processEvents()
                if self._in_flight == 0:
                    return True
            pool.waitForDone(5)
        return False

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Start nothing more, drop every pending result and wait for the pool."""
        self._closed = True
        self._stopping.set()
        self._copy = None
        for stop, _ in self._stops.values():
            stop.set()
        pool = QtCore.QThreadPool.globalInstance()
        pool.clear()  # jobs not started yet never start: their results would have nowhere to go
        pool.waitForDone(timeout_ms)

    @property
    def closed(self) -> bool:
        return self._closed
