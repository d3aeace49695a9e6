"""What the commands print: warnings, shortened names, numbers and progress bars on stderr."""

from __future__ import annotations

import sys
import time


def _warn(lines) -> None:
    for line in lines:
        print(f"latentlab: warning: {_short(line)}", file=sys.stderr)


def _short(text: str) -> str:
    from latentlab.core.text import short

    return short(text)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _bar(fraction: float, width: int = 28) -> str:
    filled = int(width * fraction)
    return f"[{'#' * filled}{'-' * (width - filled)}] {100 * fraction:5.1f}%"


def progress_bar(what: str, width: int = 0):
    """progress(fraction, phase=None) drawing `what` (or the phase) and a bar on stderr, at most ten
    times a second and at the end; None when stderr is not a terminal: a log gets no bars."""
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def progress(fraction: float, phase: str | None = None) -> None:
        now = time.monotonic()
        if fraction >= 1 or now - last[0] >= 0.1:
            last[0] = now
            sys.stderr.write(f"\r{_short(phase or what)[:40]:{width}s} {_bar(fraction)} ")
            sys.stderr.flush()
    return progress


def refuse_overwriting_inputs(args, dataset: str | None) -> None:
    """--out is none of the command's inputs (the dataset file, the checkpoint, the weights, the
    model's own files), compared by resolved path and inode, before any work. A --resume checkpoint
    may be --out: the run continues that file, which stays as it was until the run ends well."""
    from latentlab.core.data.specs import dataset_reads, spec_file
    from latentlab.core.errors import LatentLabError
    from latentlab.core.files.atomic import refuse_input_as_output
    from latentlab.core.files.model_spec import refuse_overwrite

    inputs = [("the dataset file", spec_file(dataset) if dataset else None),
              ("the checkpoint", getattr(args, "checkpoint", None)),
              ("the checkpoint", getattr(args, "checkpoint_opt", None))]
    refuse_input_as_output(args.out, inputs)
    if dataset and dataset_reads(dataset, args.out):
        raise LatentLabError(f"--out {_short(str(args.out))} is inside the dataset's folder, where it would be read as "
                             "data; write the output elsewhere, latentlab never changes its inputs.")
    if getattr(args, "model", None):
        refuse_overwrite(args.out, args.model, getattr(args, "weights", None))
