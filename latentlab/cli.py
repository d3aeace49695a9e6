"""The `latentlab` command: the GUI by default, plus headless `train` and `eval`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from ._version import __version__

DEFAULT_DATASET = "digits"


def _hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes comma-separated layer widths like 512,256, not {text!r}")
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"--hidden takes positive layer widths like 512,256, not {text!r}")
    return widths


LIKELIHOOD_HELP = ("how to read the decoder's output: bernoulli (logits), bernoulli-probs or gaussian[:SIGMA] "
                   "(default: the model's own)")


def _add_model_args(parser, *, required: bool = False) -> None:
    parser.add_argument("--model", metavar="SPEC", required=required,
                        help="the model to open: PATH.safetensors, PATH.py:NAME, package.module:NAME or diffusers:DIR")
    parser.add_argument("--weights", type=Path, metavar="FILE",
                        help="fine-tuned weights (.safetensors) for a Python or diffusers --model")


def build_parser() -> argparse.ArgumentParser:
    from .core.data import describe_specs
    from .core.model_spec import describe_model_specs

    p = argparse.ArgumentParser(
        prog="latentlab",
        description="Look inside variational autoencoders. With no subcommand, opens the GUI on the "
                    "bundled pretrained model and the digits dataset.",
        epilog="Model SPEC forms:\n" + describe_model_specs() + "\n\nDataset SPEC forms:\n" + describe_specs(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"latentlab {__version__}")
    sub = p.add_subparsers(dest="command", metavar="{gui,train,eval}")

    g = sub.add_parser("gui", help="open the explorer window (the default)")
    g.add_argument("--checkpoint", type=Path, help="checkpoint to open (default: the bundled digits model)")
    _add_model_args(g)
    g.add_argument("--likelihood", metavar="KIND", help=LIKELIHOOD_HELP)
    g.add_argument("--dataset", metavar="SPEC", help="dataset to show (default: the checkpoint's own)")
    g.add_argument("--screenshot", type=Path, metavar="OUT.png",
                   help="render the fully loaded window off screen to a PNG and exit")

    t = sub.add_parser("train", help="train a VAE headless, with a progress bar",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--dataset", metavar="SPEC", required=True)
    t.add_argument("--out", type=Path, required=True, help="checkpoint to write (.safetensors), saved at every epoch end")
    t.add_argument("--latent-dim", type=int, default=2)
    t.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    t.add_argument("--hidden", type=_hidden, default=(512, 256), help="hidden layer widths, e.g. 512,256")
    t.add_argument("--likelihood", metavar="KIND", help="bernoulli or gaussian for a new model (default bernoulli); "
                   "with --model: " + LIKELIHOOD_HELP)
    _add_model_args(t)
    t.add_argument("--beta", type=float, default=1.0)
    t.add_argument("--warmup-steps", type=int, default=0, help="linear KL warm-up over this many steps")
    t.add_argument("--free-bits", type=float, default=0.0, help="per-dimension free nats of KL")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    t.add_argument("--resume", type=Path, metavar="CHECKPOINT", help="warm start from this checkpoint's weights")
    t.add_argument("--json", action="store_true", help="print one JSON object with the results at the end")

    e = sub.add_parser("eval", help="test-set ELBO, KL per dimension, active units, log p(x) estimate",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    e.add_argument("checkpoint", type=Path, nargs="?", help="a latentlab checkpoint (or use --model SPEC)")
    e.add_argument("--checkpoint", type=Path, dest="checkpoint_opt", metavar="PATH", help=argparse.SUPPRESS)
    _add_model_args(e)
    e.add_argument("--likelihood", metavar="KIND", help=LIKELIHOOD_HELP)
    e.add_argument("--dataset", metavar="SPEC", help="default: the dataset the checkpoint was trained on")
    e.add_argument("--iw-samples", type=int, default=100, help="importance samples for the log p(x) estimate (0: skip)")
    e.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="cpu")
    e.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    from .core.errors import LatentLabError

    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "eval":
            return cmd_eval(args)
        return cmd_gui(args)
    except LatentLabError as exc:
        print(f"latentlab: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # configuration values rejected by the dataclasses
        print(f"latentlab: error: {exc}", file=sys.stderr)
        return 2


def cmd_gui(args) -> int:
    try:
        from .gui.app import run
    except ImportError as exc:
        print(f"latentlab: error: the GUI could not start ({exc}).", file=sys.stderr)
        return 2
    checkpoint = getattr(args, "checkpoint", None)
    spec, weights, likelihood = (getattr(args, name, None) for name in ("model", "weights", "likelihood"))
    if spec is not None and checkpoint is not None:
        raise ValueError("gui opens one model: give --checkpoint PATH or --model SPEC, not both")
    if spec is None and (weights is not None or likelihood is not None):
        raise ValueError("--weights and --likelihood go with --model SPEC")
    if spec is not None:
        from .core.model_spec import spec_kind

        spec_kind(spec)  # a malformed SPEC is refused here, before a window opens
    return run(checkpoint=checkpoint, dataset=getattr(args, "dataset", None),
               screenshot=getattr(args, "screenshot", None), model=spec, weights=weights, likelihood=likelihood)


def cmd_train(args) -> int:
    from .core.checkpoint import load_checkpoint
    from .core.config import ModelConfig, TrainConfig
    from .core.data import load_dataset
    from .core.device import describe, resolve_device
    from .core.model import build_model
    from .core.model_spec import save_model
    from .core.training import train

    device = resolve_device(args.device)
    data = load_dataset(args.dataset, seed=args.seed)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta,
                      warmup_steps=args.warmup_steps, free_bits=args.free_bits, seed=args.seed,
                      device=device.type, scatter_points=0)
    history: list = []
    if args.model:
        model, history = _foreign_for_training(args, data, device)
    elif args.resume:
        ckpt = load_checkpoint(args.resume)
        model, history = ckpt.model, list(ckpt.history)
        if model.cfg.image_shape != data.image_shape:
            raise ValueError(f"{args.resume} expects images of shape {model.cfg.image_shape}, "
                             f"but {args.dataset} has {data.image_shape}")
    else:
        model = build_model(ModelConfig(image_shape=data.image_shape, latent_dim=args.latent_dim, arch=args.arch,
                                        hidden=args.hidden, likelihood=args.likelihood or "bernoulli"), seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    quiet = args.json or not sys.stderr.isatty()
    if not args.json:
        n_params = sum(p.numel() for p in model.parameters())
        print(f"Training {model.describe()}, {n_params:,} parameters, on {data.name} "
              f"({len(data.x_train):,} train / {len(data.x_test):,} test) on {describe(device)}.", file=sys.stderr)

    stop = {"flag": False}
    previous = signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("flag", True))
    last = None
    try:
        for snap in train(model, data, cfg, history=history, should_stop=lambda: stop["flag"]):
            last = snap
            if snap.record is not None:
                history.append(snap.record)
            if snap.record is not None or snap.done:
                # Saved at every epoch end so a crash or Ctrl-C loses at most one epoch.
                save_model(args.out, model, dataset=data.spec, history=history, train_config=cfg)
            _progress(snap, quiet)
    finally:
        signal.signal(signal.SIGINT, previous)
    if not quiet:
        print(file=sys.stderr)
    if last.error:
        print(f"latentlab: error: {last.error} Saved them to {args.out}.", file=sys.stderr)
        return 1
    rec = history[-1] if history else {}
    result = {
        "out": str(args.out), "dataset": data.spec, "device": device.type, "epochs": len(history),
        "train": {"recon": rec.get("recon"), "kl": rec.get("kl"), "elbo": rec.get("elbo")},
        "test": {"recon": rec.get("test_recon"), "kl": rec.get("test_kl"), "elbo": rec.get("test_elbo")},
        "seconds": round(last.seconds, 3), "samples_per_s": round(last.samples_per_s, 1), "cancelled": last.cancelled,
    }
    if args.json:
        print(json.dumps(result))
    else:
        t = result["test"]
        where = "stopped early" if last.cancelled else "done"
        print(f"{where}: test ELBO {_fmt(t['elbo'])} nats (recon {_fmt(t['recon'])}, KL {_fmt(t['kl'])}), "
              f"{result['samples_per_s']:,.0f} samples/s; saved {args.out}", file=sys.stderr)
    return 130 if last.cancelled else 0


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


_last_draw = [0.0]


def _progress(snap, quiet: bool) -> None:
    if quiet:
        return
    now = time.monotonic()
    if not snap.done and now - _last_draw[0] < 0.1:
        return
    _last_draw[0] = now
    width = 28
    filled = int(width * snap.fraction)
    bar = "#" * filled + "-" * (width - filled)
    sys.stderr.write(f"\repoch {min(snap.epoch + 1, snap.epochs)}/{snap.epochs} [{bar}] {100 * snap.fraction:5.1f}%  "
                     f"ELBO {snap.elbo:9.2f}  recon {snap.recon:8.2f}  KL {snap.kl:6.2f}  "
                     f"{snap.samples_per_s:9,.0f} samples/s ")
    sys.stderr.flush()


def cmd_eval(args) -> int:
    from .core.adapters import validate
    from .core.analysis import evaluate
    from .core.data import load_dataset
    from .core.device import resolve_device
    from .core.model_spec import open_model

    if args.iw_samples < 0:
        raise ValueError("--iw-samples must be 0 or more")
    given = [v for v in (args.checkpoint, args.checkpoint_opt, args.model) if v is not None]
    if len(given) != 1:
        raise ValueError("eval takes one model: a CHECKPOINT, --checkpoint PATH or --model SPEC")
    spec = str(given[0])
    device = resolve_device(args.device)
    opened = open_model(spec, weights=args.weights, likelihood=args.likelihood, device=device)
    spec_ds = args.dataset or opened.dataset
    if not spec_ds:
        raise ValueError(f"{spec} does not record its dataset; pass --dataset SPEC")
    data = load_dataset(spec_ds)
    x = data.x_test if len(data.x_test) else data.x_train
    model = validate(opened.model, x[:8])
    stats = evaluate(model, x, iw_samples=args.iw_samples)
    stats.update(checkpoint=spec, model=spec, description=model.describe(), dataset=spec_ds)
    if args.json:
        print(json.dumps(stats))
        return 0
    print(f"{spec} on {spec_ds} ({stats['examples']:,} test examples), nats per example:")
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


def _foreign_for_training(args, data, device):
    """A copy of the user's model (or a checkpoint) to fine-tune, checked on the dataset's images."""
    from .core.adapters import validate
    from .core.errors import ModelError
    from .core.model_spec import open_model, refuse_overwrite

    if args.resume:
        raise ValueError("--resume and --model both name the model to train; give one of them")
    refuse_overwrite(args.out, args.model, args.weights)
    opened = open_model(args.model, weights=args.weights, likelihood=args.likelihood, device=device)
    model = validate(opened.model, data.x_train[:8])
    if not model.trainable:
        raise ModelError(f"{model.describe()} has no trainable parameters, so there is nothing to fine-tune.")
    return model, opened.history
