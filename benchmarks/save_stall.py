"""Saving a large model from the window: the longest event-loop stall, beside a save on the GUI thread.

    python -m benchmarks.save_stall            # ~40 s
    python -m benchmarks.save_stall --quick    # ~25 s

The real MainWindow (1280×860, offscreen) with the bundled model loaded, then given a large MLP VAE
on the same digits (hidden widths 6000, 6000 by default: about 290 MB of float32 weights, the size
of a fine-tuned diffusers AutoencoderKL), marked unsaved. A 5 ms precise QTimer records every tick
(gui_latency's probe); a gap between ticks is time the GUI thread could not run its event loop.

  window's save   `session.save_checkpoint(path)` called from the event loop, the probe running until
                  the file is on disk (`analyses.saver` no longer busy): the bytes are made and written
                  on a worker.
  baseline        the same file written by `core.files.model_spec.save_model` called from the event
                  loop: the bytes made and written on the GUI thread.

Rounds are interleaved (baseline, window, baseline, ...), each to a fresh file in a temporary folder.
Target: the longest stall while saving ≤ 50 ms, the same bound as while training (docs/architecture.md).
Nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from benchmarks.common import (
    loaded_main_window,
    machine_line,
    print_table,
    summary_row,
    use_offscreen_qt,
    write_json,
    yes_no,
)

use_offscreen_qt()

import numpy as np  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402

from benchmarks.gui_latency import Probe, run_loop  # noqa: E402

STALL_TARGET_MS = 50.0


def probe_gaps(start_save, done) -> tuple[float, float]:
    """(longest gap ms, seconds until done()) with start_save() called from the running event loop."""
    probe = Probe()
    loop = QtCore.QEventLoop()
    marks = {}

    def begin():
        marks["start"] = time.perf_counter()
        start_save()

    def check():
        if done() and "start" in marks:
            marks["end"] = time.perf_counter()
            QtCore.QTimer.singleShot(50, loop.quit)   # and a little after, for the result's handling
        else:
            QtCore.QTimer.singleShot(5, check)

    probe.start()
    QtCore.QTimer.singleShot(30, begin)
    QtCore.QTimer.singleShot(35, check)
    QtCore.QTimer.singleShot(120_000, loop.quit)
    loop.exec()
    probe.stop()
    gaps = probe.gaps_ms(marks["start"] - 0.001, marks.get("end", probe.times[-1]) + 0.05)
    return float(np.max(gaps)) if len(gaps) else float("nan"), marks.get("end", float("nan")) - marks["start"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 rounds instead of 3")
    ap.add_argument("--hidden", type=int, default=6000, help="width of the large model's two hidden layers")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 2)")
    ap.add_argument("--json", metavar="OUT", help="also write the summary rows to OUT (for python -m benchmarks)")
    args = ap.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 3)

    _app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])   # kept alive
    print(machine_line())
    window = loaded_main_window()
    s = window.session
    from latentlab.core.files.model_spec import save_model
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.models.vae import build_model

    md = s.model_data
    big = build_model(ModelConfig(image_shape=md.data.image_shape, latent_dim=md.model.latent_dim,
                                  hidden=(args.hidden, args.hidden)), seed=0)
    mb = sum(p.numel() for p in big.parameters()) * 4 / 1e6
    print(f"large model: hidden {args.hidden}, {args.hidden}, {mb:,.0f} MB of weights; encoding the digits with it...",
          flush=True)
    s.replace_model(big, md.data, [], None)
    if not s.jobs.wait_until_idle(180_000):
        raise SystemExit("the large model's encode did not finish within 180 s")
    run_loop(300)
    md.set_saved(False)
    _ = s.model_copy()   # the shared copy of these weights, as any job on them would have made it

    folder = tempfile.mkdtemp(prefix="latentlab-save-")
    res: dict[str, list[tuple[float, float]]] = {"baseline": [], "window": []}
    for r in range(rounds):
        base_path = os.path.join(folder, f"gui-thread-{r}.safetensors")
        res["baseline"].append(probe_gaps(lambda p=base_path: save_model(p, md.model, dataset=md.dataset_spec),
                                          lambda p=base_path: os.path.exists(p)))
        md.set_saved(False)
        win_path = os.path.join(folder, f"window-{r}.safetensors")
        res["window"].append(probe_gaps(lambda p=win_path: s.save_checkpoint(p),
                                        lambda: not s.analyses.saver.busy))
        assert os.path.exists(win_path) and not md.unsaved, "the window's save did not land"
        md.set_saved(False)
        print(f"round {r + 1}: baseline {res['baseline'][-1][0]:.0f} ms stall, window {res['window'][-1][0]:.0f} ms "
              f"stall", flush=True)

    def med(name, i):
        return float(np.median([v[i] for v in res[name]]))

    base, win = med("baseline", 0), med("window", 0)
    print()
    print_table(["save of the large model", "longest stall, median ms", "seconds to on disk, median", "rounds (stall ms)",
                 f"≤ {STALL_TARGET_MS:.0f} ms"],
                [["baseline: save_model on the GUI thread", f"{base:.0f}", f"{med('baseline', 1):.2f}",
                  ", ".join(f"{v[0]:.0f}" for v in res["baseline"]), ""],
                 ["window: session.save_checkpoint (written on a worker)", f"{win:.0f}", f"{med('window', 1):.2f}",
                  ", ".join(f"{v[0]:.0f}" for v in res["window"]), yes_no(win <= STALL_TARGET_MS)]],
                title=f"Saving {mb:,.0f} MB of weights from the window, {rounds} interleaved rounds")
    write_json(args.json, [summary_row(f"longest GUI stall while saving {mb:,.0f} MB from the window", f"{win:.0f} ms",
                                       f"{base:.0f} ms (save on the GUI thread)", f"{base / win:.0f}× shorter",
                                       f"≤ {STALL_TARGET_MS:.0f} ms", yes_no(win <= STALL_TARGET_MS))])
    for name in os.listdir(folder):
        os.unlink(os.path.join(folder, name))
    os.rmdir(folder)
    s.shutdown()
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
