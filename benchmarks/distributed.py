"""Past one machine: samples/s of `latentlab train` under torchrun with 1 and 2 CPU ranks beside the
single-process trainer, and peak memory of training from an `hf:` dataset 10× larger.

    python -m benchmarks.distributed            # 20k vs 200k images streamed; a few minutes
    python -m benchmarks.distributed --quick    # 10k vs 100k, one training round
    python -m benchmarks.distributed --full     # 100k vs 1M images streamed (about 400 MB of PNGs)

Throughput: 8,000 MNIST-like 28×28 images in an npz, the 784-400-20 MLP, the same global batch of
128 and seed on every side, each a fresh `python -m latentlab train ... --json` (its own samples/s,
which counts global samples): one process; torchrun with one rank (DDP's overhead); torchrun with
two ranks of 64 each. torchrun gives each rank one thread (OMP_NUM_THREADS=1), the single process
keeps torch's default (one per core). On a 2-core machine two CPU ranks compete for the same cores
the single process already uses, so they are not expected to be faster: the gain is for nodes with a
GPU per rank (NCCL), where each rank has its own device and the all-reduce of the gradients is the
only added work.

Memory: a save_to_disk folder of N PNG images (Arrow, memory-mapped), one epoch of `latentlab train
--dataset hf:DIR` (one thread) in a fresh process each, peak RSS (ru_maxrss) of that process. Target: peak
memory grows < 10% for 10× the images.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import fmt, machine_line, median, print_table, summary_row, write_json, yes_no
from benchmarks.train_throughput import make_images

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["--hidden", "400", "--latent-dim", "20", "--lr", "1e-3", "--seed", "0", "--device", "cpu", "--json"]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "LATENTLAB_DEVICE": "cpu"}


def run_train(folder: Path, data: str, epochs: int, batch: int, ranks: int | None, threads: int | None = None
              ) -> tuple[float, float]:
    """(the run's own samples/s, wall seconds) of one `latentlab train`, under torchrun when ranks is set."""
    out = folder / f"run-{ranks}-{time.monotonic_ns()}.safetensors"
    args = ["train", "--dataset", data, "--out", str(out), "--epochs", str(epochs), "--batch-size", str(batch), *COMMON]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
                "--monitor-interval=0.2", "-m", "latentlab"] if ranks else [sys.executable, "-m", "latentlab"]
    start = time.perf_counter()
    extra = {"OMP_NUM_THREADS": str(threads)} if threads else {}
    proc = subprocess.run([*launcher, *args], capture_output=True, text=True, env={**env(), **extra}, timeout=1800)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"training failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(result["samples_per_s"]), wall


def throughput(folder: Path, rounds: int, epochs: int) -> dict[str, list[tuple[float, float]]]:
    x = make_images(8000, seed=0)
    path = folder / "strokes.npz"
    np.savez(path, x=x, y=np.zeros(len(x), np.int64))
    sides = {"one process, batch 128": (None, 128, None), "one process, 1 thread": (None, 128, 1),
             "torchrun, 1 rank of 128": (1, 128, None), "torchrun, 2 ranks of 64": (2, 64, None)}
    got: dict[str, list] = {name: [] for name in sides}
    for r in range(rounds):          # interleaved, so a noisy machine slows every side alike
        for name, (ranks, batch, threads) in sides.items():
            got[name].append(run_train(folder, f"npz:{path}", epochs, batch, ranks, threads))
            print(f"  round {r + 1}: {name}: {got[name][-1][0]:,.0f} samples/s, {got[name][-1][1]:.1f} s wall", flush=True)
    return got


