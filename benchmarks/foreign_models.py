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
                  over the models, after a warm-up; the GUI's event-to-pixels part is
                  benchmarks/gui_latency.py
Ratios are against the built-in model. Nothing here asserts.
"""

from __future__ import annotations

import argparse
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
)
from latentlab.core import analysis
from latentlab.core.adapters import validate
from latentlab.core.bundled import default_checkpoint
from latentlab.core.data import load_dataset
from latentlab.core.model_spec import load_model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "mlp_vae"

COLD = """
import sys, time, torch
from latentlab.core.adapters import validate
from latentlab.core.data import load_dataset
from latentlab.core.model_spec import load_model
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    reps = 2 if args.quick else args.reps
    clicks = 60 if args.quick else 300
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
    write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
