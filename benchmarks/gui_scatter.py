"""GUI-thread cost of one live scatter update, 70,000 points: PointCloudItem vs pyqtgraph's ScatterPlotItem.

    python -m benchmarks.gui_scatter            # ~30 s
    python -m benchmarks.gui_scatter --quick    # ~10 s

Every case is a real pyqtgraph PlotWidget (white background, no grid, aspect locked, fixed range, like
the latent view), 900×700, shown on the offscreen platform. One update is timed from just before
`setData(new positions, colours)` until the widget has repainted, all on the GUI thread:

    t0 → setData(...)  → t1 → app.processEvents() until the plot's viewport has received its Paint
    event → t2;   setData = t1 − t0, paint = t2 − t1, update = t2 − t0.

Why not `viewport().repaint()` or `grab()`: setData only marks the scene dirty; the scene's dirty-item
processing and the viewport's UpdateRequest are posted events, so the repaint the application really
does happens the next time the event loop runs. Delivering those events is exactly that path:
QGraphicsView.paintEvent draws the scene through the view (background cache, grid, axes, every item
whose rect is exposed) into the window's backing store. A forced `repaint()` paints too, but leaves
the posted scene update pending, which then paints a second time, unmeasured; `grab()` paints into a
freshly allocated QPixmap instead of the backing store, which the application never does. The run
checks that every timed update was followed by the Paint it waited for and that PointCloudItem.paint
ran once per update.

Cases, interleaved (A B C D ...) with new positions every update, medians over `--reps` rounds:
  PointCloudItem          latentlab's item: setData(pos (n, 2), packed ARGB uint32 colours), with the
                          palette lookup palette[labels] the latent view does inside the timing.
  ScatterPlotItem ×10     the baseline: pyqtgraph's item used the fastest way found here — one item
                          per label, each built once with its own prebuilt brush, pen=None, size=3,
                          square symbol, pxMode; an update is setData(pos=positions of that label)
                          on the ten items. The ratio column is against this case.
  ScatterPlotItem, brush list  one item, setData(pos, brush=[one of 10 prebuilt QBrush per point],
                          pen=None, size=3): the usual way; slower, shown for reference.
  empty plot              the same plot with no points, update() + paint: the floor any item pays.


  MainWindow path         the application's own path with 70,000 points: the real MainWindow with the
                          bundled model, LatentPoints.set_points(μ, ...) → changed → LatentPlot
                          refresh (projection, colours, setData), colour options, active-units label;
                          then the paint of the latent view. For reference (it adds the app's own
                          work around the item).
Then, at 1,000,000 points (skip with --no-million), the same PointCloudItem and ScatterPlotItem ×10 cases:
  update                  setData(new positions) + the repaint, as above.
  pan/zoom frame          the view range moves (a small pan, alternating with a 2 % zoom) with the data
                          unchanged, until the viewport has repainted: what one frame of dragging costs.
The baseline takes seconds per update at 1M, so it runs fewer rounds (--million-baseline-reps), each
interleaved with a round of PointCloudItem.

Targets (docs/architecture.md): ≤ 10 ms for PointCloudItem's update at 70,000 points; at 1,000,000 points ≤ 30 ms
per update and ≤ 33 ms per pan/zoom frame. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from benchmarks.common import (
    interleaved,
    loaded_main_window,
    machine_line,
    median,
    paint_counter,
    print_table,
    process_until_painted,
    spread,
    summary_row,
    use_offscreen_qt,
    write_json,
    yes_no,
)

use_offscreen_qt()

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402

from latentlab.gui.widgets.palette import argb, label_colors  # noqa: E402
from latentlab.gui.widgets.point_cloud import PointCloudItem  # noqa: E402

TARGET_MS = 10.0
MILLION = 1_000_000
MILLION_UPDATE_MS, MILLION_FRAME_MS = 30.0, 33.0
WIDTH, HEIGHT = 900, 700
CLASSES = 10




class TimedPointCloud(PointCloudItem):
    """PointCloudItem with its paint() and the raster inside it timed (perf_counter pairs around the real calls)."""

    def __init__(self, size: int = 3):
        super().__init__(size)
        self.paint_ms: list[float] = []
        self.raster_ms: list[float] = []

    def paint(self, painter, option=None, widget=None):
        t = time.perf_counter()
        super().paint(painter, option, widget)
        self.paint_ms.append((time.perf_counter() - t) * 1000)

    def _rasterise(self, *args):
        t = time.perf_counter()
        try:
            return super()._rasterise(*args)
        finally:
            self.raster_ms.append((time.perf_counter() - t) * 1000)


def make_points(n: int, sets: int, seed: int = 0):
    """`sets` arrays of n 2-D positions (10 Gaussian blobs inside the prior's 3σ, each set jittered
    like one training step apart) and one label per point."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    centres = rng.uniform(-2.0, 2.0, (CLASSES, 2))
    base = centres[labels] + rng.normal(0, 0.45, (n, 2))
    return [(base + rng.normal(0, 0.05, (n, 2))).astype(np.float32) for _ in range(sets)], labels


