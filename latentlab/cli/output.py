"""What the commands print: warnings, shortened names, numbers and progress bars on stderr."""

from __future__ import annotations

import sys


def _warn(lines) -> None:
    for line in lines:
        print(f"latentlab: warning: {_short(line)}", file=sys.stderr)


def _short(text: str) -> str:
    from latentlab.core.text import short

    return short(text)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _bar(fraction: float, width: int = 28) -> str:
    filled = int(width * fraction)
    return f"[{'#' * filled}{'-' * (width - filled)}] {100 * fraction:5.1f}%"
