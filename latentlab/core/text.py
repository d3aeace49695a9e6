"""Bounding what the user reads: every message is one line of bounded length, free of control
characters.

Values quoted in messages come from files and arguments (a dataset spec of megabytes, a path of
thousands of characters, a model SPEC holding terminal escapes), so anything shown in the CLI, a log,
a banner, a status bar or a window title goes through `short`, which drops control characters (an
escape sequence from a file would otherwise retitle or clear the user's terminal), keeps one line and
cuts the middle with an ellipsis.
"""

from __future__ import annotations

import re

MESSAGE_LIMIT = 300
VALUE_LIMIT = 80

# C0 and C1 controls other than the whitespace `short` folds into spaces, DEL, and the invisible
# format characters that reorder or hide text (bidirectional overrides, zero-width joiners).
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def short(text, limit: int = MESSAGE_LIMIT) -> str:
    """`text` as one line of at most `limit` characters (the middle replaced by an ellipsis), with
    control characters removed."""
    text = str(text)
    if len(text) > 4 * limit:  # never scan megabytes for line breaks
        text = text[:2 * limit] + text[-2 * limit:]
    text = " ".join(_CONTROLS.sub("", text).split())
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 3
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def quote(value, limit: int = VALUE_LIMIT) -> str:
    """A value for quoting inside a sentence: repr of a string, shortened."""
    if isinstance(value, str):
        return repr(short(value, limit))
    return short(repr(value), limit)


def reason(exc: BaseException, limit: int = 160) -> str:
    """An exception's own message, for quoting inside one of our sentences (no trailing period)."""
    text = str(getattr(exc, "strerror", None) or exc)[:4 * limit].strip().splitlines()
    first = text[0].rstrip(".") if text else ""
    return short(first or type(exc).__name__, limit)


def beta_text(beta: float) -> str:
    """β as people write it: three significant digits at most (0.193, 2.68, 20), never 0.1931 or 1e+01."""
    text = f"{float(beta):.3g}"
    return f"{float(text):.0f}" if "e+" in text else text
