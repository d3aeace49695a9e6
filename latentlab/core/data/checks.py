"""Opening the user's files defensively: regular files only, and every OS error, oversize claim or
missing folder turned into an error of one sentence naming the file (a DatasetError for data; the
files room passes its own error class for checkpoints, weights and model folders)."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path

from latentlab.core.errors import DatasetError, LatentLabError
from latentlab.core.text import reason, short


def require_folder(folder: Path) -> None:
    if not folder.exists():
        raise DatasetError(f"Folder {folder} does not exist.")
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder.")


def open_regular(path: Path, error: type[LatentLabError] = DatasetError, what: str = ""):
    """A binary file object for `path`, refusing FIFOs, devices and folders in one sentence before
    anything is read (reading /dev/zero or a FIFO would never end). Every file latentlab reads is
    opened through here; `what` names it in the sentence ("checkpoint", "weights file")."""
    name = short(str(path), 120)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise error(f"The {what} {name} does not exist." if what else f"File {name} does not exist.") from None
    except IsADirectoryError:
        raise error(f"{name} is a folder, not a {what or 'file'}.") from None
    except (OSError, ValueError) as exc:   # ValueError: a NUL byte in the path
        raise error(f"Cannot read {f'the {what} ' if what else ''}{name} ({reason(exc)}).") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise error(f"{name} is a folder, not a {what or 'file'}.")
        raise error(f"{name} is not a regular file" + (f", so it cannot be a {what}." if what else "."))
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def check_memory(need: int, what: str) -> None:
    """DatasetError when `need` bytes for `what` would not fit in the memory available."""
    from latentlab.core.errors import ResourceError
    from latentlab.core.memory import check_fits

    try:
        check_fits(need, what)
    except ResourceError as exc:
        raise DatasetError(str(exc)) from None


@contextmanager
def open_error(path: Path):
    """Turns an OSError (permissions, a vanished file) into a DatasetError naming the file."""
    try:
        yield
    except OSError as e:
        raise DatasetError(f"Cannot read {path} ({reason(e)}).") from None
