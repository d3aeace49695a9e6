"""The CUDA path, measured: training throughput, click-to-decode latency and a million-point encode.

    python -m benchmarks.gpu                      # on a machine with an NVIDIA GPU, about a minute
    python -m benchmarks.gpu --quick              # shorter
    python -m benchmarks.gpu --device cpu --quick # the same code on the CPU, to check that it runs

Without a CUDA device it says so and exits with status 0 (nothing measured), unless `--device cpu`
asks for the CPU dry run. Every row has a baseline measured in the same run:

- training samples/s for the MLP (784-400-20, batch 128 and 1024) and the conv model (batch 128)
  through latentlab's trainer on 60,000 MNIST-shaped images, beside the pytorch/examples VAE
  recipe (DataLoader + ToTensor, each batch copied to the device) on the same device;
- click-to-decode as the window does it (one latent code in, one CPU image out), p50/p95 over
  repeated calls, beside the same decode on the CPU;
- encoding 1,000,000 8×8 images (latent means and log-variances back on the host) through
  `latentlab.core.inference.analysis.encode`, beside a bare torch loop over the same data (whole array on
  the device, large batches, one copy back).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from torch import optim
from torch.utils.data import DataLoader
from torchvision import transforms

from benchmarks.common import fmt, machine_line, percentile, print_table, summary_row, write_json
from benchmarks.train_throughput import BaselineVAE, StrokeDigits, latentlab_data, loss_function, make_images
from latentlab.core.inference.analysis import decode, encode
from latentlab.core.models.config import ModelConfig, TrainConfig
from latentlab.core.models.vae import build_model
from latentlab.core.training.loop import train

LR = 1e-3
MLP = ModelConfig(image_shape=(1, 28, 28), latent_dim=20, hidden=(400,), arch="mlp")
CONV = ModelConfig(image_shape=(1, 28, 28), latent_dim=20, hidden=(256,), arch="conv")
SMALL = ModelConfig(image_shape=(1, 8, 8), latent_dim=2)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def latentlab_epoch(data, cfg: ModelConfig, batch: int, device: torch.device) -> float:
    """Samples/s of one timed epoch through the trainer, after one untimed warm-up epoch."""
    model = build_model(cfg, seed=0)
    tcfg = TrainConfig(epochs=2, batch_size=batch, lr=LR, seed=0, device=device.type, scatter_points=0,
                       snapshot_every=1_000_000)
    marks = []
    for snap in train(model, data, tcfg):
        if snap.error:
            raise SystemExit(f"latentlab training failed: {snap.error}")
        if snap.record is not None:
            sync(device)
            marks.append((time.perf_counter(), snap.step))
    (t0, s0), (t1, s1) = marks[-2], marks[-1]
    # Epoch-end work (the test pass, the snapshot) sits between the marks as it does in a real run.
    return (s1 - s0) * batch / (t1 - t0)


def baseline_epoch(dataset: StrokeDigits, batch: int, device: torch.device) -> float:
    """Samples/s of the pytorch/examples loop (its `data.to(device)` per batch), after a warm-up pass."""
    torch.manual_seed(0)
    model = BaselineVAE().to(device)
    opt = optim.Adam(model.parameters(), lr=LR)
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, pin_memory=device.type == "cuda")
    rate = 0.0
    for _ in range(2):
        sync(device)
        start = time.perf_counter()
        for data, _ in loader:
            data = data.to(device)
            opt.zero_grad()
            recon, mu, logvar = model(data)
            loss = loss_function(recon, data, mu, logvar)
            loss.backward()
            loss.item()  # the example reads the loss every step
            opt.step()
        sync(device)
        rate = len(dataset) / (time.perf_counter() - start)
    return rate


def decode_latency_ms(model, clicks: int, seed: int = 0) -> list[float]:
    """Milliseconds per click: one z in, one CPU image out, as the decoded view asks for it."""
    rng = np.random.default_rng(seed)
    zs = rng.normal(size=(clicks, model.latent_dim)).astype(np.float32)
    decode(model, zs[:1])  # warm-up: kernels, allocator
    out = []
    for z in zs:
        t = time.perf_counter()
        decode(model, z[None])
        out.append(1e3 * (time.perf_counter() - t))
    return out


def bare_encode(model, x: np.ndarray, device: torch.device, batch: int = 65536) -> float:
    """Seconds to encode x with a plain torch loop: one host→device copy, large batches, one copy back."""
    sync(device)
    t = time.perf_counter()
    with torch.no_grad():
        xd = torch.from_numpy(x).to(device)
        mus, lvs = zip(*(model.encode(xd[i:i + batch]) for i in range(0, len(xd), batch)))
        torch.cat(mus).cpu(), torch.cat(lvs).cpu()
    return time.perf_counter() - t


def latentlab_encode(model, x: np.ndarray, device: torch.device) -> float:
    sync(device)
    t = time.perf_counter()
    encode(model, x)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cpu: a dry run of the same code")
    ap.add_argument("--quick", action="store_true", help="fewer images, clicks and points")
    ap.add_argument("--json", default=None, help="write the summary rows here (for python -m benchmarks)")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        print(f"benchmarks.gpu: no CUDA device is visible to torch {torch.__version__} ({built}); nothing was "
              "measured. Run it on a machine with an NVIDIA GPU, or pass --device cpu for a dry run.")
        return 0
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    n_train = 6_000 if args.quick else 60_000
    clicks = 100 if args.quick else 500
    n_points = 100_000 if args.quick else 1_000_000
    print(f"{machine_line()}; measuring on {name}")

    images = make_images(n_train)
    labels = np.zeros(n_train, np.int64)
    data = latentlab_data(images, labels)
    dataset = StrokeDigits(torch.from_numpy(images), torch.from_numpy(labels), transforms.ToTensor())
    rows, summary = [], []
    for label, cfg, batch in (("MLP 784-400-20, batch 128", MLP, 128), ("MLP 784-400-20, batch 1024", MLP, 1024),
                              ("conv 32-64 / 256-20, batch 128", CONV, 128)):
        ours = latentlab_epoch(data, cfg, batch, device)
        base = baseline_epoch(dataset, batch, device) if cfg is MLP else float("nan")
        ratio = ours / base if base == base else float("nan")
        rows.append([f"training samples/s, {label}", f"{ours:,.0f}/s",
                     f"{base:,.0f}/s (examples loop)" if base == base else "—", f"{fmt(ratio)}×" if ratio == ratio else ""])
        summary.append(summary_row(f"training samples/s on {name}, {label}", f"{ours:,.0f}/s",
                                   f"{base:,.0f}/s" if base == base else "", f"{fmt(ratio)}×" if ratio == ratio else ""))

    model = build_model(MLP, seed=0).to(device).eval()
    cpu_model = build_model(MLP, seed=0).eval()
    on_dev, on_cpu = decode_latency_ms(model, clicks), decode_latency_ms(cpu_model, clicks)
    p95, p95_cpu = percentile(on_dev, 95), percentile(on_cpu, 95)
    rows.append(["click-to-decode (one z → CPU image), p50 / p95",
                 f"{fmt(percentile(on_dev, 50))} / {fmt(p95)} ms", f"{fmt(percentile(on_cpu, 50))} / {fmt(p95_cpu)} ms (CPU)",
                 f"{fmt(p95 / p95_cpu)}×"])
    summary.append(summary_row(f"click-to-decode p95 on {name} (core path)", f"{fmt(p95)} ms", f"{fmt(p95_cpu)} ms (CPU)",
                               f"{fmt(p95 / p95_cpu)}×", "≤ 10 ms", "yes" if p95 <= 10 else "NO"))

    small = build_model(SMALL, seed=0).to(device).eval()
    x = np.random.default_rng(0).random((n_points, 1, 8, 8), dtype=np.float32)
    ours = min(latentlab_encode(small, x, device) for _ in range(3))
    bare = min(bare_encode(small, x, device) for _ in range(3))
    rows.append([f"encode {n_points:,} 8×8 images (means + log-variances to host)", f"{ours:.3f} s",
                 f"{bare:.3f} s (bare torch loop)", f"{fmt(ours / bare)}×"])
    summary.append(summary_row(f"encode {n_points:,} images on {name}", f"{ours:.3f} s", f"{bare:.3f} s",
                               f"{fmt(ours / bare)}×"))

    print_table(["measurement", "latentlab", "baseline (same run)", "ratio"], rows,
                title=f"GPU check on {name}")
    write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
