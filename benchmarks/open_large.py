"""Opening a large dataset: the window's load → encode → draw against bare numpy + torch encoding of
the same images, side by side in one run, each in its own process so that its peak memory is its own.

    python -m benchmarks.open_large                 # 950,000 images of 28×28, a few minutes
    python -m benchmarks.open_large --quick         # 100,000 images

The data are synthetic 28×28 uint8 images with 10 labels in an uncompressed .npz (5% held out as the
test split); the model is a fresh latentlab MLP VAE (784-512-256-K, K = 2) saved as a checkpoint.

  bare numpy + torch   np.load the npz, convert x to float32 in [0, 1], load the checkpoint, encode the
                       training images in batches of 4096 under torch.no_grad(). Wall time from the
                       start of np.load to the last batch; peak RSS of the process.
  window               the real MainWindow on the offscreen platform: Session.load(checkpoint, npz spec)
                       until the latent view has painted the encoded points (Session.loaded, then the
                       paint). Wall time from the load call; peak RSS of the process.

Targets (docs/architecture.md): the window within 2.5× of the bare encoding time, peak memory ≤ 2 GB.
Nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine_line, print_table, summary_row, write_json, yes_no

RATIO_TARGET = 2.5
MEMORY_TARGET_GB = 2.0


def peak_rss_gb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child
    would report the parent's peak (the parent made the images) if that was higher."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024 ** 2
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2   # Linux reports KiB


def make_inputs(folder: Path, n: int) -> tuple[Path, Path]:
    import numpy as np

    from latentlab.core.files.checkpoint import save_checkpoint
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.models.vae import build_model

    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, n)
    # Cheap structured images: a label-dependent bar plus noise (any content encodes at the same cost).
    x = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
    for label in range(10):
        rows = np.flatnonzero(y == label)
        x[rows, 2 * label + 4: 2 * label + 8, 4:24] = 230
    n_test = n // 20
    npz = folder / "large.npz"
    np.savez(npz, x=x[n_test:], y=y[n_test:], x_test=x[:n_test], y_test=y[:n_test])
    ckpt = folder / "model.safetensors"
    save_checkpoint(ckpt, build_model(ModelConfig(image_shape=(1, 28, 28), latent_dim=2), seed=0).eval(),
                    dataset=f"npz:{npz}")
    return npz, ckpt


def child_bare(npz: str, ckpt: str) -> dict:
    import numpy as np
    import torch

    from latentlab.core.files.checkpoint import load_checkpoint

    t0 = time.perf_counter()
    with np.load(npz, allow_pickle=False) as z:
        x = z["x"]
    x = x.astype(np.float32).reshape(len(x), 1, 28, 28)
    x /= 255.0   # in place: one float32 copy, as lean as numpy allows
    model = load_checkpoint(ckpt).model.eval()
    means = []
    with torch.no_grad():
        for i in range(0, len(x), 4096):
            means.append(model.encode(torch.from_numpy(x[i:i + 4096]))[0].numpy())
    mu = np.concatenate(means)
    return {"seconds": time.perf_counter() - t0, "points": len(mu), "peak_gb": peak_rss_gb()}


def child_window(npz: str, ckpt: str) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    settings = tempfile.mkdtemp(prefix="latentlab-bench-settings-")
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, settings)
    from latentlab.gui.main_window import MainWindow

    window = MainWindow()
    window.resize(1280, 860)
    window.show()
    app.processEvents()
    done = {}
    phases = []
    window.session.jobs.task.connect(lambda key, label, f: phases.append((round(time.perf_counter() - t0, 2), label, f)))
    window.session.loaded.connect(lambda: done.setdefault("loaded", time.perf_counter()))
    window.session.errorRaised.connect(lambda msg: done.setdefault("error", msg))
    t0 = time.perf_counter()
    window.session.load(checkpoint=ckpt, dataset=f"npz:{npz}")
    while "loaded" not in done and "error" not in done:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
    plot = window.latent.plot
    plot.viewport().repaint()   # the points drawn on screen
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "points": plot.cloud.count(), "peak_gb": peak_rss_gb(), "error": done.get("error"),
           "phases": {label: t for t, label, f in reversed(phases) if f >= 0}}
    window.session.shutdown()
    return out


def run_child(kind: str, npz: Path, ckpt: Path) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.open_large", "--child", kind, str(npz), str(ckpt)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{kind} run failed: {proc.stderr[-2000:]}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100,000 images instead of 950,000")
    ap.add_argument("--n", type=int, help="number of images (overrides --quick)")
    ap.add_argument("--json", metavar="OUT", help="also write the summary rows to OUT (for python -m benchmarks)")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "NPZ", "CKPT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, npz, ckpt = args.child
        result = child_bare(npz, ckpt) if kind == "bare" else child_window(npz, ckpt)
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    n = args.n or (100_000 if args.quick else 950_000)
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="latentlab-open-large-") as tmp:
        t = time.perf_counter()
        npz, ckpt = make_inputs(Path(tmp), n)
        print(f"made {n:,} images ({npz.stat().st_size / 1e9:.2f} GB npz) in {time.perf_counter() - t:.0f} s", flush=True)
        bare = run_child("bare", npz, ckpt)
        window = run_child("window", npz, ckpt)
    if window.get("error"):
        print(f"the window reported: {window['error']}")
    ratio = window["seconds"] / bare["seconds"]
    rows = [
        ["bare numpy + torch encode", bare["seconds"], f"{bare['peak_gb']:.2f}", bare["points"], "1.00"],
        ["window: load, encode, draw", window["seconds"], f"{window['peak_gb']:.2f}", window["points"], f"{ratio:.2f}"],
    ]
    print_table(["case", "seconds", "peak RSS (GB)", "points", "× bare"], rows,
                title=f"Opening {n:,} images of 28×28 (same run; each case in its own process)")
    starts = sorted(window["phases"].items(), key=lambda item: item[1])
    print("status-bar phases of the window, first shown at (s): " + "; ".join(f"{label} {t:.1f}" for label, t in starts))
    met_time, met_mem = ratio <= RATIO_TARGET, window["peak_gb"] <= MEMORY_TARGET_GB
    print(f"targets: ≤ {RATIO_TARGET}× bare: {yes_no(met_time)}; peak ≤ {MEMORY_TARGET_GB} GB: {yes_no(met_mem)}")
    write_json(args.json, [
        summary_row(f"open {n:,} images: load, encode, draw (s)", f"{window['seconds']:.1f}", f"{bare['seconds']:.1f}",
                    f"{ratio:.2f}×", f"≤ {RATIO_TARGET}×", yes_no(met_time)),
        summary_row(f"open {n:,} images: peak RSS (GB)", f"{window['peak_gb']:.2f}", f"{bare['peak_gb']:.2f}", "",
                    f"≤ {MEMORY_TARGET_GB}", yes_no(met_mem)),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
