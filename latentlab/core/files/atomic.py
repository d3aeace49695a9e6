"""Atomic saves: a temporary file in the same folder, fsync, then os.replace, so a crash mid-save
leaves the previous file intact; the next save of that file removes the temporary file a killed save
left behind. BackgroundWriter does the same on a thread of its own; `atomic_writer` streams a large
output into the temporary file as it is made. `refuse_input_as_output` is the one check that an
output never replaces an input."""

from __future__ import annotations

import os
import re
import stat
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from latentlab.core.errors import CheckpointError, LatentLabError
from latentlab.core.memory import proc_field
from latentlab.core.text import reason, short

try:
    import fcntl
except ImportError:  # Windows: a file that is open cannot be deleted there, which protects live writers as well
    fcntl = None


class BackgroundWriter:
    """Atomic writes on a thread of their own, so a training loop never waits for the disk.

    A payload still waiting for its turn is replaced by a newer one (only the newest state of a
    file matters); a write that failed is raised by the next `submit` or by `flush`, which waits
    until everything submitted is on disk.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._pending: tuple[Path, bytes] | None = None
        self._busy = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def submit(self, path, payload: bytes) -> None:
        with self._cond:
            self._raise()
            self._pending = (Path(path), payload)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="checkpoint-writer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self) -> None:
        with self._cond:
            while self._pending is not None or self._busy:
                self._cond.wait()
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None:
                    self._cond.wait()
                (path, payload), self._pending = self._pending, None
                self._busy = True
            try:
                write_atomic(path, payload)
            except BaseException as exc:  # noqa: BLE001 - handed to the training thread at its next call
                with self._cond:
                    self._error = exc
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


def prepare_out(out) -> Path:
    """Check that a checkpoint can be written at `out` and return where a run should save.

    The folder is created if needed. When `out` already holds a file, the run saves to a sibling
    `NAME.partial.SUFFIX` and the caller replaces `out` with it only once the run has finished well,
    so a run that stops or diverges never leaves anything worse than what was there.
    """
    out = Path(out)
    name = short(str(out))
    if out.is_dir():
        raise CheckpointError(f"{name} is a folder; give a file name such as {short(str(out / 'model.safetensors'))}.")
    folder = out.parent if str(out.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CheckpointError(f"Cannot create the folder {short(str(folder))}: a file is in the way.") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"Cannot create the folder {short(str(folder))} ({reason(exc)}).") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CheckpointError(f"Cannot write {name}: the folder {short(str(folder))} is not writable.")
    if out.exists() or out.is_symlink():
        return out.with_name(f"{out.stem}.partial{out.suffix}")
    return out


def write_atomic(path: Path, payload: bytes) -> None:
    """Write bytes so that `path` holds either its old content or all of the new, never a mix."""
    with atomic_writer(path) as f:
        f.write(payload)


@contextmanager
def atomic_writer(path: Path):
    """A binary file to write `path`'s new content into, piece by piece: it replaces `path` only
    when the block ends without an error (then fsynced); otherwise `path` keeps its old content."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    _remove_stale_temps(folder, path.name)
    try:
        fd, tmp = _locked_temp(folder, path.name)
    except OSError as exc:
        raise CheckpointError(f"Cannot write {short(str(path), 120)}: {reason(exc)}.") from None
    try:
        _set_mode(fd, path)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            if fcntl is not None:
                os.replace(tmp, path)  # still locked, so another save's clean-up cannot take it first
        if fcntl is None:
            os.replace(tmp, path)  # Windows cannot rename a file that is open
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise CheckpointError(f"Cannot write {short(str(path), 120)}: {reason(exc)}.") from None
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # some filesystems do not fsync directories; the file itself is already durable


def refuse_input_as_output(out, inputs, *, folders=(), flag: str = "--out") -> None:
    """One sentence, before any work, when the output `out` is the same file as one of `inputs`
    ((description, path) pairs; None paths skipped) or lies inside one of `folders` (pairs too); `flag` names
    the output in the sentence ("--out" on the command line, "" in the window). Paths are
    compared resolved (links followed) and then by device and inode, so a symlink or a hard link to
    an input counts as the input."""
    target = _resolved(out)
    name = f"{flag} {short(str(out), 120)}".strip()
    for description, src in inputs:
        if src is None:
            continue
        if target == _resolved(src) or _same_inode(out, src):
            raise LatentLabError(f"{name} is {description} ({short(str(src), 120)}); write the output "
                                 "elsewhere, latentlab never replaces its input.")
    for description, folder in folders:
        where = _resolved(folder)
        if target == where or where in target.parents:
            raise LatentLabError(f"{name} is inside {description} {short(str(folder), 120)}; write the "
                                 "output elsewhere, latentlab never changes its inputs.")


def _resolved(path) -> Path:
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return Path(os.path.abspath(Path(path).expanduser()))


def _same_inode(a, b) -> bool:
    try:
        return os.path.samefile(Path(a).expanduser(), Path(b).expanduser())
    except (OSError, ValueError):
        return False   # one of them does not exist (yet): not the same file


def _set_mode(fd: int, path: Path) -> None:
    """mkstemp makes 0600 files; a checkpoint gets the mode it had, or what a new file gets (umask)."""
    if not hasattr(os, "fchmod"):
        return
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    os.fchmod(fd, mode)


def _umask() -> int:
    # Read without changing it where Linux says it: os.umask can only be read by setting it, which races other threads.
    mask = proc_field("/proc/self/status", "Umask", base=8)
    if mask is not None:
        return mask
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _locked_temp(folder: Path, name: str) -> tuple[int, str]:
    """A new temporary file beside the target, flocked: the lock marks it as live until the rename.

    Another save's clean-up may take the file between mkstemp and flock; then we make a new one.
    """
    for _ in range(100):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        if fcntl is None:
            return fd, tmp
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.path.samestat(os.fstat(fd), os.lstat(tmp)):
                return fd, tmp
        except FileNotFoundError:
            pass
        except OSError:
            return fd, tmp  # no flock on this filesystem: save without the marker
        os.close(fd)
    return tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)


def _remove_stale_temps(folder: Path, name: str) -> None:
    """Delete the temporary files that earlier saves of `name` left behind when they were killed.

    Only names that write_atomic makes (`.NAME.` + mkstemp's 8 random characters + `.tmp`) are
    touched, and only when no live writer holds them: a writer keeps an flock on its temporary file
    until the rename, and the kernel drops it when the writer dies, even by SIGKILL.
    """
    pattern = re.compile(re.escape(f".{name}.") + r"[a-z0-9_]{8}\.tmp")
    try:
        stale = [e.path for e in os.scandir(folder) if pattern.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    except OSError:
        return
    for tmp in stale:
        try:
            if fcntl is None:
                os.unlink(tmp)  # fails while a live writer has it open
                continue
            fd = os.open(tmp, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError while its writer lives
                if os.path.samestat(os.fstat(fd), os.lstat(tmp)):  # still the file we locked
                    os.unlink(tmp)
            finally:
                os.close(fd)
        except OSError:
            pass
