"""Opening and decoding a user's own VAE beside latentlab's built-in model, in the same run.

    python -m benchmarks.foreign_models            # ~1 minute
    python -m benchmarks.foreign_models --quick

Models (all on the 8×8 digits):
  built-in        the bundled checkpoint (`PATH.safetensors`)
  foreign MLP     examples/mlp_vae's MLPVAE through `PATH.py:NAME` + `--weights` (random weights)
  AutoencoderKL   a tiny randomly initialised diffusers AutoencoderKL (`diffusers:DIR`), K = 32
Measures:
  cold open       a fresh process: load_model + validate on one batch (includes importing the
                  user's file or diffusers), seconds; interpreter start and `import torch` excluded
  warm open       the same again in this process, median of --reps
  decode p50/p95  analysis.decode of one latent code (the core of click-to-decode), interleaved
                  over the models, after a warm-up
In the real window (MainWindow, 1280×860, offscreen; skip with --no-gui), the models taking turns
for --rounds rounds after one untimed round:
  window open     every model (the built-in one as its checkpoint SPEC) through File → Open model's
                  path, `MainWindow.open_model(SPEC, weights)`, on the open digits: from the call
                  until `session.loaded` (opened, validated, every image encoded, the points
                  shown), seconds
  click p50/p95   click to decoded image on screen, exactly as benchmarks/gui_latency.py measures it
                  (its `click_to_decode`: real clicks inside the prior's 3σ, timed until the decoded
                  image's label has painted), --clicks per model per round
Ratios are against the built-in model. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import (
    interleaved,
    machine_line,
    median,
    percentile,
    print_table,
    summary_row,
    write_json,
    yes_no,
)
from latentlab.core.data.specs import load_dataset
from latentlab.core.files.bundled import default_checkpoint
from latentlab.core.files.model_spec import load_model
from latentlab.core.inference import analysis
from latentlab.core.models.adapters import validate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "mlp_vae"

COLD = """
import sys, time, torch
from latentlab.core.models.adapters import validate
from latentlab.core.data.specs import load_dataset
from latentlab.core.files.model_spec import load_model
x = load_dataset("digits").x_train[:8]
spec, weights = sys.argv[1], (sys.argv[2] or None)
t = time.perf_counter()
validate(load_model(spec, weights=weights), x)
print(time.perf_counter() - t)
"""


def make_models(folder: Path) -> dict[str, tuple[str, str | None]]:
    """name -> (SPEC, weights file or None), writing the foreign models' files into `folder`."""
    from safetensors.torch import save_file

    sys.path.insert(0, str(EXAMPLES))
    from mlp_vae import MLPVAE

    torch.manual_seed(0)
    save_file(MLPVAE().state_dict(), str(folder / "mlp.safetensors"))
    models = {"built-in": (str(default_checkpoint()), None),
              "foreign MLP": (f"{EXAMPLES / 'mlp_vae.py'}:MLPVAE", str(folder / "mlp.safetensors"))}
    try:
        from diffusers import AutoencoderKL
    except ImportError:
        print("diffusers is not installed: the AutoencoderKL rows are skipped.")
        return models
    AutoencoderKL(in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=2,
                  norm_num_groups=4, sample_size=8).save_pretrained(str(folder / "ae"))
    models["AutoencoderKL"] = (f"diffusers:{folder / 'ae'}", None)
    return models


