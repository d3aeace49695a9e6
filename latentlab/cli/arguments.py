"""The command line's grammar: subcommands, options, and the range checks every number passes
before torch sees it."""

from __future__ import annotations

import argparse
from pathlib import Path

from latentlab._version import __version__
from latentlab.core.models.config import DEFAULT_HIDDEN, DEFAULT_LATENT_DIM


# Every number is range-checked here, before torch sees it: torch answers an absurd width with a C++
# traceback and numpy an out-of-range seed with a ValueError from deep inside. The ranges of what a
# config holds are its own (core.models.config.BOUNDS), read when an option is parsed.
def _hidden(text: str) -> tuple[int, ...]:
    from latentlab.core.models.config import BOUNDS
    from latentlab.core.text import quote

    layers, width = BOUNDS["layers"].hi, BOUNDS["width"].hi
    if len(text) > 1000:
        raise argparse.ArgumentTypeError(f"--hidden takes up to {layers} comma-separated widths, not {quote(text)}")
    try:
        widths = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes comma-separated layer widths like 512,256, not {quote(text)}")
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"--hidden takes positive layer widths like 512,256, not {quote(text)}")
    if len(widths) > layers or max(widths) > width:
        raise argparse.ArgumentTypeError(f"--hidden takes at most {layers} widths of at most {width:,} each, "
                                         f"not {quote(text)}")
    return widths


def _bounded(field):
    """The type of a numeric option: a number within the range of the config field `field`
    (core.models.config.BOUNDS), or within (lo, hi) for a number no config holds."""
    def parse(text: str):
        from latentlab.core.models.config import BOUNDS, Bound
        from latentlab.core.text import quote

        bound = BOUNDS[field] if isinstance(field, str) else Bound(*field)
        try:
            value = int(text[:40]) if bound.whole else float(text[:60])
        except ValueError:
            value = None
        if value is None or not bound.holds(value) or (bound.whole and len(text) > 40):
            raise argparse.ArgumentTypeError(f"expected {bound.describe()}, not {quote(text)}")
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
            from latentlab.core.models.spec_forms import describe_model_specs

            self.epilog = ("Model SPEC forms:\n" + describe_model_specs() + "\n\n" + describe_specs() + "\n\n" + ENVIRONMENT)
        return super().format_help()


ENVIRONMENT = """Environment:
  LATENTLAB_THREADS=N   threads for training, encoding and evaluating on the CPU (default: the cores
                        other processes left free while the command started; threads beyond them only
                        wait on each other)
  LATENTLAB_DEVICE=cpu  train on the CPU in the window even when a GPU is present"""


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default after its help, unless it has none or the help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text or action.default == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


LIKELIHOOD_HELP = ("how to read the decoder's output: bernoulli (logits), bernoulli-probs or gaussian[:SIGMA] "
                   "(default: the model's own)")


def _add_model_args(parser, *, required: bool = False) -> None:
    parser.add_argument("--model", metavar="SPEC", required=required,
                        help="the model to open: PATH.safetensors, PATH.py:NAME, package.module:NAME, diffusers:DIR "
                             "or pythae:DIR")
    parser.add_argument("--weights", type=Path, metavar="FILE",
                        help="weights for a Python, diffusers or pythae --model: .safetensors, or a Lightning .ckpt / "
                             "torch.save state dict you name (read weights-only, no code runs)")
    parser.add_argument("--verbose", action="store_true", help="on an error, also show the traceback of your model's code")


