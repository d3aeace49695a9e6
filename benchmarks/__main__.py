"""Run every benchmark, each in its own process, and print one summary table at the end.

    python -m benchmarks            # about 4 minutes on the 2-core machine
    python -m benchmarks --quick    # about 2 minutes

Each script runs as `python -m benchmarks.NAME [--quick] --json FILE` with its normal output passed
through; a script that crashes, hangs past its time limit or writes no summary gets a "failed" row
and the others still run. The summary rows come from each script's `--json` file: the measurement,
its side-by-side baseline from the same run, the ratio, the target from docs/architecture.md, and whether the
target was met. Exit status 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.common import machine_line, print_table

# name, extra arguments for --quick, time limit in seconds (full run)
SCRIPTS = (
    ("train_throughput", ["--quick"], 300),
    ("cli_throughput", ["--quick"], 600),
    ("gui_scatter", ["--quick"], 300),
    ("gui_latency", ["--quick"], 300),
    ("save_stall", ["--quick"], 300),
    ("startup", ["--quick"], 300),
    ("posterior_grid", ["--reps", "3"], 300),   # it has no --quick; 3 rounds instead of 10
    ("foreign_models", ["--quick"], 300),
    ("open_large", ["--quick"], 900),
    ("big_table", ["--quick"], 1800),   # the first run writes its table (minutes)
    ("disentanglement", ["--quick"], 600),
    ("distributed", ["--quick"], 1200),
)


def run_script(name: str, extra: list[str], limit: float) -> tuple[list[dict], str]:
    """Run one benchmark script; return its summary rows and a note ('' when all went well)."""
    fd, path = tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".json")
    os.close(fd)
    os.unlink(path)
    cmd = [sys.executable, "-m", f"benchmarks.{name}", *extra, "--json", path]
    print(f"\n$ {' '.join(['python', *cmd[1:-2]])}", flush=True)
    start = time.perf_counter()
    try:
        rc = subprocess.run(cmd, timeout=limit).returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    seconds = time.perf_counter() - start
    rows, note = [], ""
    try:
        with open(path, encoding="utf-8") as f:
            rows = json.load(f)["rows"]
        os.unlink(path)
    except (OSError, ValueError, KeyError):
        pass
    if rc != 0:
        note = f"exit {rc} after {seconds:.0f} s" if rc != "timeout" else f"killed after {limit:.0f} s"
    elif not rows:
        note = "wrote no summary"
    print(f"[{name}: {seconds:.0f} s{', ' + note if note else ''}]", flush=True)
    return rows, note


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="every script's quick mode")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these scripts")
    args = ap.parse_args(argv)

    print(machine_line())
    table = []
    started = time.perf_counter()
    for name, quick_args, limit in SCRIPTS:
        if args.only and name not in args.only:
            continue
        rows, note = run_script(name, quick_args if args.quick else [], limit)
        for r in rows:
            table.append([name, r.get("measure", ""), r.get("value", ""), r.get("baseline", ""), r.get("ratio", ""),
                          r.get("target", ""), r.get("met", "")])
        if note:
            table.append([name, f"failed: {note}" if not rows else f"(run ended badly: {note})", "", "", "", "", "NO"])

    print()
    print_table(["script", "measurement", "value", "baseline (same run)", "ratio", "target", "met"], table,
                title=f"Summary{' (quick)' if args.quick else ''}: every measurement against its side-by-side "
                      f"baseline and its target in docs/architecture.md")
    print(f"\n{machine_line()}; load average now {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"all scripts took {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