def cold_open(spec: str, weights: str | None) -> float:
    out = subprocess.run([sys.executable, "-c", COLD, spec, weights or ""], capture_output=True, text=True,
                         timeout=300, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def in_window(models: dict, rounds: int, clicks: int) -> dict[str, dict[str, list[float]]]:
    """Open each model in the real window and click on it, the models taking turns; round 0 untimed."""
    from benchmarks.common import use_offscreen_qt, wait_for

    use_offscreen_qt()
    from PySide6 import QtWidgets

    from benchmarks.common import loaded_main_window
    from benchmarks.gui_latency import click_to_decode, run_loop

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    print(f"load average before the window part: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    window = loaded_main_window()
    s = window.session
    out = {name: {"open": [], "click": [], "decode only": []} for name in models}
    for r in range(rounds + 1):
        for name, (spec, weights) in models.items():
            def start(spec=spec, weights=weights):
                window.open_model(spec, weights)
            t = time.perf_counter()
            if not wait_for(s.loaded, start, 120_000) or window.banner.isVisible():
                raise SystemExit(f"{name} did not open in the window: {window.banner.label.text()}")
            opened = time.perf_counter() - t
            s.wait_until_idle()
            run_loop(300)  # the views' catch-up work after a new model, as a person would wait
            res = click_to_decode(app, window, clicks if r else 10, seed=r)
            if r:
                out[name]["open"].append(opened)
                out[name]["click"] += res["click"]
                out[name]["decode only"] += res["decode only"]
    window.session.shutdown()
    window.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of opening and clicking in the window")
    ap.add_argument("--clicks", type=int, help="timed clicks per model per round in the window (default 100; quick 40)")
    ap.add_argument("--no-gui", action="store_true", help="skip the measurements in the window")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    reps = 2 if args.quick else args.reps
    clicks = 60 if args.quick else 300
    rounds = 2 if args.quick else args.rounds
    gui_clicks = args.clicks or (40 if args.quick else 100)
    print(machine_line())
    x = load_dataset("digits").x_train[:8]
    with tempfile.TemporaryDirectory() as tmp:
        models = make_models(Path(tmp))
        cold = {name: cold_open(*m) for name, m in models.items()}
        loaded = {}

        def opener(name):
            def run():
                t = time.perf_counter()
                loaded[name] = validate(load_model(models[name][0], weights=models[name][1]), x)
                return time.perf_counter() - t
            return run

        warm = interleaved({name: opener(name) for name in models}, reps)
        rng = np.random.default_rng(0)

        def clicker(name):
            m = loaded[name]

            def run():
                z = rng.standard_normal((1, m.latent_dim)).astype(np.float32)
                t = time.perf_counter()
                analysis.decode(m, z)
                return time.perf_counter() - t
            return run

        cases = {name: clicker(name) for name in models}
        interleaved(cases, 10)  # warm-up
        decode = interleaved(cases, clicks)
        gui = None if args.no_gui else in_window(models, rounds, gui_clicks)

    base = "built-in"
    rows, summary = [], []
    for name in models:
        p95 = percentile(decode[name], 95) * 1e3
        rows.append([name, loaded[name].latent_dim, cold[name], median(warm[name]), percentile(decode[name], 50) * 1e3,
                     p95, f"{p95 / (percentile(decode[base], 95) * 1e3):.2f}×"])
        if name != base:
            summary.append(summary_row(f"{name}: decode one code p95 (ms)", f"{p95:.3g}",
                                       f"{percentile(decode[base], 95) * 1e3:.3g}", rows[-1][-1]))
            summary.append(summary_row(f"{name}: cold open + validate (s)", f"{cold[name]:.3g}", f"{cold[base]:.3g}",
                                       f"{cold[name] / cold[base]:.2f}×"))
    print()
    print_table(["model", "K", "cold open (s)", "warm open (s)", "decode p50 (ms)", "decode p95 (ms)",
                 "p95 vs built-in"], rows, title=f"Foreign models beside the built-in one ({clicks} decodes each)")
    if gui is not None:
        print()
        summary += window_table(gui, loaded, rounds, gui_clicks)
    write_json(args.json, summary)
    return 0


def window_table(gui: dict, loaded: dict, rounds: int, clicks: int) -> list[dict]:
    from benchmarks.gui_latency import CLICK_TARGET_MS

    base = gui["built-in"]
    base_open, base_p95 = median(base["open"]), percentile(base["click"], 95)
    rows, summary = [], []
    for name, g in gui.items():
        p95 = percentile(g["click"], 95)
        rows.append([name, loaded[name].latent_dim, median(g["open"]), max(g["open"]), f"{median(g['open']) / base_open:.2f}×",
                     percentile(g["click"], 50), p95, percentile(g["decode only"], 95), f"{p95 / base_p95:.2f}×",
                     yes_no(p95 <= CLICK_TARGET_MS), len(g["click"])])
        if name != "built-in":
            summary.append(summary_row(f"{name}: click → decoded image painted, p95", f"{p95:.1f} ms",
                                       f"{base_p95:.1f} ms (built-in)", rows[-1][8], f"≤ {CLICK_TARGET_MS:.0f} ms",
                                       yes_no(p95 <= CLICK_TARGET_MS)))
            summary.append(summary_row(f"{name}: open in the window (to points shown)", f"{median(g['open']):.2f} s",
                                       f"{base_open:.2f} s (built-in)", rows[-1][4]))
    print_table(["model", "K", "window open p50 (s)", "max (s)", "open vs built-in", "click p50 (ms)",
                 "click p95 (ms)", "decode only p95 (ms)", "click p95 vs built-in", f"p95 ≤ {CLICK_TARGET_MS:.0f} ms",
                 "timed clicks"], rows,
                title=f"In the window: open (to the points on screen) and click → decoded image painted, "
                      f"{rounds} rounds taking turns, {clicks} clicks per model per round")
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