def make_plot(app, grid: bool = False) -> pg.PlotWidget:
    w = pg.PlotWidget(background="w")
    plot = w.getPlotItem()
    plot.setAspectLocked(True)
    if grid:
        plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setMenuEnabled(False)
    w.resize(WIDTH, HEIGHT)
    w.setRange(xRange=(-3.5, 3.5), yRange=(-3.5, 3.5), padding=0)
    w.show()
    for _ in range(5):
        app.processEvents()
    return w


class Case:
    """One plot and how to update it; `update(i)` returns (setData ms, paint ms)."""

    def __init__(self, app, widget, set_data):
        self.app, self.widget, self.set_data = app, widget, set_data
        self.counter = paint_counter(widget.viewport())
        self.missed = 0   # updates after which no Paint was delivered (should stay 0)

    def update(self, i: int) -> tuple[float, float]:
        before = self.counter.count
        t0 = time.perf_counter()
        self.set_data(i)
        t1 = time.perf_counter()
        ok = process_until_painted(self.app, self.counter, before)
        t2 = time.perf_counter()
        self.missed += not ok
        return (t1 - t0) * 1000, (t2 - t1) * 1000


def coloured_pixels(widget) -> int:
    """Pixels of the plot's view box that are not (near) white: how much the points cover."""
    img = widget.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB32)
    vb = widget.getPlotItem().vb
    r = widget.mapFromScene(vb.sceneBoundingRect()).boundingRect().adjusted(2, 2, -2, -2)
    ptr = img.constBits()
    arr = np.frombuffer(ptr, np.uint32, img.sizeInBytes() // 4).reshape(img.height(), img.bytesPerLine() // 4)
    sub = arr[r.top():r.bottom(), r.left():r.right()]
    rgb = np.stack([(sub >> 16) & 255, (sub >> 8) & 255, sub & 255])
    return int(((rgb < 200).any(0)).sum())




def app_path_case(app, n: int, pos_sets, labels):
    """The real MainWindow with the bundled model, fed 70,000 points through LatentPoints.set_points."""
    import dataclasses

    window = loaded_main_window()
    s = window.session
    k = s.model_data.model.latent_dim
    shape = s.model_data.data.x_train.shape[1:]
    s.model_data.data = dataclasses.replace(s.model_data.data, x_train=np.zeros((n, *shape), np.float32), y_train=labels.astype(np.int64))
    rng = np.random.default_rng(1)
    logvar = rng.normal(-3, 0.3, (n, k)).astype(np.float32)
    stats = {"reconstruction error": rng.gamma(2, 10, n).astype(np.float32),
             "KL per point": rng.gamma(2, 2, n).astype(np.float32)}
    plot = window.latent.plot

    def set_data(i):
        mu = pos_sets[i % len(pos_sets)] if k == 2 else np.pad(pos_sets[i % len(pos_sets)], ((0, 0), (0, k - 2)))
        s.latent.set_points(mu, None, logvar, stats)

    case = Case(app, plot, set_data)
    case.window = window
    return case


def per_label_scatter(app, pos_sets, labels):
    """The baseline: a plot with one ScatterPlotItem per label, each with its own prebuilt brush, pen=None,
    3-px squares in pxMode; returns the plot and set(i), which gives every item its points of set i."""
    brushes = [pg.mkBrush(c) for c in label_colors(CLASSES)]
    per_label = [np.flatnonzero(labels == k) for k in range(CLASSES)]
    widget = make_plot(app)
    items = [pg.ScatterPlotItem(pen=None, brush=brushes[k], size=3, symbol="s", pxMode=True) for k in range(CLASSES)]
    for item in items:
        widget.addItem(item)

    def set_points(i):
        p = pos_sets[i % len(pos_sets)]
        for item, idx in zip(items, per_label):
            item.setData(pos=p[idx])

    return widget, set_points


def million_section(app, reps: int, baseline_reps: int) -> tuple[list, list[dict], dict, int]:
    """Update and pan/zoom-frame times at 1,000,000 points: PointCloudItem vs ScatterPlotItem ×10."""
    pos_sets, labels = make_points(MILLION, sets=3, seed=2)
    palette = argb(label_colors(CLASSES))
    colours = palette[labels]
    cloud_w = make_plot(app)
    cloud = PointCloudItem(size=3)
    cloud_w.addItem(cloud)
    sp_w, sp_set = per_label_scatter(app, pos_sets, labels)

    def mover(widget):
        vb = widget.getPlotItem().vb

        def move(i):
            # odd frames zoom 2 % in, even ones pan a few pixels: every frame differs from the one before
            half = 3.5 * (0.98 if i % 2 else 1.0)
            dx = 0.03 * ((i // 2) % 5 - 2)
            vb.setRange(xRange=(dx - half, dx + half), yRange=(-half, half), padding=0)
        return move

    cases = {("PointCloudItem", "update"): Case(app, cloud_w, lambda i: cloud.setData(pos_sets[i % len(pos_sets)],
                                                                                      palette[labels])),
             ("PointCloudItem", "pan/zoom frame"): Case(app, cloud_w, mover(cloud_w)),
             ("ScatterPlotItem ×10", "update"): Case(app, sp_w, sp_set),
             ("ScatterPlotItem ×10", "pan/zoom frame"): Case(app, sp_w, mover(sp_w))}
    cloud.setData(pos_sets[0], colours)
    sp_set(0)
    for case in cases.values():   # warm-up
        case.update(1)
    ms: dict = {key: [] for key in cases}
    for r in range(reps):
        for key, case in cases.items():
            if key[0] == "PointCloudItem" or r < baseline_reps:
                ms[key].append(sum(case.update(r + 2)))
    rows, summary = [], []
    for what, target in (("update", MILLION_UPDATE_MS), ("pan/zoom frame", MILLION_FRAME_MS)):
        ours, base = ms[("PointCloudItem", what)], ms[("ScatterPlotItem ×10", what)]
        ratio = f"{median(base) / median(ours):.0f}×"
        rows.append([f"PointCloudItem, {what}", spread(ours), ratio, yes_no(median(ours) <= target)])
        rows.append([f"ScatterPlotItem ×10, {what}", spread(base), "1×", ""])
        summary.append(summary_row(f"scatter {what}, 1,000,000 pts (PointCloudItem)", f"{median(ours):.1f} ms",
                                   f"{median(base):,.0f} ms (ScatterPlotItem ×10, 1M)", f"{ratio} faster",
                                   f"≤ {target:.0f} ms", yes_no(median(ours) <= target)))
    missed = sum(c.missed for c in cases.values())
    return rows, summary, cloud.stats, missed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (~10 s)")
    ap.add_argument("--reps", type=int, help="interleaved rounds (default 15; quick 5)")
    ap.add_argument("--points", type=int, default=70_000, help="points per update (default 70,000)")
    ap.add_argument("--no-app", action="store_true", help="skip the MainWindow path case")
    ap.add_argument("--no-million", action="store_true", help="skip the 1,000,000-point update and pan/zoom cases")
    ap.add_argument("--million-baseline-reps", type=int,
                    help="rounds of ScatterPlotItem at 1M (seconds each; default 3, quick 1)")
    ap.add_argument("--json", metavar="OUT", help="also write the summary rows to OUT (for python -m benchmarks)")
    args = ap.parse_args(argv)
    reps = args.reps or (5 if args.quick else 15)
    n = args.points

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    pos_sets, labels = make_points(n, sets=6)
    print(machine_line())
    import PySide6

    print(f"Qt platform {app.platformName()}, PySide6 {PySide6.__version__} (Qt {QtCore.qVersion()}), "
          f"pyqtgraph {pg.__version__}; "
          f"{n:,} points, plots {WIDTH}×{HEIGHT}, {reps} interleaved rounds; load average before: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; running...", flush=True)

    # latentlab's item
    palette = argb(label_colors(CLASSES))
    cloud_w = make_plot(app)
    cloud = TimedPointCloud(size=3)
    cloud_w.addItem(cloud)
    cloud_case = Case(app, cloud_w, lambda i: cloud.setData(pos_sets[i % len(pos_sets)], palette[labels]))

    # the same item in a plot with a grid (the latent view has none): what grid lines would cost
    nogrid_w = make_plot(app, grid=True)
    nogrid = PointCloudItem(size=3)
    nogrid_w.addItem(nogrid)
    nogrid_case = Case(app, nogrid_w, lambda i: nogrid.setData(pos_sets[i % len(pos_sets)], palette[labels]))

    # the baseline: one ScatterPlotItem per label, uniform style each
    sp10_w, sp10_set = per_label_scatter(app, pos_sets, labels)
    brushes = [pg.mkBrush(c) for c in label_colors(CLASSES)]
    sp10_case = Case(app, sp10_w, sp10_set)

    # one ScatterPlotItem with a brush per point
    sp1_w = make_plot(app)
    sp1 = pg.ScatterPlotItem()
    sp1_w.addItem(sp1)
    brush_list = [brushes[k] for k in labels]
    sp1_case = Case(app, sp1_w, lambda i: sp1.setData(pos=pos_sets[i % len(pos_sets)], brush=brush_list, pen=None,
                                                       size=3, symbol="s"))

    empty_w = make_plot(app)
    empty_case = Case(app, empty_w, lambda i: empty_w.viewport().update())

    cases = {"PointCloudItem": cloud_case, "ScatterPlotItem ×10": sp10_case,
             "ScatterPlotItem, brush list": sp1_case, "empty plot": empty_case,
             "PointCloudItem, plot with grid": nogrid_case}
    app_error = None
    if not args.no_app:
        try:
            cases["MainWindow path"] = app_path_case(app, n, pos_sets, labels)
        except Exception as exc:  # the app's internals may move; report instead of failing the run
            app_error = f"{type(exc).__name__}: {exc}"

    # warm-up: caches, fragment atlases, numpy allocations
    for case in cases.values():
        for i in range(2):
            case.update(i)
    cloud.paint_ms.clear()
    cloud.raster_ms.clear()

    parts: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    counter = {"i": 0}

    def run(name):
        def fn():
            sd, pt = cases[name].update(counter["i"])
            parts[name].append((sd, pt))
            return sd + pt
        return fn

    def advance():
        counter["i"] += 1
        return 0.0

    res = interleaved({**{name: run(name) for name in cases}, "_next": advance}, reps)
    res.pop("_next")

    # sanity: every update painted; the two items cover a similar number of pixels for the same data
    missed = {name: c.missed for name, c in cases.items() if c.missed}
    paints_per_update = len(cloud.paint_ms) / reps
    cloud.setData(pos_sets[0], palette[labels])
    sp10_set(0)
    for case in (cloud_case, sp10_case):
        process_until_painted(app, case.counter, case.counter.count)
    px_cloud, px_sp = coloured_pixels(cloud_w), coloured_pixels(sp10_w)

    base = median(res["ScatterPlotItem ×10"])
    rows = []
    for name, ms in res.items():
        sd = [p[0] for p in parts[name]]
        pt = [p[1] for p in parts[name]]
        rows.append([name, spread(ms), f"{median(sd):.1f}", f"{median(pt):.1f}", f"{base / median(ms):.1f}×",
                     yes_no(median(ms) <= TARGET_MS) if name == "PointCloudItem" else ""])
    print()
    print_table(["case (one update, 70,000 points)" if n == 70_000 else f"case (one update, {n:,} points)",
                 "update ms: median (min–max, n)", "setData ms", "paint ms", "speed-up vs ScatterPlotItem ×10",
                 f"≤ {TARGET_MS:.0f} ms"], rows,
                title=f"GUI-thread cost of one scatter update (setData + the repaint it causes), {WIDTH}×{HEIGHT} plot")
    print()
    print(f"PointCloudItem.paint itself: median {median(cloud.paint_ms):.1f} ms "
          f"({paints_per_update:.2f} calls per update), of which the raster (counts, stamps, shading) "
          f"{median(cloud.raster_ms):.1f} ms and drawing it the rest; the rest of 'paint ms' is the view drawing its "
          f"background cache, grid, axes, and Qt's backing-store work.")
    print(f"Coloured pixels in the view box for the same {n:,} points: PointCloudItem {px_cloud:,}, "
          f"ScatterPlotItem ×10 {px_sp:,} (3-px squares both).")
    if missed:
        print(f"WARNING: updates with no Paint delivered: {missed}")
    if app_error:
        print(f"MainWindow path case skipped: {app_error}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    med = median(res["PointCloudItem"])
    summary = [summary_row(f"scatter update, {n:,} pts (PointCloudItem, setData+paint)", f"{med:.1f} ms",
                           f"{base:.1f} ms (ScatterPlotItem ×10)", f"{base / med:.1f}× faster",
                           f"≤ {TARGET_MS:.0f} ms", yes_no(med <= TARGET_MS))]
    if "MainWindow path" in res:
        am = median(res["MainWindow path"])
        summary.append(summary_row(f"  app path, {n:,} pts (Session._set_points + latent view paint)",
                                   f"{am:.1f} ms", f"{base:.1f} ms (ScatterPlotItem ×10)", f"{base / am:.1f}× faster",
                                   f"≤ {TARGET_MS:.0f} ms", yes_no(am <= TARGET_MS)))
    if not args.no_million:
        print("\nrunning 1,000,000 points (ScatterPlotItem takes seconds per round)...", flush=True)
        base_reps = args.million_baseline_reps or (1 if args.quick else 3)
        m_rows, m_summary, stats, m_missed = million_section(app, reps, base_reps)
        print()
        print_table(["case (1,000,000 points)", "ms: median (min–max, n)", "speed-up vs ScatterPlotItem ×10",
                     f"≤ {MILLION_UPDATE_MS:.0f} ms update / ≤ {MILLION_FRAME_MS:.0f} ms frame"], m_rows,
                    title=f"1,000,000 points, {WIDTH}×{HEIGHT} plot, 3-px points in 10 label colours")
        print(f"PointCloudItem's last raster: densest pixel {stats.get('max', 0):,} stamps, shading reference "
              f"{stats.get('reference', 1):.0f}, exact per-channel path: {stats.get('exact')}")
        if m_missed:
            print(f"WARNING: {m_missed} 1M updates with no Paint delivered")
        summary += m_summary
    write_json(args.json, summary)
    for case in cases.values():
        window = getattr(case, "window", None)
        if window is not None:
            window.session.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
