"""Exact 2-D posterior grid (200×200) for one image with the bundled digits model.

    python -m benchmarks.posterior_grid              # ~15 s
    python -m benchmarks.posterior_grid --reps 20

Cases, interleaved (A B C A B C ...) over test images, median of `--reps` rounds after a warm-up:
  latentlab      `posterior_for_image(model, x, size=200)`: everything the inspector shows —
                 coarse pass for the box, 40,000 decodes in chunks of 4,096, Gauss–Hermite ELBO
                 (48² nodes), moments, grid KL.
  fixed box      the same with the box given (`span=`), i.e. without the coarse pass.
  one batch      the same as latentlab with all 40,000 points in one decoder call (chunk=40000).
  naive rows     the obvious loop: the same box, one decoder call per grid row (200 calls of 200
                 points) under torch.no_grad, then log-sum-exp for log p(x); no ELBO, no moments
                 (it does less work than latentlab and is still slower). The ratio column is
                 against this case.
  naive points   one decoder call per grid point; timed on the first 1,000 points of the grid
                 each round and scaled ×40 to the 40,000 (marked "extrapolated").
Target (docs/architecture.md): ≤ 250 ms for latentlab, off the GUI thread. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from benchmarks.common import interleaved, machine_line, median, print_table, spread, summary_row, write_json
from latentlab.core.data.specs import load_dataset
from latentlab.core.files.bundled import default_checkpoint
from latentlab.core.files.checkpoint import load_checkpoint
from latentlab.core.inference.objectives import log_std_normal, model_log_lik
from latentlab.core.inference.posterior import posterior_for_image

TARGET_MS = 250.0
SIZE = 200


def naive_rows(model, x_image: np.ndarray, box) -> float:
    """log p(x) on the grid, one decoder call per row: the loop one writes first."""
    x = torch.from_numpy(x_image)[None]
    x0, x1, y0, y1 = box
    dx, dy = (x1 - x0) / SIZE, (y1 - y0) / SIZE
    xs = torch.tensor(x0 + (np.arange(SIZE) + 0.5) * dx, dtype=torch.float32)
    rows = []
    with torch.no_grad():
        log_lik = model_log_lik(model, x)
        for j in range(SIZE):
            z = torch.stack([xs, torch.full_like(xs, y0 + (j + 0.5) * dy)], -1)
            rows.append((log_lik(z) + log_std_normal(z)).double())
        lj = torch.stack(rows)
    return float(torch.logsumexp(lj.flatten(), 0)) + float(np.log(dx * dy))


def naive_points(model, x_image: np.ndarray, box, n: int = 1000) -> float:
    """log p(x|z) + log p(z) one grid point per decoder call, for the first n points; seconds."""
    x = torch.from_numpy(x_image)[None]
    x0, x1, y0, y1 = box
    dx, dy = (x1 - x0) / SIZE, (y1 - y0) / SIZE
    t = time.perf_counter()
    with torch.no_grad():
        log_lik = model_log_lik(model, x)
        for k in range(n):
            j, i = divmod(k, SIZE)
            z = torch.tensor([[x0 + (i + 0.5) * dx, y0 + (j + 0.5) * dy]])
            float(log_lik(z) + log_std_normal(z))
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=10, help="interleaved rounds (default 10)")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--json", metavar="OUT", help="also write the summary rows to OUT (for python -m benchmarks)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    model = load_checkpoint(default_checkpoint()).model
    images = load_dataset("digits").x_test[:8]
    print(machine_line())
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"{args.reps} interleaved rounds over {len(images)} test digits; running...", flush=True)

    boxes = [posterior_for_image(model, im).extent for im in images]   # warm-up, and the boxes
    for im, box in zip(images, boxes):
        naive_rows(model, im, box)
        posterior_for_image(model, im, span=box, chunk=40_000)

    count = {"i": 0}   # which test image this round uses

    def timed(fn):
        def case():
            i = count["i"] % len(images)
            t = time.perf_counter()
            fn(images[i], boxes[i])
            return (time.perf_counter() - t) * 1000

        return case

    def advance():
        count["i"] += 1
        return 0.0

    res = interleaved({
        "latentlab": timed(lambda im, box: posterior_for_image(model, im, size=SIZE).log_px),
        "fixed box": timed(lambda im, box: posterior_for_image(model, im, size=SIZE, span=box).log_px),
        "one batch": timed(lambda im, box: posterior_for_image(model, im, size=SIZE, chunk=40_000).log_px),
        "naive rows": timed(lambda im, box: naive_rows(model, im, box)),
        "naive points": lambda: naive_points(model, images[count["i"] % len(images)],
                                             boxes[count["i"] % len(images)]) * 1000 * (SIZE * SIZE / 1000),
        "_next": advance,
    }, args.reps)
    res.pop("_next")

    # the two computations of log p(x) on the same box agree (float32 decodes; 1e-3 nats)
    g = posterior_for_image(model, images[0], size=SIZE, span=boxes[0])
    agree = abs(g.log_px - naive_rows(model, images[0], boxes[0]))

    base = median(res["naive rows"])
    rows = []
    for name, ms in res.items():
        med = median(ms)
        label = f"{name} (extrapolated)" if name == "naive points" else name
        rows.append([label, spread(ms), f"{base / med:.2f}×",
                     ("yes" if med <= TARGET_MS else "NO") if name == "latentlab" else ""])
    print_table(["case (200×200 grid, one image)", "ms: median (min–max, n)", "speed-up vs naive rows", "≤ 250 ms"], rows,
                title=f"Exact posterior grid, bundled digits model, torch threads {torch.get_num_threads()}")
    print(f"\nlog p(x) latentlab vs naive rows on the same box: |Δ| = {agree:.1e} nats; "
          f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    ll = median(res["latentlab"])
    write_json(args.json, [summary_row("exact posterior grid 200×200, one image", f"{ll:.0f} ms",
                                       f"{base:.0f} ms (naive rows)", f"{base / ll:.1f}× faster",
                                       f"≤ {TARGET_MS:.0f} ms", "yes" if ll <= TARGET_MS else "NO")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
