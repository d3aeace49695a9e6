"""The `latentlab` command: the GUI by default, plus headless `train`, `eval` and `encode`."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

from ._version import __version__

DEFAULT_DATASET = "digits"


# Every number is range-checked here, before torch sees it: torch answers an absurd width with a C++
# traceback and numpy an out-of-range seed with a ValueError from deep inside.
def _hidden(text: str) -> tuple[int, ...]:
    from .core.config import MAX_LAYERS, MAX_WIDTH
    from .core.text import quote

    if len(text) > 1000:
        raise argparse.ArgumentTypeError(f"--hidden takes up to {MAX_LAYERS} comma-separated widths, not {quote(text)}")
    try:
        widths = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes comma-separated layer widths like 512,256, not {quote(text)}")
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"--hidden takes positive layer widths like 512,256, not {quote(text)}")
    if len(widths) > MAX_LAYERS or max(widths) > MAX_WIDTH:
        raise argparse.ArgumentTypeError(f"--hidden takes at most {MAX_LAYERS} widths of at most {MAX_WIDTH:,} each, "
                                         f"not {quote(text)}")
    return widths


def _int_in(lo: int, hi: int):
    def parse(text: str) -> int:
        from .core.text import quote

        try:
            value = int(text[:40])
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number from {lo:,} to {hi:,}, not {quote(text)}") from None
        if not lo <= value <= hi or len(text) > 40:
            raise argparse.ArgumentTypeError(f"expected a whole number from {lo:,} to {hi:,}, not {quote(text)}")
        return value

    return parse


def _float_in(lo: float, hi: float, *, above: bool = False):
    """A finite float in [lo, hi] (or (lo, hi] with above=True)."""
    def parse(text: str) -> float:
        from .core.text import quote

        bounds = f"above {lo:g} and at most {hi:g}" if above else f"from {lo:g} to {hi:g}"
        try:
            value = float(text[:60])
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number {bounds}, not {quote(text)}") from None
        if not math.isfinite(value) or value < lo or value > hi or (above and value == lo):
            raise argparse.ArgumentTypeError(f"expected a finite number {bounds}, not {quote(text)}")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line on stderr and exit 2, like every other error of the command."""

    def error(self, message):
        from .core.text import short

        self.exit(2, f"latentlab: error: {short(message)}\n")

    def format_help(self):
        # The SPEC lists live beside their loaders, which import torch: only --help pays for them,
        # not every start of the window.
        if self.epilog is None and self.prog == "latentlab":
            from .core.data import describe_specs
            from .core.model_spec import describe_model_specs

            self.epilog = "Model SPEC forms:\n" + describe_model_specs() + "\n\nDataset SPEC forms:\n" + describe_specs()
        return super().format_help()


LIKELIHOOD_HELP = ("how to read the decoder's output: bernoulli (logits), bernoulli-probs or gaussian[:SIGMA] "
                   "(default: the model's own)")


def _add_model_args(parser, *, required: bool = False) -> None:
    parser.add_argument("--model", metavar="SPEC", required=required,
                        help="the model to open: PATH.safetensors, PATH.py:NAME, package.module:NAME or diffusers:DIR")
    parser.add_argument("--weights", type=Path, metavar="FILE",
                        help="fine-tuned weights (.safetensors) for a Python or diffusers --model")


