"""How many cores other processes are keeping busy now, so that torch is not given threads that
could only wait for a core.

The 1-minute load average is no guide to that: it decays over minutes and counts processes that
have already ended, so a run started right after another (the usual way of trying things out) saw
the finished run's load and trained on one thread of a free machine's two.
Instead the kernel's CPU counters (/proc/stat) are read twice and this process's own CPU time over
the same interval is taken out; what is left is the other processes' work now. The first reading is
taken when this module is imported, which the command line and the window do first thing, so the
interval is their own start-up (importing torch, reading the data) and costs no waiting.
"""

from __future__ import annotations

import os
import time

# An interval shorter than this says little (the kernel counts in ticks of 10 ms).
MIN_INTERVAL_S = 0.25


def reading() -> tuple[float, float, float] | None:
    """(CPU seconds the whole machine has worked, CPU seconds of this process, a monotonic time),
    or None where the kernel's counters cannot be read (not Linux)."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    if fields[:1] != [b"cpu"] or len(fields) < 8 or not hz or hz <= 0:
        return None
    try:
        user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    except ValueError:
        return None
    # Idle, waiting for the disk and time taken by a hypervisor (steal) are not work on this machine.
    return (user + nice + system + irq + softirq) / hz, time.process_time(), time.monotonic()


def busy_elsewhere(first, last) -> float:
    """Cores that other processes kept busy, on average, between two readings."""
    wall = last[2] - first[2]
    if wall <= 0:
        return 0.0
    return max(0.0, ((last[0] - first[0]) - (last[1] - first[1])) / wall)


_FIRST = reading()


def busy_now() -> float | None:
    """Cores other processes have kept busy since this module was imported, or None where that cannot
    be known: no counters (not Linux), or too short an interval to say. It never waits, since the
    window asks on its GUI thread."""
    last = reading() if _FIRST is not None else None
    if last is None or last[2] - _FIRST[2] < MIN_INTERVAL_S:
        return None
    return busy_elsewhere(_FIRST, last)
