"""The command line's grammar: subcommands, options, and the range checks every number passes
before torch sees it."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from latentlab._version import __version__


# Every number is range-checked here, before torch sees it: torch answers an absurd width with a C++
# traceback and numpy an out-of-range seed with a ValueError from deep inside.
def _hidden(text: str) -> tuple[int, ...]:
    from latentlab.core.models.config import MAX_LAYERS, MAX_WIDTH
    from latentlab.core.text import quote

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
        from latentlab.core.text import quote

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
        from latentlab.core.text import quote

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
        from latentlab.core.text import short

        self.exit(2, f"latentlab: error: {short(message)}\n")

    def format_help(self):
        # The SPEC lists live beside their loaders, which import torch: only --help pays for them,
        # not every start of the window.
        if self.epilog is None and self.prog == "latentlab":
            from latentlab.core.data.specs import describe_specs
            from latentlab.core.files.model_spec import describe_model_specs

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
                    "bundled pretrained model and the digits dataset. train and encode also run under "
                    "torchrun (torchrun --nproc_per_node=N -m latentlab train ...): --batch-size is then "
                    "per process, and rank 0 alone writes and prints.",
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

    n = sub.add_parser("encode", help="write every image's latent mean and log-variance to a CSV, NPZ or Parquet table",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_model_and_data_args(n)
    n.add_argument("--out", type=Path, required=True, metavar="FILE.csv|FILE.npz|FILE.parquet",
                   help="columns: index, split, label, mu_0.., logvar_0.. (Parquet is written as it encodes)")
    n.add_argument("--batch-size", type=_int_in(1, 10_000_000), default=4096)
    n.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    return p