def write_hf_folder(folder: Path, n: int) -> int:
    """A save_to_disk folder of n 28×28 PNG images (2,000 distinct ones, repeated) with labels; its size in bytes."""
    import pyarrow as pa

    sys.path.insert(0, str(ROOT / "tests"))
    from hf_folders import png_bytes, write_dataset_dict

    distinct = [png_bytes(im) for im in make_images(2000, seed=1)]
    schema = pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("label", pa.int64())])

    def split(count: int, offset: int):
        blobs = [distinct[(offset + i) % len(distinct)] for i in range(count)]
        col = pa.StructArray.from_arrays([pa.array(blobs, pa.binary()), pa.nulls(count, pa.string())], ["bytes", "path"])
        table = pa.table([col, pa.array(np.arange(count) % 10)], schema=schema)
        return table, {"image": {"_type": "Image"}, "label": {"_type": "ClassLabel", "names": [str(d) for d in range(10)]}}

    write_dataset_dict(folder, {"train": split(n - n // 10, 0), "test": split(n // 10, 7)})
    return sum(p.stat().st_size for p in folder.rglob("*.arrow"))


def peak_training(folder: Path, data: str) -> tuple[float, float]:
    """(peak RSS in MB, samples/s) of one epoch of `latentlab train` on `data`, in a fresh process."""
    code = ("import json, resource, subprocess, sys\n"
            "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "assert p.returncode == 0, p.stderr[-2000:]\n"
            "r = json.loads(p.stdout.strip().splitlines()[-1])\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r['samples_per_s'])\n")
    out = folder / f"mem-{time.monotonic_ns()}.safetensors"
    cmd = [sys.executable, "-c", code, sys.executable, "-m", "latentlab", "train", "--dataset", data, "--out", str(out),
           "--epochs", "1", "--batch-size", "128", *COMMON]
    # One thread: this part measures memory, and a shared machine makes two spinning threads crawl.
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**env(), "OMP_NUM_THREADS": "1"}, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"training failed:\n{proc.stderr[-2000:]}")
    kb, rate = proc.stdout.split()
    return int(kb) / 1024, float(rate)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one round, 10k vs 100k streamed images")
    ap.add_argument("--full", action="store_true", help="100k vs 1M streamed images")
    ap.add_argument("--only", choices=("throughput", "memory"), help="run one of the two parts")
    ap.add_argument("--json", metavar="FILE", help="write the summary rows here (for python -m benchmarks)")
    args = ap.parse_args(argv)
    rounds, epochs = (1, 2) if args.quick else (3, 3)
    small = 100_000 if args.full else 10_000 if args.quick else 20_000
    print(machine_line(), flush=True)
    folder = Path(tempfile.mkdtemp(prefix="latentlab-dist-"))
    rows = []
    try:
        if args.only != "memory":
            rows += throughput_rows(folder, rounds, epochs)
        if args.only != "throughput":
            rows += memory_rows(folder, small)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("\nA GPU node: one rank per GPU (torchrun --nproc_per_node=GPUS), NCCL between them, the dataset on "
          "a local disk each rank can map (hf:) or held by every rank (the other formats), and a per-rank "
          "batch that keeps each GPU busy; the ranks then only add the gradients' all-reduce to each step.")
    print(f"{machine_line()}; load average now {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    write_json(args.json, rows)
    return 0


def throughput_rows(folder: Path, rounds: int, epochs: int) -> list[dict]:
    rows = []
    got = throughput(folder, rounds, epochs)
    rate = {name: median([r for r, _ in v]) for name, v in got.items()}
    wall = {name: median([w for _, w in v]) for name, v in got.items()}
    base = rate["one process, batch 128"]
    table = [[name, fmt(rate[name]), fmt(wall[name]), f"{rate[name] / base:.2f}×"] for name in got]
    print_table(["side (global batch 128)", "samples/s (median)", "wall s", "vs one process"], table,
                title="Training throughput on the CPU: 8,000 28×28 images, 784-400-20 MLP")
    two = rate["torchrun, 2 ranks of 64"]
    rows.append(summary_row("2 CPU ranks (gloo) vs one process, same global batch 128, samples/s", f"{two:,.0f}/s",
                            f"{base:,.0f}/s (one process)", f"{two / base:.2f}×", "≥ 0.9·N× on N GPUs (not measurable here)"))
    rows.append(summary_row("1 rank under torchrun (DDP overhead), samples/s", f"{rate['torchrun, 1 rank of 128']:,.0f}/s",
                            f"{base:,.0f}/s (one process)", f"{rate['torchrun, 1 rank of 128'] / base:.2f}×"))
    return rows


def memory_rows(folder: Path, small: int) -> list[dict]:
    rows = []
    peaks = []
    for n in (small, 10 * small):
        sub = folder / f"hf-{n}"
        t0 = time.perf_counter()
        size = write_hf_folder(sub, n)
        print(f"  wrote {n:,} PNG images ({size / 1e6:,.0f} MB of Arrow) in {time.perf_counter() - t0:.0f} s", flush=True)
        peaks.append((n, size, *peak_training(folder, f"hf:{sub}")))
        shutil.rmtree(sub)
        print(f"  hf: {n:,} images: peak {peaks[-1][2]:,.0f} MB, {peaks[-1][3]:,.0f} samples/s", flush=True)
    print_table(["images streamed", "Arrow files", "peak RSS", "samples/s"],
                [[f"{n:,}", f"{s / 1e6:,.0f} MB", f"{p:,.0f} MB", fmt(r)] for n, s, p, r in peaks],
                title="One epoch of `latentlab train --dataset hf:DIR`, each in a fresh process")
    growth = peaks[1][2] / peaks[0][2] - 1
    rows.append(summary_row(f"peak RSS training from hf: {peaks[1][0]:,} images", f"{peaks[1][2]:,.0f} MB",
                            f"{peaks[0][2]:,.0f} MB ({peaks[0][0]:,} images)", f"+{100 * growth:.1f}%",
                            "< +10% for 10× the images", yes_no(growth < 0.10)))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
