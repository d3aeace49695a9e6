"""Launch time: a fresh interpreter to the first drawn main window, and to an interactive latent scatter.

    python -m benchmarks.startup            # ~60 s
    python -m benchmarks.startup --quick    # ~40 s

Every run is a new `python -c ...` process (offscreen Qt platform, settings in a temporary folder).
The parent takes `time.time()` just before `subprocess.Popen`; the child prints `time.time()` at each
mark; the table shows mark − launch, median over `--reps` runs, the kinds of run interleaved.

  latentlab        `latentlab.cli.main([])`, exactly what the `latentlab` command runs:
                   QApplication, the start-up splash, MainWindow, show, the checkpoint's stored latent
                   preview drawn, `session.load()` of the bundled model and digits scheduled on the
                   event loop. An application-wide event filter, installed before main(), watches for
                   Paint events:
                     first window         the splash's first Paint (a single pixmap).
                     first drawn main window  the first Paint delivered to any widget of the main
                                          window; the mark is taken by a zero-delay timer started
                                          there, which fires once that whole window repaint has finished.
                     latent points        the first finished Paint of the latent plot's viewport with
                                          points in it (PointCloudItem.count() > 0): the preview, before
                                          the model has loaded.
                     interactive scatter  `session.loaded` has fired and a Paint of the latent plot's
                                          viewport with the points in it has finished (marked the same
                                          way): from then on a click decodes.
                     longest stall        a 5 ms QTimer runs from the first main-window paint until the
                                          interactive scatter; the longest gap between its ticks is how
                                          long the window stopped answering while torch imported and the
                                          model loaded on the worker.
                   Also marked: Qt imported, the window's Show event (constructed, show() called),
                   `loaded` emitted. (The main window's imports are timed separately, below.)
  bare Qt          `import PySide6.QtWidgets`, QApplication, a QLabel shown, its first paint (the same
                   filter and timer): the floor for any PySide6 window.
  import torch     `import torch`, marked when the import returns.
  load job         what the loading worker does, alone in a plain process without Qt: import torch,
                   load the bundled checkpoint, load the digits dataset, encode it with the
                   per-point statistics (core functions, the steps of Session's load job).
  python           `python -c pass`-like: the interpreter itself, marked at the first statement.

Targets (docs/architecture.md): first window ≤ 0.5 s; the latent points on screen no later than a bare
`import torch` in the same run; the longest stall ≤ 100 ms. The script also
runs `python -X importtime -c "import latentlab.gui.main_window"` and lists the five biggest imports
by cumulative time, to show where launch time goes. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

from benchmarks.common import interleaved, machine_line, median, print_table, settings_dir, summary_row, write_json, yes_no

FIRST_TARGET_S = 0.5
STALL_TARGET_MS = 100

_PRELUDE = r"""
import time as _t
_T = {"start": _t.time()}
import os, sys, json
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
def _mark(k):
    _T.setdefault(k, _t.time())
def _done(code=0):
    print("MARKS " + json.dumps(_T), flush=True)
    sys.stderr.flush()
    os._exit(code)  # the marks are out; interpreter teardown (seconds with torch) is not measured
"""

LATENTLAB_CHILD = _PRELUDE + r"""
from PySide6 import QtCore, QtWidgets
_mark("qt_imported")
QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, sys.argv[1])
app = QtWidgets.QApplication(sys.argv[:1])

class Watch(QtCore.QObject):
    window = None
    def eventFilter(self, obj, ev):
        if ev.type() == QtCore.QEvent.Type.Show and "shown" not in _T and isinstance(obj, QtWidgets.QWidget) \
                and obj.objectName() == "mainWindow":
            _mark("shown")
        if ev.type() != QtCore.QEvent.Type.Paint or not isinstance(obj, QtWidgets.QWidget):
            return False
        win = obj.window()
        if win.objectName() == "startupSplash":
            _mark("splash")   # at its Paint event: the splash is one pixmap, painted within a millisecond
            return False
        if win.objectName() != "mainWindow":
            return False
        if self.window is None:
            self.window = win
            win.session.loaded.connect(lambda: _mark("loaded"))
            QtCore.QTimer.singleShot(0, lambda: _mark("first_frame"))
            self.ticker.start()
        plot = win.latent.plot
        if obj is plot.viewport() and plot.cloud.count() > 0:
            if "points_pending" not in _T:
                _T["points_pending"] = 1
                QtCore.QTimer.singleShot(0, lambda: _mark("points"))
            if "loaded" in _T and "scatter_pending" not in _T:
                _T["scatter_pending"] = 1
                QtCore.QTimer.singleShot(0, self.finish)
        return False
    def tick(self):
        now = _t.perf_counter()
        if self.last is not None:
            _S["stall_ms"] = max(_S.get("stall_ms", 0.0), 1000 * (now - self.last))
        self.last = now
    def finish(self):
        _mark("scatter")
        self.ticker.stop()
        print("STALL " + json.dumps(_S), flush=True)
        print("MARKS " + json.dumps(_T), flush=True)   # run() may leave by os._exit while a warm-up job runs
        QtCore.QTimer.singleShot(0, self.window.close)

