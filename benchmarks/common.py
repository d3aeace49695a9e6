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


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, linear interpolation between order statistics."""
    xs = sorted(float(v) for v in values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def yes_no(flag: bool) -> str:
    return "yes" if flag else "NO"


def summary_row(measure: str, value: str, baseline: str = "", ratio: str = "", target: str = "",
                met: str = "") -> dict:
    """One row of the `python -m benchmarks` summary: what was measured, its side-by-side baseline,
    the ratio between them, the target and whether it was met ("yes" / "NO" / "" when no target)."""
    return {"measure": measure, "value": value, "baseline": baseline, "ratio": ratio, "target": target, "met": met}


def write_json(path: str | None, rows: Sequence[dict], **extra) -> None:
    """Write summary rows (see `summary_row`) as JSON to `path`, for `python -m benchmarks`; no-op without a path."""
    if not path:
        return
    import json

    with open(path, "w", encoding="utf-8") as f:
        json.dump({"rows": list(rows), "machine": machine_line(), **extra}, f, indent=1)


def use_offscreen_qt() -> None:
    """Run Qt without a display unless the caller chose a platform; call before anything imports Qt."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def paint_counter(widget):
    """Install (and return) an event filter on `widget` that counts the Paint events it receives.

    `counter.count` goes up when Qt delivers a Paint event to the widget; the filter runs just before
    the widget paints, so once a call that delivers events returns, that paint has completed."""
    from PySide6 import QtCore

    class _PaintCounter(QtCore.QObject):
        def __init__(self, parent):
            super().__init__(parent)
            self.count = 0

        def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
            if event.type() == QtCore.QEvent.Type.Paint:
                self.count += 1
            return False

    counter = _PaintCounter(widget)
    widget.installEventFilter(counter)
    return counter


def process_until_painted(app, counter, before: int, max_rounds: int = 200) -> bool:
    """Deliver events (`app.processEvents()`) until `counter` has seen a paint after `before`; True if it did."""
    for _ in range(max_rounds):
        app.processEvents()
        if counter.count > before:
            return True
    return False


def settings_dir() -> str:
    """A temporary folder for QSettings, removed when this process exits."""
    import atexit
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="latentlab-bench-settings-")
    atexit.register(shutil.rmtree, path, True)
    return path


def wait_for(signal, start, timeout_ms: int) -> bool:
    """Run the event loop until `signal` fires (after calling `start()`), at most `timeout_ms`."""
    from PySide6 import QtCore

    loop = QtCore.QEventLoop()
    fired = []

    def on_signal(*_):
        fired.append(1)
        loop.quit()

    signal.connect(on_signal)
    QtCore.QTimer.singleShot(timeout_ms, loop.quit)
    start()
    if not fired:
        loop.exec()
    signal.disconnect(on_signal)
    return bool(fired)


def loaded_main_window():
    """The real MainWindow, 1280×860, with the bundled model loaded; settings in a temporary folder."""
    from PySide6 import QtCore

    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, settings_dir())
    from latentlab.gui.main_window import MainWindow

    window = MainWindow()
    window.resize(1280, 860)
    window.show()
    if not wait_for(window.session.loaded, window.session.load, 60_000):
        raise SystemExit("the bundled model did not load within 60 s")
    return window
