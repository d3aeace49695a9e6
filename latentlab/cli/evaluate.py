"""`latentlab eval` and `latentlab encode`: a model and its dataset, scored or written out as a table."""

from __future__ import annotations

import json
import signal
import sys
import time

from .output import _bar, _short, _warn, refuse_overwriting_inputs


def _model_and_data(args):
    """The model (a checkpoint, or --model SPEC with --weights/--likelihood), its dataset (default:
    the one its file records, if that is an ordinary location) and a check that the two fit."""
    from latentlab.core.data.specs import checkpoint_dataset_refusal, load_dataset
    from latentlab.core.errors import DatasetError
    from latentlab.core.files.model_spec import open_model
    from latentlab.core.training.device import resolve_device

    given = [v for v in (args.checkpoint, args.checkpoint_opt, args.model) if v is not None]
    if len(given) != 1:
        raise ValueError(f"{args.command} takes one model: a CHECKPOINT, --checkpoint PATH or --model SPEC")
    spec = str(given[0])
    opened = open_model(spec, weights=args.weights, likelihood=args.likelihood, device=resolve_device(args.device))
    spec_ds = args.dataset or opened.dataset
    if not spec_ds:
        raise ValueError(f"{_short(spec)} does not record its dataset; pass --dataset SPEC")
    if not args.dataset:
        refusal = checkpoint_dataset_refusal(spec_ds)
        if refusal:
            raise DatasetError(f"{refusal.rstrip('.')}; pass --dataset SPEC.")
        if getattr(args, "out", None) is not None:
            refuse_overwriting_inputs(args, spec_ds)   # the dataset the file records, known only now
    data = load_dataset(spec_ds)
    expects = getattr(opened.model, "image_shape", None)
    if expects is not None and tuple(expects) != tuple(data.image_shape):
        raise ValueError(f"{_short(spec)} expects images of shape {tuple(expects)}, "
                         f"but {_short(spec_ds)} has {tuple(data.image_shape)}")
    x = data.x_test if len(data.x_test) else data.x_train
    model = opened.check(x[:8])   # the weights file's history is checked once the latent size is known
    _warn(opened.warnings)
    return model, spec, spec_ds, data


def cmd_encode(args) -> int:
    from latentlab.core.errors import Cancelled, LatentLabError
    from latentlab.core.files.latent_table import FORMATS, encode_table, write_table

    if args.out.suffix.lower() not in FORMATS:
        raise LatentLabError(f"--out must name a .csv or .npz file, not {_short(str(args.out))}.")
    refuse_overwriting_inputs(args, args.dataset)
    model, _, _, data = _model_and_data(args)
    quiet = not sys.stderr.isatty()
    last = [0.0]

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if not quiet and (fraction >= 1 or now - last[0] >= 0.1):
            last[0] = now
            sys.stderr.write(f"\rencoding {len(data.x_train) + len(data.x_test):,} images {_bar(fraction)} ")
            sys.stderr.flush()

    stop = {"flag": False}
    previous = signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("flag", True))
    try:
        table = encode_table(model, data, batch=args.batch_size, progress=progress,
                             should_stop=lambda: stop["flag"])
    except Cancelled:
        print("\nlatentlab: encoding stopped; nothing written.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    if not quiet:
        print(file=sys.stderr)
    write_table(args.out, table)
    print(f"wrote {len(table):,} rows ({len(data.x_train):,} train, {len(data.x_test):,} test; "
          f"K={table.mu.shape[1]}) to {_short(str(args.out))}", file=sys.stderr)
    return 0


def cmd_eval(args) -> int:
    from latentlab.core.inference.analysis import evaluate

    model, spec, spec_ds, data = _model_and_data(args)
    x = data.x_test if len(data.x_test) else data.x_train
    stats = evaluate(model, x, iw_samples=args.iw_samples)
    stats.update(checkpoint=spec, model=spec, description=model.describe(), dataset=spec_ds)
    if args.json:
        print(json.dumps(stats))
        return 0
    print(f"{_short(spec)} on {_short(spec_ds)} ({stats['examples']:,} test examples), nats per example:")
    print(f"  ELBO          {stats['elbo']:10.3f}")
    print(f"  recon NLL     {stats['recon']:10.3f}")
    print(f"  KL            {stats['kl']:10.3f}")
    if args.iw_samples:
        print(f"  log p(x) IW-{args.iw_samples:<5d}{stats['log_px_iw']:10.3f}")
        print(f"  gap           {stats['gap']:10.3f}   (log p(x) - ELBO = KL(q(z|x) || p(z|x)), estimated)")
    print(f"  active units  {stats['active_units']} of {stats['latent_dim']}")
    kl_dims = stats["kl_per_dim"]
    more = f" ... ({len(kl_dims) - 32} more; --json lists all)" if len(kl_dims) > 32 else ""
    print("  KL per dim    " + " ".join(f"{v:.2f}" for v in kl_dims[:32]) + more)
    return 0
