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
  training only (its per-epoch test pass is left out, which favours the baseline);
- the recipe as it runs: that loop for 2 epochs with its own test pass after each (over the same
  2,000 test images; its PNGs of reconstructions and samples are not written), its training
  examples over its wall time, as the CLI's figure counts them: for information beside the target.

Target: the CLI's own samples/s ≥ 3× the baseline's, for the short runs as for the longer ones.

Where a short run's time goes: one more 2-epoch CLI run, in a fresh process as the others, with a
stopwatch around each part of the training (`--phases` runs only that): the steps, each epoch's test
pass, the weights copied out at epoch ends, the checkpoint's bytes, the end-of-run latent preview and
the wait for the last write; the rest is the loop's own work between steps (batches, noise, running
sums, live snapshots).
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
from torch import optim
from torch.utils.data import DataLoader
from torchvision import transforms

from benchmarks.common import fmt, interleaved, machine_line, median, print_table, summary_row, write_json
from benchmarks.train_throughput import BATCH, LR, BaselineVAE, StrokeDigits, latentlab_data, loss_function, make_images, run_baseline, run_latentlab

TARGET = 3.0


def write_idx(folder: str, images: np.ndarray, labels: np.ndarray) -> None:
    with open(os.path.join(folder, "t10k-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(images), 28, 28))
        f.write(images.astype(np.uint8).tobytes())
    with open(os.path.join(folder, "t10k-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)))
        f.write(labels.astype(np.uint8).tobytes())


def run_recipe(train_ds: StrokeDigits, test_ds: StrokeDigits, epochs: int, seed: int) -> float:
    """pytorch/examples vae/main.py's epochs (train(), then test()) without its image files: training
    examples per second of wall time, as the CLI counts them."""
    torch.manual_seed(seed)
    model = BaselineVAE()
    optimizer = optim.Adam(model.parameters(), lr=LR)
    train_loader = DataLoader(train_ds, batch_size=BATCH, shuffle=True)
    test_loader = DataLoader(test_ds, batch_size=BATCH, shuffle=False)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for data, _ in train_loader:
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            optimizer.step()
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for data, _ in test_loader:
                recon_batch, mu, logvar = model(data)
                test_loss += loss_function(recon_batch, data, mu, logvar).item()
    return epochs * len(train_ds) / (time.perf_counter() - start)


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


PHASES = (("steps", "forward, backward and Adam"), ("test passes", "each epoch's test-set ELBO"),
          ("weights out", "the state copied to numpy at epoch ends"), ("checkpoint bytes", "serialised at epoch ends"),
          ("preview", "the finished model's latent means"), ("last write", "waiting for the final file's fsync"))


def _phases_child(argv: list[str]) -> None:
    """Run `latentlab train` in this (fresh) process with a stopwatch around each phase; print the
    phases' seconds and the CLI's own JSON line as one JSON object."""
    import contextlib
    import io

    from latentlab.cli import main as cli_main
    from latentlab.core.files import atomic, model_spec, preview
    from latentlab.core.training import adam, loop, mlp_step

    spent = dict.fromkeys((name for name, _ in PHASES), 0.0)

    def timed(owner, attr, phase):
        fn = getattr(owner, attr)

        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[phase] += time.perf_counter() - start
        setattr(owner, attr, wrapper)

    timed(mlp_step.MlpStep, "__call__", "steps")
    timed(adam.FusedAdam, "step", "steps")
    timed(loop, "_epoch_record", "test passes")
    timed(loop, "state_to_numpy", "weights out")
    timed(model_spec, "model_bytes", "checkpoint bytes")
    timed(preview, "compute_preview", "preview")
    timed(atomic.BackgroundWriter, "flush", "last write")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(argv)
    if code != 0:
        raise SystemExit(f"latentlab train failed (exit {code})")
    print(json.dumps({"phases": spent, "cli": json.loads(out.getvalue().strip().splitlines()[-1])}))


def run_phases(folder: str, epochs: int) -> dict:
    """One CLI run in a fresh process, timed phase by phase (see _phases_child)."""
    out = os.path.join(folder, "phases.safetensors")
    cmd = [sys.executable, "-m", "benchmarks.cli_throughput", "--phases-child", "train", "--dataset", f"mnist:{folder}",
           "--out", out, "--hidden", "400", "--latent-dim", "20", "--batch-size", "128", "--lr", "1e-3",
           "--epochs", str(epochs), "--seed", "0", "--device", "cpu", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"the timed CLI run failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_phases(result: dict, epochs: int) -> None:
    total = result["cli"]["seconds"]
    phases = result["phases"]
    rest = total - sum(phases.values())
    rows = [(name, f"{phases[name]:.3f} s", f"{phases[name] / total:.0%}", what) for name, what in PHASES]
    rows.append(("the rest", f"{rest:.3f} s", f"{rest / total:.0%}", "batches, noise, running sums, live snapshots"))
    print()
    print_table(("phase", "time", "share", "what"), rows,
                title=f"Where one {epochs}-epoch CLI run's {total:.3f} s went ({fmt(result['cli']['samples_per_s'])} samples/s; "
                      f"steps alone: {fmt(result['cli']['samples_per_s'] * total / phases['steps'])} samples/s)")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--phases-child"]:
        _phases_child(argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer epochs and rounds")
    ap.add_argument("--phases", action="store_true", help="only the timed 2-epoch run: where its time goes")
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
        test_images = np.rint(data.x_test[:, 0] * 255).astype(np.uint8)
        test_ds = StrokeDigits(torch.from_numpy(test_images), torch.zeros(len(test_images), dtype=torch.int64),
                               transforms.ToTensor())
        ll_data = latentlab_data(train_images, np.zeros(n, np.int64))
        print(machine_line())
        print(f"mnist:DIR with the 10,000-image test files only → {n:,} train / {len(data.x_test):,} test; "
              f"CLI runs of {short} and {epochs} epochs, {reps} interleaved rounds; running...", flush=True)
        if args.phases:
            print_phases(run_phases(folder, short), short)
            return 0
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
            "recipe": lambda: run_recipe(base_ds, test_ds, short, seed=0),
            "trainer": lambda: n / run_latentlab(ll_data, seed=0)[0],
            "cli short": cli_case(short),
            "cli": cli_case(epochs),
        }, reps)
        load1 = os.getloadavg()
        phases = run_phases(folder, short)

    base, trainer, cli_short, cli, recipe = (median(res[k]) for k in ("baseline", "trainer", "cli short", "cli", "recipe"))
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
        (f"info: the recipe's {short} epochs with its test passes", fmt(recipe), rounds("recipe"),
         f"CLI {short} epochs: {cli_short / recipe:.2f}× this", ""),
    ], title=f"Training throughput as a user runs it (target: the CLI's figure ≥ {TARGET:.0f}× the baseline)")
    for n_epochs, w in walls.items():
        print(f"CLI wall time per {n_epochs}-epoch run, process start to exit (import, data, training, saves): "
              + ", ".join(f"{v:.1f} s" for v in w))
    print_phases(phases, short)
    print("The CLI's figure: every example its steps went through, over the wall time from its first step to "
          "its last checkpoint on disk (each epoch's test pass and save, the end-of-run preview).")
    print(f"load average before/after: {' '.join(f'{v:.2f}' for v in load0)} / {' '.join(f'{v:.2f}' for v in load1)}")
    write_json(args.json, [
        summary_row(f"CLI training samples/s on IDX files, {short}-epoch runs (its own figure)", f"{fmt(cli_short)}/s",
                    f"{fmt(base)}/s (DataLoader loop)", f"{ratio_short:.2f}×", f"≥ {TARGET:.0f}×", met_short),
        summary_row(f"CLI training samples/s on IDX files, {epochs}-epoch runs (its own figure)", f"{fmt(cli)}/s",
                    f"{fmt(base)}/s (DataLoader loop)", f"{ratio:.2f}×", f"≥ {TARGET:.0f}×", met),
        summary_row(f"  the CLI's {short}-epoch runs beside the recipe's {short} epochs with its test passes", f"{fmt(cli_short)}/s",
                    f"{fmt(recipe)}/s (DataLoader loop, train + test)", f"{cli_short / recipe:.2f}×", "", ""),
        summary_row("  the trainer alone on the same data", f"{fmt(trainer)}/s", f"{fmt(base)}/s",
                    f"{ratio_trainer:.2f}×", "", ""),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
