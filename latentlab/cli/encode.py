"""`latentlab encode` to Parquet, and any encode run under torchrun: rows are written as they are
encoded (bounded memory), and under torchrun the ranks share the images while rank 0 writes the one
table."""

from __future__ import annotations

import signal
import sys

import numpy as np

from .evaluate import _model_and_data
from .evaluate import cmd_encode as cmd_encode_in_memory
from .output import progress_bar, refuse_overwriting_inputs


def cmd_encode(args) -> int:
    from latentlab.core.errors import LatentLabError
    from latentlab.core.tables.latent_table import FORMATS
    from latentlab.core.training.distributed import ranks_from_environ

    suffix = args.out.suffix.lower()
    if suffix not in FORMATS:
        raise LatentLabError(f"--out must name a .csv, .npz or .parquet file, not {args.out}.")
    if suffix != ".parquet" and ranks_from_environ() is None:
        return cmd_encode_in_memory(args)
    return cmd_encode_streamed(args)


def cmd_encode_streamed(args) -> int:
    from latentlab.core.errors import Cancelled
    from latentlab.core.tables.latent_table import LatentTable, write_table
    from latentlab.core.tables.parquet_table import ParquetTableWriter
    from latentlab.core.tables.table_rows import encode_rows
    from latentlab.core.training.distributed import Group, rank_device, ranks_from_environ, stop_on_signals

    refuse_overwriting_inputs(args, args.dataset)   # every rank, before any work: none writes over an input
    ranks = ranks_from_environ()
    group = None
    stop = {"flag": False}
    if ranks is not None:
        # The rank's own GPU becomes the current one, which "cuda" then names when the model is opened.
        group = Group(ranks, rank_device(args.device, ranks.local_rank))
        stop_on_signals(stop)
    main = group is None or group.main
    model, _, _, data = _model_and_data(args)
    n = len(data.x_train) + len(data.x_test)
    progress = progress_bar(f"encoding {n:,} images") if main else None
    quiet = progress is None
    previous = signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("flag", True)) if group is None else None
    rows = encode_rows(model, data, batch=args.batch_size, progress=progress, should_stop=lambda: stop["flag"],
                       group=group)
    try:
        if not main:
            for _ in rows:
                pass
        elif args.out.suffix.lower() == ".parquet":
            with ParquetTableWriter(args.out, model.latent_dim, data.label_names) as writer:
                for part in rows:
                    writer.write(*part.columns())
        else:
            parts = list(rows)
            columns = [list(p.columns()) for p in parts] or [[[], [], [], [], []]]
            k = model.latent_dim
            write_table(args.out, LatentTable(
                index=np.concatenate([c[0] for c in columns]).astype(np.int64),
                split=np.concatenate([c[1] for c in columns]).astype("<U5"),
                label=np.concatenate([c[2] for c in columns]).astype(np.int64),
                mu=np.concatenate([np.reshape(c[3], (-1, k)) for c in columns]).astype(np.float32),
                logvar=np.concatenate([np.reshape(c[4], (-1, k)) for c in columns]).astype(np.float32),
                label_names=tuple(data.label_names)))
    except Cancelled:
        if main:
            print("\nlatentlab: encoding stopped; nothing written.", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if group is not None:
        group.close()
    if main:
        if not quiet:
            print(file=sys.stderr)
        ranks_note = f" by {group.world} ranks" if group is not None else ""
        print(f"wrote {n:,} rows ({len(data.x_train):,} train, {len(data.x_test):,} test; "
              f"K={model.latent_dim}) to {args.out}{ranks_note}", file=sys.stderr)
    return 0
