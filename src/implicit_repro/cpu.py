"""CPU seconds a job spends on its work, apart from starting up, loading and saving: what the compute
plan scales by the job's work (``plan.py``; the command line prints them at the end of each job's log,
``cli.CPU_LINE``). ``time.process_time`` counts every thread of this process, user and system."""

from __future__ import annotations

import time
from contextlib import contextmanager

_spans: list[float] = []


@contextmanager
def work():
    """Count the CPU seconds of the block as the job's work."""
    start = time.process_time()
    try:
        yield
    finally:
        _spans.append(time.process_time() - start)


def work_seconds() -> float:
    """CPU seconds counted as work so far in this process."""
    return sum(_spans)
