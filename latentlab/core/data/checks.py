"""Opening the user's data files defensively: regular files only, and every OS error, oversize claim
or missing folder turned into a DatasetError of one sentence naming the file."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path

from latentlab.core.errors import DatasetError
from latentlab.core.text import reason


def require_folder(folder: Path) -> None:
    if not folder.exists():
        raise DatasetError(f"Folder {folder} does not exist.")
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder.")


def open_regular(path: Path):
    """A binary file object for `path`, refusing FIFOs, devices and folders in one sentence
    (reading /dev/zero or a FIFO would never end)."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DatasetError(f"{path} is not a regular file.")
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
