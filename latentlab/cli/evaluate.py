"""`latentlab eval` and `latentlab encode`: a model and its dataset, scored or written out as a table."""

from __future__ import annotations

import json
import sys
import time

from .output import _bar, _short, _warn, progress_bar, refuse_overwriting_inputs


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
    _warn(list(opened.warnings) + list(model.notes()))
    return model, spec, spec_ds, data


def _stoppable(run, stopped: str):
    """run(), or None after saying `stopped` when Ctrl+C ended it. Ctrl+C raises at once (a user's
    model may sit in its own code for minutes, where no stop flag would be polled); nothing is
    written before the run ends, so there is nothing to keep."""
    try:
        return run()
    except KeyboardInterrupt:
        print(f"\nlatentlab: {stopped}", file=sys.stderr)
        return None


def cmd_encode(args) -> int:
    from latentlab.core.errors import LatentLabError
    from latentlab.core.tables.latent_table import FORMATS, encode_table, write_table

    if args.out.suffix.lower() not in FORMATS:
        raise LatentLabError(f"--out must name a .csv or .npz file, not {_short(str(args.out))}.")
    refuse_overwriting_inputs(args, args.dataset)
    model, _, _, data = _model_and_data(args)
    progress = progress_bar(f"encoding {len(data.x_train) + len(data.x_test):,} images")
    quiet = progress is None
    table = _stoppable(lambda: encode_table(model, data, batch=args.batch_size, progress=progress),
                       "encoding stopped (interrupted); nothing written.")
    if table is None:
        return 130
    if not quiet:
        print(file=sys.stderr)
    write_table(args.out, table)
    print(f"wrote {len(table):,} rows ({len(data.x_train):,} train, {len(data.x_test):,} test; "
          f"K={table.mu.shape[1]}) to {_short(str(args.out))}", file=sys.stderr)
    return 0


def cmd_eval(args) -> int:
    from .compare import cmd_eval_models, one_model

    if not one_model(args):
        return cmd_eval_models(args, _model_and_data, evaluate_one)
    model, spec, spec_ds, data = _model_and_data(args)
    stats, total = evaluate_one(args, model, spec, spec_ds, data)
    if stats is None:
        return 130
    if args.json:
        print(json.dumps(stats))
        return 0
    what = f"{stats['examples']:,} of {total:,}" if stats["examples"] < total else f"{total:,}"
    print(f"{_short(spec)} on {_short(spec_ds)} ({what} {stats['split']} examples), nats per example:")
    if stats["deterministic"]:
        print(f"  recon NLL at the code  {stats['recon']:10.3f}   (a deterministic autoencoder: no ELBO)")
        print(f"  active units  {stats['active_units']} of {stats['latent_dim']}")
        return 0
    kl_how = "" if stats["kl_method"] == "closed form" else f"   ({stats['kl_method']})"
    print(f"  ELBO          {stats['elbo']:10.3f}")
    print(f"  recon NLL     {stats['recon']:10.3f}")
    print(f"  KL            {stats['kl']:10.3f}{kl_how}")
    if stats.get("iw_samples"):
        print(f"  {'log p(x) IW':<14}{stats['log_px_iw']:10.3f}   (importance weighted, {stats['iw_samples']:,} samples)")
        print(f"  gap           {stats['gap']:10.3f}   (log p(x) - ELBO = KL(q(z|x) || p(z|x)), estimated)")
    print(f"  active units  {stats['active_units']} of {stats['latent_dim']}")
    print(f"  prior         {stats['prior']}")
    kl_dims = stats["kl_per_dim"]
    more = f" ... ({len(kl_dims) - 32} more; --json lists all)" if len(kl_dims) > 32 else ""
    against = "" if stats["kl_per_dim_against"] == "the prior" else " (each against N(0, 1))"
    print(f"  KL per dim{against}  " + " ".join(f"{v:.2f}" for v in kl_dims[:32]) + more)
    if args.factors:
        from .compare import print_factor_scores

        print_factor_scores(stats)
    return 0


def evaluate_one(args, model, spec: str, spec_ds: str, data) -> tuple[dict | None, int]:
    """eval's entry for one model: its test images (the first --limit of them), IW-K as _iw_samples
    picks it, progress on stderr, the factor scores with --factors (None when stopped with Ctrl+C),
    and how many images there were before --limit."""
    from latentlab.core.data.pixels import as_pixels, stored
    from latentlab.core.inference.analysis import evaluate

    from .compare import factor_entry

    x = data.x_test if len(data.x_test) else data.x_train
    total = len(x)
    if args.limit and args.limit < total:
        x = as_pixels(stored(x)[:args.limit])
    iw = _iw_samples(args, model, x)
    quiet = not sys.stderr.isatty()
    last = [0.0, -1]
    start = time.monotonic()

    def progress(done: int, n: int) -> None:
        now = time.monotonic()
        if quiet:   # a log: a line at each tenth, once the evaluation is long enough to need one
            tenth = 10 * done // max(n, 1)
            if tenth > last[1] and now - start >= LOG_PROGRESS_AFTER_S:
                last[1] = tenth
                print(f"evaluating: {done:,} of {n:,} images", file=sys.stderr, flush=True)
        elif done >= n or now - last[0] >= 0.1:
            last[0] = now
            sys.stderr.write(f"\revaluating {n:,} images (IW-{iw}) {_bar(done / max(n, 1))} ")
            sys.stderr.flush()

    stats = _stoppable(lambda: evaluate(model, x, iw_samples=iw, progress=progress),
                       "evaluation stopped (interrupted); nothing printed.")
    if stats is None:
        return None, total
    if not quiet:
        print(file=sys.stderr)
    stats.update(checkpoint=spec, model=spec, description=model.describe(), dataset=spec_ds,
                 split="test" if len(data.x_test) else "train")
    if args.factors:
        stats.update(factor_entry(model, data, args.dci_estimator))
    return stats, total


LOG_PROGRESS_AFTER_S = 2.0   # a log gets progress lines only from an evaluation that lasts this long
DEFAULT_IW = 100
IW_BUDGET_S = 120.0   # the default IW estimate is cut to fit about this long on this machine


def _iw_samples(args, model, x) -> int:
    """--iw-samples when given; else IW-100, made smaller (said on stderr) when this model's decoder
    would take more than about IW_BUDGET_S for these images."""
    if args.iw_samples is not None:
        return args.iw_samples
    if getattr(model, "deterministic", False):
        return 0
    seconds = _decode_seconds(model)
    wanted = len(x) * (DEFAULT_IW + 1) * seconds
    if wanted <= IW_BUDGET_S:
        return DEFAULT_IW
    k = int(IW_BUDGET_S / max(len(x) * seconds, 1e-12)) - 1
    k = max(1, max(v for v in (1, 2, 5, 10, 20, 50) if v <= max(k, 1)))
    _warn([f"IW-{DEFAULT_IW} would decode for about {_duration(wanted)} here, so the log p(x) estimate uses "
           f"IW-{k}; pass --iw-samples {DEFAULT_IW} to insist, or --limit N to score fewer images"])
    return k


def _decode_seconds(model, n: int = 16) -> float:
    """Seconds per decoded code, timed on a few codes (after one warm-up call)."""
    import torch

    from latentlab.core.models.adapters import LatentModel

    dev = LatentModel.device(model)
    z = torch.zeros((n, model.latent_dim), device=dev)
    with torch.no_grad():
        model.decode(z[:1])
        t = time.perf_counter()
        model.decode(z)
    return (time.perf_counter() - t) / n


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
