"""`latentlab eval A B ...`: several models on one dataset, one entry each; and the disentanglement
scores `eval --factors` adds to an entry."""

from __future__ import annotations

import argparse
import json
import sys

from .output import _short, progress_bar

ROWS = (("elbo", "ELBO"), ("recon", "recon NLL"), ("kl", "KL"), ("log_px_iw", "log p(x) IW"), ("gap", "gap"),
        ("active_units", "active units"), ("mig", "MIG"), ("dci.disentanglement", "DCI disentanglement"),
        ("dci.completeness", "DCI completeness"), ("dci.informativeness", "DCI informativeness"), ("sap", "SAP"),
        ("beta_vae", "β-VAE score"), ("factor_vae", "FactorVAE score"))


def _models(args) -> list[str]:
    given = list(args.checkpoint or []) + ([args.model] if args.model is not None else [])
    if args.checkpoint_opt is not None:
        given.append(str(args.checkpoint_opt))
    return [str(g) for g in given]


def one_model(args) -> bool:
    """True when eval names at most one model (then args.checkpoint becomes that one path, as encode has it)."""
    if not isinstance(args.checkpoint, list):
        return True
    if len(_models(args)) > 1:
        return False
    from pathlib import Path

    args.checkpoint = Path(args.checkpoint[0]) if args.checkpoint else None
    return True


def factor_entry(model, data, estimator: str) -> dict:
    """The disentanglement keys of an eval entry, with progress on a terminal's stderr."""
    from latentlab.core.meaning.disentanglement import model_factor_scores

    scores = model_factor_scores(model, data, estimator=estimator, progress=progress_bar("scoring factors", 40))
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return {**scores.as_dict(), "factor_split": "train"}


def cmd_eval_models(args, model_and_data, evaluate_one) -> int:
    """Each model evaluated as `eval` does one (model_and_data opens it, evaluate_one scores it), on the
    first one's dataset."""

    if args.weights is not None:
        raise ValueError("--weights names one model's weights; to compare fine-tuned weights, evaluate them one at a "
                         "time or save each as a checkpoint")
    entries, dataset = [], None
    for spec in _models(args):
        one = argparse.Namespace(**{**vars(args), "checkpoint": spec, "checkpoint_opt": None, "model": None})
        if dataset is not None:
            one.dataset = dataset   # every model on the first one's dataset
        model, spec, spec_ds, data = model_and_data(one)
        dataset = dataset or spec_ds
        stats, _ = evaluate_one(args, model, spec, spec_ds, data)
        if stats is None:
            return 130
        entries.append(stats)
    if args.json:
        print(json.dumps({"dataset": dataset, "models": entries}))
        return 0
    _print_table(entries, dataset)
    return 0


def _value(entry: dict, key: str):
    for part in key.split("."):
        entry = entry.get(part) if isinstance(entry, dict) else None
    return entry


def _print_table(entries: list[dict], dataset: str) -> None:
    width = 22
    print(f"On {_short(dataset)} ({entries[0]['examples']:,} test examples), nats per example:")
    print(" " * width + "".join(f"{'model ' + str(i + 1):>14s}" for i in range(len(entries))))
    for key, name in ROWS:
        values = [_value(e, key) for e in entries]
        if all(v is None for v in values):
            continue
        cells = "".join(f"{'n/a':>14s}" if v is None else f"{v:>14d}" if isinstance(v, int) else f"{v:>14.3f}"
                        for v in values)
        print(f"  {name:{width - 2}s}{cells}")
    for i, e in enumerate(entries):
        print(f"  model {i + 1}: {_short(e['model'])} ({_short(e['description'])})")


def print_factor_scores(stats: dict) -> None:
    d = stats["dci"]
    fs = stats["factor_scores"]
    print(f"  MIG           {stats['mig']:10.3f}")
    print(f"  DCI           {d['disentanglement']:10.3f} disentanglement, {d['completeness']:.3f} completeness, "
          f"{d['informativeness']:.3f} informativeness")
    print(f"  SAP           {stats['sap']:10.3f}")
    print(f"  β-VAE score   {stats['beta_vae']:10.3f}")
    print(f"  FactorVAE     {stats['factor_vae']:10.3f}")
    print(f"  (on {fs['points']:,} training images; factors {', '.join(fs['factors'])}; DCI by {fs['estimator']}"
          + (f"; {'; '.join(fs['notes'])}" if fs["notes"] else "") + ")")
