"""`latentlab vector`: an attribute vector from one label to another, or along a factor, how far it
can be trusted (held-out AUC or R², bootstrap cosine), optionally saved as .npz."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from .output import _short

DIRECTION_SHOWN = 256   # coordinates printed in the JSON; a longer direction is in --out only


def cmd_vector(args) -> int:
    from latentlab.core.errors import Cancelled, LatentLabError
    from latentlab.core.inference.analysis import encode
    from latentlab.core.meaning.vectors import save_vector

    from .evaluate import _model_and_data
    from .output import progress_bar

    labels = args.source is not None or args.target is not None
    if labels == (args.factor is not None) or (labels and (args.source is None or args.target is None)):
        raise ValueError("vector takes --from label:A --to label:B, or --factor NAME")
    if args.out is not None:
        _check_out(args)
    model, spec, spec_ds, data = _model_and_data(args)
    stop = {"flag": False}
    previous = signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("flag", True))
    try:
        means = encode(model, data.x_train)[0]
        progress = progress_bar("bootstrap", 40)
        if labels:
            vector = _label_vector(args, data, means, progress, lambda: stop["flag"])
        else:
            vector = _factor_vector(args, data, means, progress, lambda: stop["flag"])
    except Cancelled:
        print("\nlatentlab: stopped; nothing written.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.out is not None:
        try:
            save_vector(args.out, vector, model=spec, dataset=spec_ds)
        except LatentLabError as exc:
            raise LatentLabError(str(exc)) from None
    result = {**vector.summary(), "model": spec, "dataset": spec_ds, "split": "train", "points": len(means),
              "out": None if args.out is None else str(args.out)}
    if vector.latent_dim <= DIRECTION_SHOWN:
        result["direction"] = [round(float(v), 7) for v in vector.direction]
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{_short(vector.title)} in {_short(spec)}'s latent space (K = {vector.latent_dim}), on {_short(spec_ds)}:")
    if vector.r2 is not None:
        print(f"  held-out R²     {vector.r2:8.3f}   (the factor predicted linearly from the means)")
    print(f"  held-out AUC    {vector.auc:8.3f}   ({vector.held_out:,} held-out points; 0.5 is chance)")
    print(f"  bootstrap cos   {vector.cosine:8.3f}   (mean over {vector.bootstraps} resamples; 1: always the same way)")
    print(f"  length          {vector.length:8.3f}   (α = 1 moves from {_short(vector.source)} to {_short(vector.target)})")
    if args.out is not None:
        print(f"  saved {_short(str(args.out))}")
    return 0


def _check_out(args) -> None:
    """--out names a new .npz that is none of the files read."""
    out = Path(args.out).expanduser().resolve()
    if out.suffix.lower() != ".npz":
        raise ValueError(f"--out must name a .npz file, not {_short(str(args.out))}")
    read = [args.checkpoint, args.weights, args.model and str(args.model).rpartition(":")[0] or args.model,
            args.dataset and args.dataset.partition(":")[2]]
    for path in read:
        if path and Path(str(path)).expanduser().resolve() == out:
            raise ValueError(f"--out {_short(str(args.out))} is one of the files this command reads; write the vector elsewhere")


def _label_vector(args, data, means, progress, should_stop):
    import numpy as np

    from latentlab.core.meaning.attributes import label_index, vector_between

    picked = []
    for flag, text in (("--from", args.source), ("--to", args.target)):
        kind, _, name = text.partition(":")
        if kind != "label" or not name:
            raise ValueError(f"{flag} takes label:NAME (a label's name or number), not {_short(text)}")
        picked.append(label_index(data.label_names, name))
    if picked[0] == picked[1]:
        raise ValueError("--from and --to name the same label")
    names = tuple(str(data.label_names[i]) for i in picked)
    groups = [means[np.asarray(data.y_train) == i] for i in picked]
    return vector_between(*groups, names=names, kind="labels", seed=args.seed, bootstraps=args.bootstrap,
                          progress=progress, should_stop=should_stop)


def _factor_vector(args, data, means, progress, should_stop):
    from latentlab.core.errors import LatentLabError
    from latentlab.core.meaning.attributes import vector_for_factor
    from latentlab.core.text import quote

    factors = data.factors_train or {}
    if args.factor not in factors:
        have = ", ".join(factors) if factors else "none"
        raise LatentLabError(f"{_short(data.name)} has no factor {quote(args.factor)} (its factors: {_short(have)}).")
    return vector_for_factor(means, factors[args.factor], args.factor, seed=args.seed, bootstraps=args.bootstrap,
                             progress=progress, should_stop=should_stop)
