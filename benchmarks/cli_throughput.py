"""What a user runs: `latentlab train` on IDX files, beside the trainer alone and the examples recipe.

    python -m benchmarks.cli_throughput            # about two minutes on a quiet 2-core machine
    python -m benchmarks.cli_throughput --quick

The data is MNIST's test-set layout only (t10k-images-idx3-ubyte + labels, 10,000 synthetic
28×28 stroke images written here, since there is no network), which `mnist:DIR` splits into
8,000 train / 2,000 test. Three sides, interleaved round by round so that a noisy machine slows
them alike, all on the 784-400-20 MLP, batch 128, Adam 1e-3:

- the CLI: `python -m latentlab train --dataset mnist:DIR ... --json` in a fresh process, for a short
  run (2 epochs) and a longer one (10; 4 with --quick); its own reported samples/s (every example the
  steps went through, over the wall time from the first step to the last checkpoint on disk: every
  epoch's test pass and save, progress output and the end-of-run latent preview included; Python
  start-up, imports and reading the files are not), and its wall time from process start;
- the trainer alone: `core.training.train` on the same 8,000 images in this process;
- the baseline: the pytorch/examples VAE loop (DataLoader + ToTensor) over the same 8,000 images,
  training only (its per-epoch test pass is left out, which favours the baseline).

Target: the CLI's own samples/s ≥ 3× the baseline's, for the short runs as for the longer ones.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from torchvision import transforms

from benchmarks.common import fmt, interleaved, machine_line, median, print_table, summary_row, write_json
from benchmarks.train_throughput import StrokeDigits, latentlab_data, make_images, run_baseline, run_latentlab

TARGET = 3.0


def write_idx(folder: str, images: np.ndarray, labels: np.ndarray) -> None:
    with open(os.path.join(folder, "t10k-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(images), 28, 28))
        f.write(images.astype(np.uint8).tobytes())
    with open(os.path.join(folder, "t10k-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)))
        f.write(labels.astype(np.uint8).tobytes())


def run_cli(folder: str, epochs: int, seed: int) -> tuple[float, float]:
    """(the CLI's own samples/s, wall seconds from process start to exit)."""
    out = os.path.join(folder, f"run-{seed}.safetensors")
    cmd = [sys.executable, "-m", "latentlab", "train", "--dataset", f"mnist:{folder}", "--out", out,
           "--hidden", "400", "--latent-dim", "20", "--batch-size", "128", "--lr", "1e-3",
           "--epochs", str(epochs), "--seed", str(seed), "--device", "cpu", "--json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"latentlab train failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["samples_per_s"]), wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer epochs and rounds")
    ap.add_argument("--json", metavar="OUT", help="also write the summary rows to OUT (for python -m benchmarks)")
    args = ap.parse_args(argv)
    epochs, reps = (4, 2) if args.quick else (10, 3)
    short = 2

    images = make_images(10_000, seed=0)
    labels = np.random.default_rng(0).integers(0, 10, 10_000)
    with tempfile.TemporaryDirectory(prefix="latentlab-bench-idx-") as folder:
        write_idx(folder, images, labels)
        from latentlab.core.data.specs import load_dataset

        # The very split the CLI trains on, for the other two sides.
        data = load_dataset(f"mnist:{folder}")
        train_images = np.rint(data.x_train[:, 0] * 255).astype(np.uint8)
        n = len(train_images)
        base_ds = StrokeDigits(torch.from_numpy(train_images), torch.zeros(n, dtype=torch.int64), transforms.ToTensor())
        ll_data = latentlab_data(train_images, np.zeros(n, np.int64))
        print(machine_line())
        print(f"mnist:DIR with the 10,000-image test files only → {n:,} train / {len(data.x_test):,} test; "
              f"CLI runs of {short} and {epochs} epochs, {reps} interleaved rounds; running...", flush=True)
        run_baseline(base_ds, seed=99)  # warm-up of both in-process sides
        run_latentlab(ll_data, seed=99)

        walls: dict[int, list[float]] = {short: [], epochs: []}

        def cli_case(n_epochs):
            def case():
                rate, wall = run_cli(folder, n_epochs, seed=len(walls[n_epochs]))
                walls[n_epochs].append(wall)
                return rate
            return case

        load0 = os.getloadavg()
        res = interleaved({
            "baseline": lambda: n / run_baseline(base_ds, seed=0)[0],
            "trainer": lambda: n / run_latentlab(ll_data, seed=0)[0],
            "cli short": cli_case(short),
            "cli": cli_case(epochs),
        }, reps)
        load1 = os.getloadavg()

    base, trainer, cli_short, cli = (median(res[k]) for k in ("baseline", "trainer", "cli short", "cli"))
    ratio, ratio_short, ratio_trainer = cli / base, cli_short / base, trainer / base
    met, met_short = ("yes" if r >= TARGET else "NO" for r in (ratio, ratio_short))

    def rounds(key):
        return ", ".join(fmt(v) for v in res[key])

    print()
    print_table(("measure", "samples/s (median)", "rounds", "ratio to baseline", f"≥ {TARGET:.0f}×"), [
        ("baseline: examples loop, DataLoader + ToTensor, training only", fmt(base), rounds("baseline"), "1×", ""),
        ("trainer alone: core.training.train, one epoch, no test split", fmt(trainer), rounds("trainer"),
         f"{ratio_trainer:.2f}×", ""),
        (f"CLI: latentlab train on IDX files, {short} epochs, its own figure", fmt(cli_short), rounds("cli short"),
         f"{ratio_short:.2f}×", met_short),
        (f"CLI: latentlab train on IDX files, {epochs} epochs, its own figure", fmt(cli), rounds("cli"),
         f"{ratio:.2f}×", met),
    ], title=f"Training throughput as a user runs it (target: the CLI's figure ≥ {TARGET:.0f}× the baseline)")
    for n_epochs, w in walls.items():
        print(f"CLI wall time per {n_epochs}-epoch run, process start to exit (import, data, training, saves): "
              + ", ".join(f"{v:.1f} s" for v in w))
    print("The CLI's figure: every example its steps went through, over the wall time from its first step to "
          "its last checkpoint on disk (each epoch's test pass and save, the end-of-run preview).")
    print(f"load average before/after: {' '.join(f'{v:.2f}' for v in load0)} / {' '.join(f'{v:.2f}' for v in load1)}")
    write_json(args.json, [
        summary_row(f"CLI training samples/s on IDX files, {short}-epoch runs (its own figure)", f"{fmt(cli_short)}/s",
                    f"{fmt(base)}/s (DataLoader loop)", f"{ratio_short:.2f}×", f"≥ {TARGET:.0f}×", met_short),
        summary_row(f"CLI training samples/s on IDX files, {epochs}-epoch runs (its own figure)", f"{fmt(cli)}/s",
                    f"{fmt(base)}/s (DataLoader loop)", f"{ratio:.2f}×", f"≥ {TARGET:.0f}×", met),
        summary_row("  the trainer alone on the same data", f"{fmt(trainer)}/s", f"{fmt(base)}/s",
                    f"{ratio_trainer:.2f}×", "", ""),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