def _add_model_and_data_args(parser) -> None:
    """What eval and encode read: a checkpoint or a model SPEC, and the dataset (see _model_and_data)."""
    parser.add_argument("checkpoint", type=Path, nargs="?", help="a latentlab checkpoint (or use --model SPEC)")
    parser.add_argument("--checkpoint", type=Path, dest="checkpoint_opt", metavar="PATH", help=argparse.SUPPRESS)
    _add_model_args(parser)
    parser.add_argument("--likelihood", metavar="KIND", help=LIKELIHOOD_HELP)
    parser.add_argument("--dataset", metavar="SPEC", help="default: the dataset the checkpoint was trained on")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="latentlab",
        description="Look inside variational autoencoders. With no subcommand, opens the GUI on the "
                    "bundled pretrained model and the digits dataset.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"latentlab {__version__}")
    sub = p.add_subparsers(dest="command", metavar="{gui,train,eval,encode}")

    g = sub.add_parser("gui", help="open the explorer window (the default)")
    g.add_argument("--checkpoint", type=Path, help="checkpoint to open (default: the bundled digits model)")
    _add_model_args(g)
    g.add_argument("--likelihood", metavar="KIND", help=LIKELIHOOD_HELP)
    g.add_argument("--dataset", metavar="SPEC", help="dataset to show (default: the checkpoint's own)")
    g.add_argument("--projection", choices=("pair", "pca", "umap", "tsne"),
                   help="what the latent view shows first: a pair of dimensions (the default), the PCA plane of "
                        "the means, or a UMAP or t-SNE map of them (these need `pip install 'latentlab[projections]'`)")
    g.add_argument("--screenshot", type=Path, metavar="OUT.png",
                   help="render the fully loaded window off screen to a PNG and exit")

    t = sub.add_parser("train", help="train a VAE headless, with a progress bar",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--dataset", metavar="SPEC", required=True)
    t.add_argument("--out", type=Path, required=True, help="checkpoint to write (.safetensors), saved at every epoch end")
    t.add_argument("--latent-dim", type=_int_in(1, 1_000_000), default=2)
    t.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    t.add_argument("--hidden", type=_hidden, default=(512, 256), help="hidden layer widths, e.g. 512,256")
    t.add_argument("--likelihood", metavar="KIND", help="bernoulli or gaussian for a new model (default bernoulli); "
                   "with --model: " + LIKELIHOOD_HELP)
    _add_model_args(t)
    t.add_argument("--beta", type=_float_in(0.0, 1e6), default=1.0)
    t.add_argument("--warmup-steps", type=_int_in(0, 10**12), default=0, help="linear KL warm-up over this many steps")
    t.add_argument("--free-bits", type=_float_in(0.0, 1e6), default=0.0, help="per-dimension free nats of KL")
    t.add_argument("--epochs", type=_int_in(1, 1_000_000), default=20)
    t.add_argument("--batch-size", type=_int_in(1, 10_000_000), default=128)
    t.add_argument("--lr", type=_float_in(0.0, 1e6, above=True), default=1e-3)
    t.add_argument("--seed", type=_int_in(0, 2**63 - 1), default=0)
    t.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    t.add_argument("--resume", type=Path, metavar="CHECKPOINT", help="warm start from this checkpoint's weights")
    t.add_argument("--json", action="store_true", help="print one JSON object with the results at the end")

    e = sub.add_parser("eval", help="test-set ELBO, KL per dimension, active units, log p(x) estimate",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_model_and_data_args(e)
    e.add_argument("--iw-samples", type=_int_in(0, 1_000_000), default=100, help="importance samples for the log p(x) estimate (0: skip)")
    e.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="cpu")
    e.add_argument("--json", action="store_true")

    n = sub.add_parser("encode", help="write every image's latent mean and log-variance to a CSV or NPZ table",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_model_and_data_args(n)
    n.add_argument("--out", type=Path, required=True, metavar="FILE.csv|FILE.npz",
                   help="columns: index, split, label, mu_0.., logvar_0..")
    n.add_argument("--batch-size", type=_int_in(1, 10_000_000), default=4096)
    n.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    return p


def main(argv: list[str] | None = None) -> int:
    from .core.errors import LatentLabError
    from .core.text import short

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors; main() returns codes, it does not exit
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "eval":
            return cmd_eval(args)
        if args.command == "encode":
            return cmd_encode(args)
        return cmd_gui(args)
    except (LatentLabError, ValueError) as exc:  # ValueError: configuration values rejected by the dataclasses
        print(f"latentlab: error: {short(str(exc))}", file=sys.stderr)
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
               screenshot=getattr(args, "screenshot", None), model=spec, weights=weights, likelihood=likelihood,
               projection=getattr(args, "projection", None))


def cmd_train(args) -> int:
    from .core.checkpoint import BackgroundWriter, load_checkpoint, prepare_out
    from .core.config import ModelConfig, TrainConfig
    from .core.data import load_dataset
    from .core.device import describe, resolve_device
    from .core.model import VAE, build_model
    from .core.model_spec import model_bytes
    from .core.preview import compute_preview
    from .core.training import train

    # The save path is checked before anything else, so a bad one costs no training; a run that
    # would replace an existing file writes beside it until it has finished (see _Outcome).
    target = prepare_out(args.out)
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
        _warn(ckpt.warnings)
        model_cfg, history = ckpt.config, list(ckpt.history)
        if model_cfg.image_shape != data.image_shape:
            raise ValueError(f"{args.resume} expects images of shape {model_cfg.image_shape}, "
                             f"but {args.dataset} has {data.image_shape}")
    else:
        model_cfg = ModelConfig(image_shape=data.image_shape, latent_dim=args.latent_dim, arch=args.arch,
                                hidden=args.hidden, likelihood=args.likelihood or "bernoulli")
    if not args.model:
        _check_fits(model_cfg, data, cfg.batch_size, device)
        model = ckpt.model if args.resume else build_model(model_cfg, seed=args.seed)
    stop = {"flag": False}

    def on_sigint(*_):
        if stop["flag"]:  # the second Ctrl+C: quit now; saves are atomic, so every file is whole
            os._exit(130)
        stop["flag"] = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    # A terminal gets a live bar; a log (stderr not a terminal, or --json) one line per epoch.
    live = sys.stderr.isatty() and not args.json
    if not args.json:
        n_params = sum(p.numel() for p in model.parameters())
        print(f"Training {model.describe()}, {n_params:,} parameters, on {data.name} "
              f"({len(data.x_train):,} train / {len(data.x_test):,} test) on {describe(device)}.", file=sys.stderr)

    last = None
    saved = False
    # Saved at every epoch end so a crash or Ctrl-C loses at most one epoch; the bytes are taken
    # between steps and written (with its fsync) on another thread while the next epoch trains.
    writer = BackgroundWriter()
    try:
        try:
            for snap in train(model, data, cfg, history=history, should_stop=lambda: stop["flag"]):
                last = snap
                if snap.record is not None:
                    history.append(snap.record)
                if snap.record is not None or (snap.done and not snap.diverged):
                    # The finished model also carries its latent preview, for a window's first light.
                    final = snap.done and not snap.cancelled and isinstance(model, VAE)
                    writer.submit(target, model_bytes(model, dataset=data.spec, history=history, train_config=cfg,
                                                      preview=compute_preview(model, data) if final else None))
                    saved = True
                _progress(snap, live)
        finally:
            writer.flush()
        if not (last.error or last.cancelled) and target != args.out:
            _replace(target, args.out)
    finally:
        if not stop["flag"]:  # after a Ctrl+C the handler stays: a second one exits quietly, even at shutdown
            signal.signal(signal.SIGINT, previous)
    if live:
        print(file=sys.stderr)
    if last.error:
        print(f"latentlab: error: {_short(last.error)} {_kept(args.out, target, saved)}", file=sys.stderr)
        return 1
    rec = history[-1] if history else {}
    result = {
        "out": str(args.out if not last.cancelled else target), "dataset": data.spec, "device": device.type,
        "epochs": len(history),
        "train": {"recon": rec.get("recon"), "kl": rec.get("kl"), "elbo": rec.get("elbo")},
        "test": {"recon": rec.get("test_recon"), "kl": rec.get("test_kl"), "elbo": rec.get("test_elbo")},
        "seconds": round(last.seconds, 3), "samples_per_s": round(last.samples_per_s, 1), "cancelled": last.cancelled,
    }
    if args.json:
        print(json.dumps(result))
    else:
        t = result["test"]
        where = f"stopped early: {_kept(args.out, target, saved)}" if last.cancelled else f"done: saved {_short(str(args.out))}."
        print(f"{where} Test ELBO {_fmt(t['elbo'])} nats (recon {_fmt(t['recon'])}, KL {_fmt(t['kl'])}), "
              f"{result['samples_per_s']:,.0f} samples/s.", file=sys.stderr)
    return 130 if last.cancelled else 0


def _kept(out: Path, target: Path, saved: bool) -> str:
    """Where this run's weights are, for a run that stopped or diverged."""
    if target == out:
        return f"Saved the last good weights to {_short(str(out))}." if saved else "Nothing was saved."
    kept = f"{_short(str(out))} was left unchanged"
    return f"{kept}; this run's last good weights are in {_short(str(target))}." if saved else f"{kept}."


def _replace(src: Path, dst: Path) -> None:
    from .core.errors import CheckpointError

    try:
        os.replace(src, dst)
    except OSError as exc:
        raise CheckpointError(f"Cannot replace {_short(str(dst))} ({exc.strerror or exc}); "
                              f"the new weights are in {_short(str(src))}.") from None


def _check_fits(model_cfg, data, batch_size: int, device) -> None:
    from .core.budget import check_training_fits

    check_training_fits(model_cfg, data.x_train.shape[0] + data.x_test.shape[0], batch_size, device,
                        pixel_bytes=data.pixel_bytes)


def _warn(lines) -> None:
    for line in lines:
        print(f"latentlab: warning: {_short(line)}", file=sys.stderr)


def _short(text: str) -> str:
    from .core.text import short

    return short(text)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


_last_draw = [0.0]


def _progress(snap, live: bool) -> None:
    if not live:
        if snap.record is not None:
            r = snap.record
            print(f"epoch {r.get('epoch', snap.epoch + 1)}/{snap.epochs}  ELBO {r['elbo']:.2f}  recon {r['recon']:.2f}  "
                  f"KL {r['kl']:.2f}  test ELBO {r.get('test_elbo', float('nan')):.2f}  "
                  f"{snap.samples_per_s:,.0f} samples/s", file=sys.stderr, flush=True)
        return
    now = time.monotonic()
    if not snap.done and now - _last_draw[0] < 0.1:
        return
    _last_draw[0] = now
    sys.stderr.write(f"\repoch {min(snap.epoch + 1, snap.epochs)}/{snap.epochs} {_bar(snap.fraction)}  "
                     f"ELBO {snap.elbo:9.2f}  recon {snap.recon:8.2f}  KL {snap.kl:6.2f}  "
                     f"{snap.samples_per_s:9,.0f} samples/s ")
    sys.stderr.flush()


def _bar(fraction: float, width: int = 28) -> str:
    filled = int(width * fraction)
    return f"[{'#' * filled}{'-' * (width - filled)}] {100 * fraction:5.1f}%"


def _model_and_data(args):
    """The model (a checkpoint, or --model SPEC with --weights/--likelihood), its dataset (default:
    the one its file records, if that is an ordinary location) and a check that the two fit."""
    from .core.adapters import validate
    from .core.data import checkpoint_dataset_refusal, load_dataset
    from .core.device import resolve_device
    from .core.errors import DatasetError
    from .core.model_spec import open_model

    given = [v for v in (args.checkpoint, args.checkpoint_opt, args.model) if v is not None]
    if len(given) != 1:
        raise ValueError(f"{args.command} takes one model: a CHECKPOINT, --checkpoint PATH or --model SPEC")
    spec = str(given[0])
    opened = open_model(spec, weights=args.weights, likelihood=args.likelihood, device=resolve_device(args.device))
    _warn(opened.warnings)
    spec_ds = args.dataset or opened.dataset
    if not spec_ds:
        raise ValueError(f"{_short(spec)} does not record its dataset; pass --dataset SPEC")
    if not args.dataset:
        refusal = checkpoint_dataset_refusal(spec_ds)
        if refusal:
            raise DatasetError(f"{refusal.rstrip('.')}; pass --dataset SPEC.")
    data = load_dataset(spec_ds)
    expects = getattr(opened.model, "image_shape", None)
    if expects is not None and tuple(expects) != tuple(data.image_shape):
        raise ValueError(f"{_short(spec)} expects images of shape {tuple(expects)}, "
                         f"but {_short(spec_ds)} has {tuple(data.image_shape)}")
    x = data.x_test if len(data.x_test) else data.x_train
    return validate(opened.model, x[:8]), spec, spec_ds, data


def cmd_encode(args) -> int:
    from .core.errors import Cancelled, LatentLabError
    from .core.latent_table import FORMATS, encode_table, write_table

    if args.out.suffix.lower() not in FORMATS:
        raise LatentLabError(f"--out must name a .csv or .npz file, not {args.out}.")
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
          f"K={table.mu.shape[1]}) to {args.out}", file=sys.stderr)
    return 0


def cmd_eval(args) -> int:
    from .core.analysis import evaluate

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