_S = {}

watch = Watch()
# The event loop's longest gap between 5 ms ticks from the first paint until the model is shown:
# how long the window stops answering while torch imports and the model loads behind it.
watch.last = None
watch.ticker = QtCore.QTimer()
watch.ticker.setInterval(5)
watch.ticker.timeout.connect(watch.tick)
app.installEventFilter(watch)
QtCore.QTimer.singleShot(60000, app.quit)
from latentlab.cli import main
main([])
_done()
"""

QT_CHILD = _PRELUDE + r"""
from PySide6 import QtCore, QtWidgets
_mark("qt_imported")
app = QtWidgets.QApplication(sys.argv[:1])
label = QtWidgets.QLabel("hello")
class Watch(QtCore.QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QtCore.QEvent.Type.Paint and obj is label and "first_frame" not in _T:
            _T["pending"] = 1
            QtCore.QTimer.singleShot(0, lambda: (_mark("first_frame"), app.quit()))
        return False
watch = Watch()
app.installEventFilter(watch)
label.resize(300, 100)
label.show()
QtCore.QTimer.singleShot(20000, app.quit)
app.exec()
_done()
"""

TORCH_CHILD = _PRELUDE + r"""
import torch
_mark("torch_imported")
_done()
"""

LOAD_CHILD = _PRELUDE + r"""
import torch
_mark("torch_imported")
from latentlab.core.files.bundled import default_checkpoint
from latentlab.core.files.checkpoint import load_checkpoint
ckpt = load_checkpoint(default_checkpoint())
_mark("checkpoint_loaded")
from latentlab.core.data.specs import load_dataset
data = load_dataset(ckpt.dataset or "digits")
_mark("dataset_loaded")
from latentlab.core.inference.analysis import encode, point_kl, reconstruction_nll
mu, logvar = encode(ckpt.model, data.x_train)
reconstruction_nll(ckpt.model, data.x_train, mu)
point_kl(mu, logvar)
_mark("encoded")
_done()
"""

PYTHON_CHILD = _PRELUDE + r"""
_done()
"""




def launch(code: str, *args: str, timeout: float = 90.0) -> dict:
    """Run `python -c code args...`; return {mark: seconds since just before Popen} (empty on failure)."""
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    t_exit = time.time()
    marks = {}
    extra = {}
    for line in out.splitlines():
        if line.startswith("MARKS "):
            marks = {k: v - t0 for k, v in json.loads(line[6:]).items() if isinstance(v, float)}
        if line.startswith("STALL "):
            extra = json.loads(line[6:])
    if not marks:
        tail = "\n".join(err.strip().splitlines()[-5:])
        print(f"  a child run failed (rc {proc.returncode}): {tail}", flush=True)
        return {}
    marks["exit"] = t_exit - t0
    return {**marks, **extra}


def import_times(module: str) -> tuple[float, list[tuple[str, float, str]], bool]:
    """`python -X importtime -c 'import module'`: total seconds; the five biggest third-party imports
    that latentlab's own modules pull in directly, by cumulative time (name, seconds, importer); and
    whether torch was imported. importtime lists an import after everything it imported, indented by
    depth, so an entry's importer is the next entry below it that is less indented."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                          text=True, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s*(\d+)\s*\|\s*(\d+)\s*\|( *)(\S+)", line)
        if m:
            rows.append((m.group(4), int(m.group(2)) / 1e6, (len(m.group(3)) - 1) // 2))
    total = sum(c for _, c, depth in rows if depth == 0)
    direct = []
    for i, (name, c, depth) in enumerate(rows):
        parent = next((n for n, _, d in rows[i + 1:] if d < depth), "<top>")
        if not name.startswith("latentlab") and parent.startswith("latentlab"):
            direct.append((name, c, parent))
    direct.sort(key=lambda r: -r[1])
    return total, direct[:5], any(n == "torch" for n, _, _ in rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 runs of each kind (~40 s)")
    ap.add_argument("--reps", type=int, help="runs of each kind, interleaved (default 3; quick 2)")
    ap.add_argument("--json", metavar="OUT", help="also write the summary rows to OUT (for python -m benchmarks)")
    args = ap.parse_args(argv)
    reps = args.reps or (2 if args.quick else 3)

    print(machine_line())
    print(f"{reps} runs of each kind, interleaved; load average before: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; running...", flush=True)
    settings = settings_dir()
    runs: dict[str, list[dict]] = {"latentlab": [], "bare Qt": [], "import torch": [], "load job": [], "python": []}
    codes = {"latentlab": (LATENTLAB_CHILD, settings), "bare Qt": (QT_CHILD,), "import torch": (TORCH_CHILD,),
             "load job": (LOAD_CHILD,), "python": (PYTHON_CHILD,)}
    launch(PYTHON_CHILD)  # warm the file cache a little for everyone alike
    launch(TORCH_CHILD)

    def case(name):
        def fn():
            runs[name].append(launch(*codes[name]))
            return 0.0
        return fn

    interleaved({name: case(name) for name in runs}, reps)

    def med(name, key):
        vals = [r[key] for r in runs[name] if key in r]
        return (median(vals), min(vals), max(vals), len(vals)) if vals else None

    def cell(m):
        return "—" if m is None else f"{m[0]:.2f} ({m[1]:.2f}–{m[2]:.2f})"

    stall = med("latentlab", "stall_ms")
    rows = [
        ["latentlab: interpreter up (first statement)", cell(med("latentlab", "start")), "", ""],
        ["latentlab: PySide6 imported", cell(med("latentlab", "qt_imported")), "", ""],
        ["latentlab: MainWindow constructed and shown", cell(med("latentlab", "shown")), "", ""],
        ["latentlab: first window on screen (the start-up splash)", cell(med("latentlab", "splash")),
         f"≤ {FIRST_TARGET_S:g} s", ""],
        ["latentlab: first drawn main window", cell(med("latentlab", "first_frame")), "", ""],
        ["latentlab: latent points painted (the checkpoint's stored preview)", cell(med("latentlab", "points")),
         "≤ import torch", ""],
        ["latentlab: session.loaded emitted", cell(med("latentlab", "loaded")), "", ""],
        ["latentlab: model loaded, its points painted (clicks decode)", cell(med("latentlab", "scatter")), "", ""],
        ["baseline: bare Qt, QLabel first paint", cell(med("bare Qt", "first_frame")), "", ""],
        ["baseline: bare Qt, PySide6 imported", cell(med("bare Qt", "qt_imported")), "", ""],
        ["baseline: import torch returned", cell(med("import torch", "torch_imported")), "", ""],
        ["load job alone (no Qt): torch imported", cell(med("load job", "torch_imported")), "", ""],
        ["load job alone: bundled checkpoint loaded", cell(med("load job", "checkpoint_loaded")), "", ""],
        ["load job alone: digits dataset loaded", cell(med("load job", "dataset_loaded")), "", ""],
        ["load job alone: encoded, with per-point stats", cell(med("load job", "encoded")), "", ""],
        ["baseline: python, first statement", cell(med("python", "start")), "", ""],
        ["latentlab: longest event-loop stall, first paint → model shown (ms)",
         "—" if stall is None else f"{stall[0]:.0f} ({stall[1]:.0f}–{stall[2]:.0f})", f"≤ {STALL_TARGET_MS} ms", ""],
    ]
    first, scatter, points = med("latentlab", "splash"), med("latentlab", "scatter"), med("latentlab", "points")
    torch_m = med("import torch", "torch_imported")
    rows[3][3] = yes_no(first is not None and first[0] <= FIRST_TARGET_S)
    rows[5][3] = yes_no(points is not None and torch_m is not None and points[0] <= torch_m[0])
    rows[-1][3] = yes_no(stall is not None and stall[0] <= STALL_TARGET_MS)
    print()
    print_table(["mark (seconds since launch)", "median (min–max)", "target", "met (median)"], rows,
                title=f"Launch to first drawn window and to interactive scatter, {reps} fresh processes each")

    total, top, has_torch = import_times("latentlab.gui.main_window")
    print()
    print(f"`python -X importtime -c 'import latentlab.gui.main_window'`: {total:.2f} s of imports"
          f"{'' if has_torch else ' (torch is not among them: the loading worker imports it)'}; the biggest "
          f"third-party imports by cumulative time (each counts what it imports in turn, first importer pays):")
    print_table(["third-party import, as latentlab imports it", "cumulative s", "imported by"],
                [[name, f"{c:.3f}", parent] for name, c, parent in top])
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    bq = med("bare Qt", "first_frame")
    summary = []
    if points is not None and torch_m is not None:
        summary.append(summary_row("launch → latent points on screen (stored preview)", f"{points[0]:.2f} s",
                                   f"{torch_m[0]:.2f} s (import torch)", f"{points[0] / torch_m[0]:.2f}×",
                                   "≤ import torch", yes_no(points[0] <= torch_m[0])))
    if stall is not None:
        summary.append(summary_row("longest event-loop stall while the model loads", f"{stall[0]:.0f} ms", "", "",
                                   f"≤ {STALL_TARGET_MS} ms", yes_no(stall[0] <= STALL_TARGET_MS)))
    if first is not None and bq is not None:
        summary.append(summary_row("launch → first window on screen (splash)", f"{first[0]:.2f} s",
                                   f"{bq[0]:.2f} s (bare Qt QLabel)", f"{first[0] / bq[0]:.1f}×",
                                   f"≤ {FIRST_TARGET_S:g} s", yes_no(first[0] <= FIRST_TARGET_S)))
    else:
        summary.append(summary_row("launch → first drawn window", "failed", "", "", f"≤ {FIRST_TARGET_S:g} s", "NO"))
    if scatter is not None and torch_m is not None:
        summary.append(summary_row("launch → model loaded, clicks decode", f"{scatter[0]:.2f} s",
                                   f"{torch_m[0]:.2f} s (import torch)", f"{scatter[0] / torch_m[0]:.1f}×", "", ""))
    write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
