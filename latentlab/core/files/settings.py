"""The window's saved settings are input too: a file the user (or anything else) can edit.

`validate_settings` takes the raw values as read (strings, lists, bytes, anything) and returns
only values of the right type and range; a bad one is left out, so the caller uses its default
and the window always opens. Recent files are checked when used (`usable_recent`), not trusted.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping

MAX_RECENT = 8
MAX_PATH_CHARS = 4096
MAX_GEOMETRY_BYTES = 4096
EPOCHS_RANGE = (1, 100_000)
LR_RANGE = (1e-5, 1.0)
# Where the window's splitters were left (QSplitter.saveState bytes, checked like the geometry).
SPLITTER_KEYS = ("topSplitter", "bottomSplitter")


def validate_settings(raw: Mapping) -> tuple[dict, list[str]]:
    """(values, problems): `values` holds epochs (int), lr (float), warm_start (bool), geometry and
    the splitters' states (bytes) and recent (list of str) for each key whose saved value is valid;
    `problems` names the keys that were ignored, one short phrase each."""
    values, problems = {}, []
    checks = {"epochs": _epochs, "lr": _lr, "warm_start": _bool, "geometry": _geometry, "recent": _recent,
              **dict.fromkeys(SPLITTER_KEYS, _geometry)}
    for key, check in checks.items():
        if key not in raw or raw[key] is None:
            continue
        try:
            values[key] = check(raw[key])
        except (ValueError, TypeError, OverflowError):
            problems.append(f"saved setting {key!r} ignored")
    return values, problems


def _epochs(v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, str)) or (isinstance(v, str) and len(v) > 12):
        raise ValueError
    n = int(v)
    if not EPOCHS_RANGE[0] <= n <= EPOCHS_RANGE[1]:
        raise ValueError
    return n


def _lr(v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)) or (isinstance(v, str) and len(v) > 40):
        raise ValueError
    x = float(v)
    if not (math.isfinite(x) and LR_RANGE[0] <= x <= LR_RANGE[1]):
        raise ValueError
    return x


def _bool(v) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise ValueError


def _geometry(v) -> bytes:
    if not isinstance(v, (bytes, bytearray)) or not 0 < len(v) <= MAX_GEOMETRY_BYTES:
        raise ValueError
    return bytes(v)


def _recent(v) -> list[str]:
    if isinstance(v, str):  # an INI file stores a one-item list as a plain string
        v = [v]
    if not isinstance(v, (list, tuple)):
        raise ValueError
    return [p for p in v[:4 * MAX_RECENT] if isinstance(p, str) and 0 < len(p) <= MAX_PATH_CHARS
            and "\x00" not in p][:MAX_RECENT]


def usable_recent(paths) -> list[str]:
    """The recent files that are, right now, regular files (no folders, FIFOs or devices)."""
    out = []
    for p in _recent(paths) if paths is not None else []:
        try:
            if stat.S_ISREG(os.stat(p).st_mode):
                out.append(p)
        except (OSError, ValueError):
            continue
    return out