def _add_model_and_data_args(parser, *, several: bool = False) -> None:
    """What eval and encode read: a checkpoint or a model SPEC, and the dataset (see _model_and_data).
    With `several`, any number of checkpoints or SPECs (eval compares them)."""
    if several:
        parser.add_argument("checkpoint", nargs="*", metavar="MODEL",
                            help="a latentlab checkpoint (or use --model SPEC); two or more checkpoints or SPECs are "
                                 "evaluated on the same dataset, one JSON entry each")
    else:
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
    sub = p.add_subparsers(dest="command", metavar="{gui,train,eval,encode,vector}")

    g = sub.add_parser("gui", help="open the explorer window (the default)")
    g.add_argument("--checkpoint", type=Path, help="checkpoint to open (default: the bundled digits model)")
    _add_model_args(g)
    g.add_argument("--likelihood", metavar="KIND", help=LIKELIHOOD_HELP)
    g.add_argument("--dataset", metavar="SPEC", help="dataset to show (default: the checkpoint's own)")
    g.add_argument("--table", type=Path, metavar="FILE.parquet",
                   help="show a latent table's means (as `latentlab encode` writes them: .parquet, .csv or .npz) with "
                        "the model that encoded them (--model or --checkpoint), without loading images; --dataset "
                        "gives the images views ask for. Parquet needs `pip install 'latentlab[tables]'`")
    g.add_argument("--projection", choices=("pair", "pca", "umap", "tsne"),
                   help="what the latent view shows first: a pair of dimensions (the default), the PCA plane of "
                        "the means, or a UMAP or t-SNE map of them (these need `pip install 'latentlab[projections]'`)")
    g.add_argument("--screenshot", type=Path, metavar="OUT.png",
                   help="render the fully loaded window off screen to a PNG and exit")

    t = sub.add_parser("train", help="train a VAE headless, with a progress bar",
                       formatter_class=_Defaults)
    t.add_argument("--dataset", metavar="SPEC", required=True, help="the data to train on (see SPEC forms in `latentlab --help`)")
    t.add_argument("--out", type=Path, required=True, help="checkpoint to write (.safetensors), saved at every epoch end")
    t.add_argument("--latent-dim", type=_bounded("latent_dim"), default=DEFAULT_LATENT_DIM, metavar="K", help="latent dimensions K")
    t.add_argument("--arch", choices=("mlp", "conv"), default="mlp", help="encoder and decoder: fully connected or convolutional")
    t.add_argument("--hidden", type=_hidden, default=",".join(map(str, DEFAULT_HIDDEN)), help="hidden layer widths")
    t.add_argument("--likelihood", metavar="KIND", help="bernoulli or gaussian for a new model (default bernoulli); "
                   "with --model: " + LIKELIHOOD_HELP)
    _add_model_args(t)
    t.add_argument("--beta", type=_bounded("beta"), default=1.0, help="weight of the KL term (β-VAE; 1 is the ELBO)")
    t.add_argument("--warmup-steps", type=_bounded("warmup_steps"), default=0, help="linear KL warm-up over this many steps")
    t.add_argument("--free-bits", type=_bounded("free_bits"), default=0.0, help="per-dimension free nats of KL")
    t.add_argument("--epochs", type=_bounded("epochs"), default=20, help="passes over the training set")
    t.add_argument("--batch-size", type=_bounded("batch_size"), default=128, help="examples per step (per process under torchrun)")
    t.add_argument("--lr", type=_bounded("lr"), default=1e-3, help="Adam's learning rate")
    t.add_argument("--seed", type=_bounded("seed"), default=0, help="seed of the weights, batches and samples")
    t.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                   help="where to train; auto: CUDA, then Apple's MPS, then the CPU")
    t.add_argument("--resume", type=Path, metavar="CHECKPOINT", help="warm start from this checkpoint's weights")
    t.add_argument("--json", action="store_true", help="print one JSON object with the results at the end")

    e = sub.add_parser("eval", help="test-set ELBO, KL per dimension, active units, log p(x) estimate",
                       formatter_class=_Defaults)
    _add_model_and_data_args(e, several=True)
    e.add_argument("--iw-samples", type=_bounded((0, 1_000_000)), default=None,
                   help="importance samples for the log p(x) estimate (0: skip; default 100, fewer, with a note, "
                        "when the decoder is costly)")
    e.add_argument("--limit", type=_bounded((1, 10**12)), metavar="N", help="evaluate only the first N test images")
    _add_factor_args(e)
    e.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="cpu", help="where to evaluate")
    e.add_argument("--json", action="store_true", help="print the results as one JSON object")

    n = sub.add_parser("encode", help="write every image's latent mean and log-variance to a CSV, NPZ or Parquet table",
                       formatter_class=_Defaults)
    _add_model_and_data_args(n)
    n.add_argument("--out", type=Path, required=True, metavar="FILE.csv|FILE.npz|FILE.parquet",
                   help="columns: index, split, label, mu_0.., logvar_0.. (Parquet is written as it encodes)")
    n.add_argument("--batch-size", type=_bounded("batch_size"), default=4096, help="images encoded at a time (per process under torchrun)")
    n.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="where to encode")
    _add_vector_parser(sub)
    return p


def _add_factor_args(parser) -> None:
    parser.add_argument("--factors", action="store_true",
                        help="add disentanglement scores against the dataset's ground-truth factors (sprites, or an npz "
                             "with a factors array): mig, dci, sap, beta_vae, factor_vae")
    parser.add_argument("--dci-estimator", choices=("lasso", "gbt"), default="lasso",
                        help="DCI importances from LassoCV (seconds) or gradient-boosted trees as disentanglement_lib "
                             "(minutes)")


def _add_vector_parser(sub) -> None:
    v = sub.add_parser("vector", help="an attribute vector: the direction from one label to another, or along a factor",
                       formatter_class=_Defaults)
    _add_model_and_data_args(v)
    v.add_argument("--from", dest="source", metavar="label:A", help="the group the vector starts from")
    v.add_argument("--to", dest="target", metavar="label:B", help="the group it points to")
    v.add_argument("--factor", metavar="NAME", help="a ground-truth factor instead: the direction of its linear "
                                                    "regression on the latent means")
    v.add_argument("--out", type=Path, metavar="V.npz", help="save the vector (plain arrays, no pickle)")
    v.add_argument("--bootstrap", type=_bounded((0, 10_000)), default=50, metavar="N", help="resamples for the direction's spread")
    v.add_argument("--seed", type=_bounded((0, 2**32 - 1)), default=0, metavar="S", help="seeds the held-out split and the resamples")
    v.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="cpu", help="where to encode the images")
    v.add_argument("--json", action="store_true", help="print one JSON object")
