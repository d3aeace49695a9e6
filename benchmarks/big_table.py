"""A 10,000,000-row latent table (K = 8) in the real window: open, scatter update, pan/zoom frame, peak memory.

    python -m benchmarks.big_table             # 10M rows; ~5 minutes the first time (writing the table)
    python -m benchmarks.big_table --quick     # 3M rows
    python -m benchmarks.big_table --rows 1000000 --no-baselines

The table (clusters of means per label, K = 8, Parquet in row groups of 1M) and an untrained K = 8
latentlab VAE are written once to a cache folder in the system's temporary directory and reused.
Each measurement runs in a fresh process, so its peak memory (VmHWM) is its own:

  window        MainWindow (1280×860, offscreen) → Session.open_table(table, checkpoint) with no dataset:
                open = from the call until the density pyramid of every point is painted (reading and
                checking the table, the model, the aggregation off the GUI thread); scatter update = the
                GUI thread's time from a change of the shown pair of dimensions until the view has
                repainted (the new aggregation then runs off the GUI thread; its time is shown too);
                pan/zoom frame = a small pan alternating with a 2 % zoom, until the view has repainted,
                at the fitted view (drawn from the pyramid's levels) and zoomed 64× (the few points
                in view drawn one by one); peak memory of the process.
  baselines     the same frames drawn from all N points each time: datashader's aggregation (count by
                label, shade) of every point onto the 900×700 canvas when datashader is installed,
                a numpy bincount of every point's pixel otherwise; and the point cloud as it draws up
                to a million points (one pass over every point per frame).
  million       at 1,000,000 points, the point cloud (what the window uses below 2M) against the
                pyramid: pan/zoom frame, and the pyramid's build time.
Targets (docs/architecture.md): open ≤ 10 s, scatter update ≤ 50 ms, pan/zoom frame ≤ 50 ms, peak ≤ 2 GB.
Nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine_line, median, print_table, summary_row, write_json, yes_no

K, CLASSES, WIDTH, HEIGHT = 8, 10, 900, 700
CACHE = Path(tempfile.gettempdir()) / "latentlab-bench-tables"


def make_table(rows: int) -> Path:
    """The cached table of `rows` rows (written in row groups, never whole in memory) and K = 8."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = CACHE / f"table-{rows}-k{K}.parquet"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1.3, (CLASSES, K)).astype(np.float32)
    names = json.dumps([f"class {i}" for i in range(CLASSES)])
    part = path.with_suffix(".partial")
    writer = None
    group = 1_000_000
    for start in range(0, rows, group):
        n = min(group, rows - start)
        label = rng.integers(0, CLASSES, n)
        mu = centres[label] + rng.normal(0, 0.45, (n, K)).astype(np.float32)
        cols = {"index": pa.array(np.arange(start, start + n)), "split": pa.array(["train"] * n).dictionary_encode(),
                "label": pa.array(label.astype(np.int32))}
        cols.update({f"mu_{d}": pa.array(mu[:, d]) for d in range(K)})
        cols.update({f"logvar_{d}": pa.array(rng.normal(-3, 0.3, n).astype(np.float32)) for d in range(K)})
        table = pa.table(cols).replace_schema_metadata({"latentlab.label_names": names})
        writer = writer or pq.ParquetWriter(part, table.schema)
        writer.write_table(table)
    writer.close()
    part.replace(path)
    return path


def make_model() -> Path:
    path = CACHE / f"vae-k{K}.safetensors"
    if not path.exists():
        from latentlab.core.files.model_spec import save_model
        from latentlab.core.models.config import ModelConfig
        from latentlab.core.models.vae import build_model

        CACHE.mkdir(parents=True, exist_ok=True)
        save_model(path, build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=K, hidden=(64,)), seed=0), dataset="digits")
    return path


