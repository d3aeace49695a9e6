"""Disentanglement scores on 60,000 latent means × K = 32 against 5 discrete factors, as the Factors
tab computes them on a worker, and how fast Stop is heard.

    python -m benchmarks.disentanglement            # ~1–2 minutes on the 2-core machine
    python -m benchmarks.disentanglement --quick    # 20,000 points

Cases, in one run:
  scores (lasso)    `disentanglement_scores(means, factors)`: MIG on every point, DCI by LassoCV and SAP on
                    10,000 + 5,000 points, β-VAE and FactorVAE on 10,000 + 5,000 votes of 64; the time of
                    each phase from its progress reports.
  one encode        the baseline beside it: encoding the same number of 28×28 images with latentlab's MLP
                    VAE (K = 32), which the window does after every run anyway.
  boosted trees     disentanglement_lib's DCI estimator: one factor's GradientBoostingClassifier for 10 of its
                    100 stages, scaled to 100 stages × 5 factors (marked "extrapolated"); why `lasso` is the default.
  Stop              the longest wait between Stop (should_stop() answering True from then on) and Cancelled
                    being raised, with Stop asked at 5 moments spread over the run.
Nothing here asserts.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import fmt, machine_line, print_table, summary_row, write_json


def synthetic(n: int, k: int = 32, seed: int = 0):
    """5 discrete factors (3, 6, 16, 12, 12 values, as the sprites); 10 latents mix them with noise,
    the rest are inactive (small noise)."""
    rng = np.random.default_rng(seed)
    sizes = (3, 6, 16, 12, 12)
    f = np.stack([rng.integers(0, s, n) for s in sizes], axis=1).astype(np.float64)
    z = 0.02 * rng.standard_normal((n, k))
    mix = rng.standard_normal((5, 10)) * (rng.random((5, 10)) < 0.3) + np.eye(5, 10) * 2
    z[:, :10] += (f / np.array(sizes)) @ mix + 0.1 * rng.standard_normal((n, 10))
    return z.astype(np.float32), {name: f[:, j] for j, name in enumerate(("shape", "scale", "rotation", "x", "y"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args(argv)
    import torch

    from latentlab.core.errors import Cancelled
    from latentlab.core.inference.analysis import encode
    from latentlab.core.meaning.disentanglement import disentanglement_scores
    from latentlab.core.models.config import ModelConfig
    from latentlab.core.models.vae import build_model

    n = 20_000 if args.quick else 60_000
    z, factors = synthetic(n)
    print(machine_line())
    marks = []
    t0 = time.perf_counter()
    scores = disentanglement_scores(z, factors, progress=lambda f, phase=None: marks.append((time.perf_counter(), phase)))
    total = time.perf_counter() - t0
    phases, last = {}, t0
    for t, phase in marks:
        phases[phase] = phases.get(phase, 0.0) + (t - last)
        last = t

    model = build_model(ModelConfig(image_shape=(1, 28, 28), latent_dim=32), seed=0).eval()
    images = np.random.default_rng(0).integers(0, 256, (n, 1, 28, 28), dtype=np.uint8)
    torch.set_grad_enabled(False)
    t = time.perf_counter()
    encode(model, images, batch=1024)
    encode_s = time.perf_counter() - t

    from sklearn.ensemble import GradientBoostingClassifier

    rows = np.random.default_rng(0).permutation(n)[:10_000]
    t = time.perf_counter()
    GradientBoostingClassifier(n_estimators=10, random_state=0).fit(z[rows], factors["rotation"][rows].astype(int))
    one = time.perf_counter() - t
    classes = (3, 6, 16, 12, 12)
    gbt_s = one / 16 * sum(classes) * 10   # trees per stage = classes; 10 → 100 stages

    waits = []
    for fraction in np.linspace(0.1, 0.9, 5):
        deadline = time.perf_counter() + fraction * total
        try:
            disentanglement_scores(z, factors, should_stop=lambda d=deadline: time.perf_counter() >= d)
        except Cancelled:
            waits.append(time.perf_counter() - deadline)

    print_table(["case", "seconds", "note"], [
        ["scores (lasso), all five", total, f"{n:,} × 32; MIG {scores.mig:.3f}, D {scores.disentanglement:.3f}"],
        *[[f"  {phase}", s, ""] for phase, s in phases.items()],
        ["one encode of as many 28×28 images (baseline)", encode_s, "latentlab MLP VAE, K = 32"],
        ["DCI by boosted trees (extrapolated)", gbt_s, "disentanglement_lib's estimator, 5 factors × 100 stages"],
        ["Stop: longest wait until Cancelled", max(waits) if waits else float("nan"), f"{len(waits)} stops"],
    ], title=f"Disentanglement scores on {n:,} means")
    write_json(args.json, [
        summary_row(f"disentanglement scores, {n:,} × 32 (lasso)", f"{fmt(total)} s", f"{fmt(encode_s)} s (one encode)",
                    f"{total / encode_s:.1f}×"),
        summary_row("  Stop heard within", f"{fmt(max(waits))} s" if waits else "n/a"),
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
