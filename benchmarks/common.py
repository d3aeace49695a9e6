"""Small helpers shared by the benchmark scripts: timing, interleaved repetitions, a text table.

Benchmarks print numbers; nothing here asserts on wall time. The machine they run on is noisy,
so the helpers favour interleaving (A B A B ...) and medians over single runs.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable, Sequence


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def time_call(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def interleaved(cases: dict[str, Callable[[], float]], reps: int) -> dict[str, list[float]]:
    """Run every case once per round, `reps` rounds (A B C A B C ...), and collect what each returns.

    Interleaving spreads slow phases of a noisy machine over all cases instead of one; report
    the median of each list."""
    out: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(reps):
        for name, fn in cases.items():
            out[name].append(float(fn()))
    return out


def spread(values: Sequence[float]) -> str:
    """'median (min–max, n=...)' for a list of measurements."""
    return f"{fmt(median(values))} ({fmt(min(values))}–{fmt(max(values))}, n={len(values)})"


def fmt(value: float | int | str, digits: int = 3) -> str:
    """A number with about `digits` significant digits and thousands separators; strings pass through."""
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"{value:,}"
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    mag = abs(value)
    if mag >= 10 ** digits:
        return f"{value:,.0f}"
    if mag == 0:
        return "0"
    decimals = max(0, digits - 1 - int(f"{mag:e}".split("e")[1]))
    return f"{value:,.{decimals}f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> str:
    """Print (and return) a Markdown table; cells that are numbers go through `fmt`."""
    cells = [[c if isinstance(c, str) else fmt(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(items):
        return "| " + " | ".join(str(v).ljust(w) for v, w in zip(items, widths)) + " |"

    lines = ([title, ""] if title else []) + [line(headers), "| " + " | ".join("-" * w for w in widths) + " |"]
    lines += [line(r) for r in cells]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def machine_line() -> str:
    """One line naming the machine and the torch build the numbers came from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    parts = [cpu, f"{os.cpu_count()} logical CPUs"]
    try:
        import torch

        parts.append(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads")
    except ImportError:
        pass
    return ", ".join(parts)