def peak_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def frames(app, widget, counter, moves: int = 12) -> list[float]:
    """Milliseconds from a change of the view range (pan, then 2 % zoom, alternating) to its repaint."""
    from benchmarks.common import process_until_painted

    vb = widget.getPlotItem().vb
    out = []
    for i in range(moves):
        (x0, x1), (y0, y1) = vb.viewRange()
        w = x1 - x0
        before = counter.count
        t = time.perf_counter()
        if i % 2:
            vb.setRange(xRange=(x0 + 0.01 * w, x1 - 0.01 * w), yRange=(y0 + 0.01 * w, y1 - 0.01 * w), padding=0)
        else:
            d = 0.02 * w * (1 if i % 4 == 0 else -1)
            vb.setRange(xRange=(x0 + d, x1 + d), yRange=(y0, y1), padding=0)
        process_until_painted(app, counter, before)
        out.append((time.perf_counter() - t) * 1000)
    return out


def child_bare_read(table: str) -> dict:
    """The least any open does: pyarrow's own read of every column to numpy (all threads), and import torch."""
    import pyarrow.parquet as pq

    t = time.perf_counter()
    columns = pq.read_table(table)
    arrays = [c.to_numpy() for c in columns.columns]
    read = time.perf_counter() - t
    t = time.perf_counter()
    import torch  # noqa: F401

    return {"read_s": read, "torch_s": time.perf_counter() - t, "rows": len(arrays[0]), "peak_mb": peak_mb()}


def child_window(table: str, model: str, small: str) -> dict:
    """Open the table in the real window; the figures and this process's peak memory."""
    from benchmarks.common import paint_counter, process_until_painted, settings_dir, use_offscreen_qt

    use_offscreen_qt()
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, settings_dir())
    from latentlab.gui.main_window import MainWindow

    window = MainWindow()
    window.resize(1280, 860)
    window.show()
    app.processEvents()
    s, plot = window.session, window.latent.plot
    counter = paint_counter(plot.viewport())

    def until(cond, timeout: float = 600) -> float:
        t = time.perf_counter()
        while not cond():
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
            if time.perf_counter() - t > timeout:
                raise SystemExit("timed out")
        return time.perf_counter()

    errors = []
    s.errorRaised.connect(errors.append)
    t0 = time.perf_counter()
    s.open_table(table, checkpoint=model)
    t_loaded = until(lambda: s.latent.points is not None or errors)
    if errors:
        raise SystemExit(errors[0])
    t_drawn = until(lambda: plot.cloud.pyramid is not None and plot.cloud.mode.startswith("level"))
    out = {"rows": len(s.latent.points), "open_s": t_drawn - t0, "read_s": t_loaded - t0, "aggregate_s": t_drawn - t_loaded}
    plot.fit()
    process_until_painted(app, counter, counter.count)
    out["fit_frames"] = frames(app, plot, counter)
    out["fit_mode"] = plot.cloud.mode
    vb = plot.getPlotItem().vb
    (x0, x1), (y0, y1) = vb.viewRange()
    cx, cy, w = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 64
    vb.setRange(xRange=(cx - w / 2, cx + w / 2), yRange=(cy - w / 2, cy + w / 2), padding=0)
    process_until_painted(app, counter, counter.count)
    out["deep_frames"] = frames(app, plot, counter)
    out["deep_mode"] = f"{plot.cloud.drawn_points:,} points drawn one by one" if plot.cloud.mode == "points" \
        else plot.cloud.mode
    plot.fit()
    updates, rebuilds = [], []
    for pair in ((2, 3), (0, 1)):
        before = counter.count
        t = time.perf_counter()
        s.latent.set_projection(pair=pair)
        process_until_painted(app, counter, before)
        updates.append((time.perf_counter() - t) * 1000)
        rebuilds.append(until(lambda: plot.cloud.pyramid is not None and plot.cloud.pyramid is s.density.pyramid) - t)
    out.update(update_ms=updates, rebuild_s=rebuilds, peak_mb=peak_mb())
    out["pixels"] = [plot.width(), plot.height()]
    # the same update on a 100,000-row table, drawn as points (the path below DENSITY_MIN_POINTS)
    s.open_table(small, checkpoint=model)
    until(lambda: s.latent.points is not None and len(s.latent.points) < out["rows"])
    plot.fit()
    process_until_painted(app, counter, counter.count)
    small_updates = []
    for pair in ((2, 3), (0, 1), (2, 3), (0, 1)):
        before = counter.count
        t = time.perf_counter()
        s.latent.set_projection(pair=pair)
        process_until_painted(app, counter, before)
        small_updates.append((time.perf_counter() - t) * 1000)
    out["small_update_ms"] = small_updates
    s.shutdown()
    return out


