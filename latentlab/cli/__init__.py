"""The `latentlab` command: the GUI by default, plus headless `train`, `eval`, `encode` and `vector`.

arguments  the parser: subcommands, options and their range checks
train      `latentlab train`
evaluate   `latentlab eval` and `latentlab encode` to CSV or NPZ in one process
encode     `latentlab encode`: to Parquet as rows are encoded, and shared by the ranks under torchrun
compare    `latentlab eval A B ...` (one entry per model) and the disentanglement scores eval --factors adds
vector     `latentlab vector`: an attribute vector, how far to trust it, saved as .npz
output     warnings, numbers and progress bars on stderr
"""

from __future__ import annotations

import sys

from .arguments import build_parser

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:   # Ctrl+C before a command's own handler is in place (loading, checking)
        print("\nlatentlab: stopped (interrupted); nothing was written.", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    # First thing: the CPU counters' first reading, so start-up measures what else keeps the cores busy.
    from latentlab.core import cpu_load  # noqa: F401
    from latentlab.core.errors import LatentLabError
    from latentlab.core.text import short

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors; main() returns codes, it does not exit
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if args.command in ("train", "eval", "encode"):
            from latentlab.core.training.device import use_cpu_threads

            use_cpu_threads()   # the free cores, or LATENTLAB_THREADS: more threads than free cores only wait
        if args.command == "train":
            from .train import cmd_train

            return cmd_train(args)
        if args.command == "eval":
            from .evaluate import cmd_eval

            return cmd_eval(args)
        if args.command == "vector":
            from .vector import cmd_vector

            return cmd_vector(args)
        if args.command == "encode":
            from .encode import cmd_encode

            return cmd_encode(args)
        return cmd_gui(args)
    except (LatentLabError, ValueError) as exc:  # ValueError: configuration values rejected by the dataclasses
        print(f"latentlab: error: {short(str(exc))}", file=sys.stderr)
        _explain(exc, getattr(args, "verbose", False))
        return 2


def _explain(exc: BaseException, verbose: bool) -> None:
    """After the sentence: the first lines of its cause's message, and with --verbose the traceback
    of the user's code that raised it."""
    from latentlab.core.text import short

    for line in getattr(exc, "detail", ()):
        print(f"  {short(line, 200)}", file=sys.stderr)
    cause = getattr(exc, "cause", None)
    if verbose and cause is not None:
        import traceback

        traceback.print_exception(type(cause), cause, cause.__traceback__, file=sys.stderr)


def cmd_gui(args) -> int:
    try:
        from latentlab.gui.app import run
    except ImportError as exc:
        print(f"latentlab: error: the GUI could not start ({exc}).", file=sys.stderr)
        return 2
    checkpoint = getattr(args, "checkpoint", None)
    spec, weights, likelihood = (getattr(args, name, None) for name in ("model", "weights", "likelihood"))
    if spec is not None and checkpoint is not None:
        raise ValueError("gui opens one model: give --checkpoint PATH or --model SPEC, not both")
    if spec is None and (weights is not None or likelihood is not None):
        raise ValueError("--weights and --likelihood go with --model SPEC")
    table = getattr(args, "table", None)
    if table is not None and spec is None and checkpoint is None:
        raise ValueError("--table needs the model that encoded it: add --model SPEC or --checkpoint PATH")
    if spec is not None:
        from latentlab.core.files.model_spec import spec_kind

        spec_kind(spec)  # a malformed SPEC is refused here, before a window opens
    return run(checkpoint=checkpoint, dataset=getattr(args, "dataset", None),
               screenshot=getattr(args, "screenshot", None), model=spec, weights=weights, likelihood=likelihood,
               projection=getattr(args, "projection", None), table=table)
