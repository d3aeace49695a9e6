"""What the commands print: warnings, shortened names, numbers and progress bars on stderr."""

from __future__ import annotations

import sys
from pathlib import Path


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


def refuse_overwriting_inputs(args, dataset: str | None) -> None:
    """--out is none of the command's inputs (the dataset file, the checkpoint, the weights, the
    model's own files), compared by resolved path and inode, before any work. A --resume checkpoint
    may be --out: the run continues that file, which stays as it was until the run ends well."""
    from latentlab.core.data.specs import spec_file, spec_folder
    from latentlab.core.files.atomic import refuse_input_as_output
    from latentlab.core.files.model_spec import refuse_overwrite

    inputs = [("the dataset file", spec_file(dataset) if dataset else None),
              ("the checkpoint", getattr(args, "checkpoint", None)),
              ("the checkpoint", getattr(args, "checkpoint_opt", None))]
    # A new file beside a dataset's files harms nothing, except in an hf: folder, where a table would be
    # read as data; a file that exists inside the folder is the data.
    folder = spec_folder(dataset) if dataset else None
    guarded = folder is not None and (Path(args.out).exists() or dataset.strip().lower().startswith("hf:"))
    refuse_input_as_output(args.out, inputs, folders=[("the dataset's folder", folder)] if guarded else [])
    if getattr(args, "model", None):
        refuse_overwrite(args.out, args.model, getattr(args, "weights", None))