def plain_points(rows: int):
    import numpy as np

    rng = np.random.default_rng(0)
    labels = rng.integers(0, CLASSES, rows)
    centres = rng.normal(0, 1.3, (CLASSES, 2)).astype(np.float32)
    xy = centres[labels] + rng.normal(0, 0.45, (rows, 2)).astype(np.float32)
    return xy, labels


def child_baselines(rows: int, which: str) -> dict:
    """Per-frame cost of drawing every point: datashader (or numpy bincount), and the point cloud."""
    import numpy as np

    from benchmarks.common import paint_counter, use_offscreen_qt

    xy, labels = plain_points(rows)
    out = {}
    lo, hi = float(xy.min()), float(xy.max())
    if which == "aggregate":
        try:
            import datashader as ds
            import datashader.transfer_functions as tf
            import pandas as pd
        except ImportError:
            ds = None
        times = []
        if ds is not None:
            df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "label": pd.Categorical(labels)})
            key = {i: c for i, c in enumerate(("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                               "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"))}
            for i in range(6):
                d = 0.01 * i * (hi - lo)
                t = time.perf_counter()
                agg = ds.Canvas(plot_width=WIDTH, plot_height=HEIGHT, x_range=(lo + d, hi + d), y_range=(lo, hi)).points(
                    df, "x", "y", agg=ds.count_cat("label"))
                tf.shade(agg, color_key=key, how="log")
                times.append((time.perf_counter() - t) * 1000)
            out["name"] = "datashader count_cat + shade"
            out["frames"] = times[1:]   # the first compiles numba's kernels
        else:
            for i in range(5):
                d = 0.01 * i * (hi - lo)
                t = time.perf_counter()
                col = np.clip((xy[:, 0] - (lo + d)) * (WIDTH / (hi - lo)), 0, WIDTH - 1).astype(np.int64)
                row = np.clip((xy[:, 1] - lo) * (HEIGHT / (hi - lo)), 0, HEIGHT - 1).astype(np.int64)
                np.bincount(row * WIDTH + col, minlength=WIDTH * HEIGHT)
                times.append((time.perf_counter() - t) * 1000)
            out["name"] = "numpy bincount of every point"
            out["frames"] = times
    else:
        use_offscreen_qt()
        import pyqtgraph as pg
        from PySide6 import QtWidgets

        from latentlab.gui.widgets.density_cloud import DensityCloudItem
        from latentlab.gui.widgets.palette import argb, label_colors

        app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
        widget = pg.PlotWidget(background="w")
        widget.getPlotItem().setAspectLocked(True)
        widget.resize(WIDTH, HEIGHT)
        widget.show()
        item = DensityCloudItem(size=3)
        widget.addItem(item)
        colors = argb(label_colors(CLASSES))[labels]
        counter = paint_counter(widget.viewport())
        t = time.perf_counter()
        if which == "pyramid":
            from latentlab.core.inference.density_pyramid import build_pyramid

            pyramid = build_pyramid(xy[:, 0], xy[:, 1], colors)
            pyramid.coords = lambda i: xy[i]
            out["build_s"] = time.perf_counter() - t
            item.set_pyramid(pyramid)
        else:
            item.setData(xy, colors)
        widget.setRange(xRange=(lo, hi), yRange=(lo, hi), padding=0)
        for _ in range(5):
            app.processEvents()
        out["frames"] = frames(app, widget, counter, moves=8)
        out["mode"] = item.mode or "points"
    out["peak_mb"] = peak_mb()
    return out


def run_child(*args: str) -> dict:
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        subprocess.run([sys.executable, "-m", "benchmarks.big_table", "--child", *args, "--out", path], check=True,
                       timeout=1800)
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    finally:
        os.unlink(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3,000,000 rows")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "window":
            result = child_window(*rest)
        elif kind == "bare":
            result = child_bare_read(*rest)
        else:
            result = child_baselines(int(rest[0]), rest[1])
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f)
        return 0

    rows = args.rows or (3_000_000 if args.quick else 10_000_000)
    print(machine_line())
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} at the start")
    t = time.perf_counter()
    table, model, small = make_table(rows), make_model(), make_table(100_000)
    print(f"table {table} ({table.stat().st_size / 1e6:,.0f} MB, ready in {time.perf_counter() - t:.1f} s)")
    w = run_child("window", str(table), str(model), str(small))
    bare = run_child("bare", str(table))
    base = {} if args.no_baselines else {kind: run_child("baselines", str(rows), kind) for kind in ("aggregate", "cloud")}
    million = {} if args.no_baselines else {kind: run_child("baselines", "1000000", kind) for kind in ("cloud", "pyramid")}
    fit, deep, upd = median(w["fit_frames"]), median(w["deep_frames"]), median(w["update_ms"])
    agg = median(base["aggregate"]["frames"]) if base else float("nan")
    cloud = median(base["cloud"]["frames"]) if base else float("nan")
    least = bare["read_s"] + bare["torch_s"]
    small_upd = median(w["small_update_ms"])
    rows_out = [
        [f"open (read, check, model, aggregate, first paint): read {w['read_s']:.1f} s + aggregate "
         f"{w['aggregate_s']:.1f} s", f"{w['open_s']:.1f} s", f"{least:.1f} s (pyarrow's own read of every column "
         f"{bare['read_s']:.1f} s + import torch {bare['torch_s']:.1f} s)", f"{w['open_s'] / least:.1f}×", "≤ 10 s",
         yes_no(w["open_s"] <= 10)],
        [f"scatter update, GUI thread (new pair of dims; aggregated off it in {median(w['rebuild_s']):.1f} s)",
         f"{upd:.1f} ms", f"{small_upd:.1f} ms (the same, 100,000 rows drawn as points)", f"{upd / small_upd:.2f}×",
         "≤ 50 ms", yes_no(upd <= 50)],
        [f"pan/zoom frame, fitted view ({w['fit_mode']})", f"{fit:.1f} ms",
         f"{agg:.0f} ms ({base['aggregate']['name']})" if base else "", f"{agg / fit:.0f}× faster" if base else "",
         "≤ 50 ms", yes_no(fit <= 50)],
        [f"pan/zoom frame, zoomed 64× ({w['deep_mode']})", f"{deep:.1f} ms", f"{cloud:.0f} ms (point cloud, every point)"
         if base else "", f"{cloud / deep:.0f}× faster" if base else "", "≤ 50 ms", yes_no(deep <= 50)],
        ["peak memory of the window's process", f"{w['peak_mb']:,.0f} MB",
         f"{base['cloud']['peak_mb']:,.0f} MB (point cloud of {rows:,} 2-D points alone)" if base else "", "",
         "≤ 2,048 MB", yes_no(w["peak_mb"] <= 2048)],
    ]
    if million:
        c, p = median(million["cloud"]["frames"]), median(million["pyramid"]["frames"])
        rows_out.append(["1M points: pan/zoom frame, pyramid (built in "
                         f"{million['pyramid']['build_s']:.1f} s)", f"{p:.1f} ms", f"{c:.1f} ms (point cloud)",
                         f"{c / p:.1f}×", "", ""])
    print()
    print_table(["measurement", "value", "baseline (same run)", "ratio", "target", "met"], rows_out,
                title=f"{w['rows']:,} rows, K = {K}, latent view {w['pixels'][0]}×{w['pixels'][1]} px")
    print(f"\nload average {' '.join(f'{v:.2f}' for v in os.getloadavg())} at the end")
    write_json(args.json, [summary_row(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows_out])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
