"""The unit of work the compute plan scales timings by (``plan.py``), shared by every paper's model of
its jobs (``papers/<paper>/grid.py: work``). Torch-free: the Snakefile imports the grids.

A job's work is the sum over the batched steps it runs (one application of a cell, forward or
backward, to a batch) of a fixed overhead per step plus the batch's arithmetic: examples × the cost
of one example's step (width² × positions × blocks: convolutions over the positions, or an MLP's one
position). The overhead is what a step costs however small the batch (Python, operator dispatch,
kernels too small to be efficient); without it, a scale of tiny models (smoke) looks almost free and
its timings, scaled by arithmetic alone, put a larger scale at 40 times its measured cost.
"""

from __future__ import annotations

import math

# The overhead of one batched step, in the units of an example's step (width² × positions × blocks).
# Set from the timings of two scales on one machine (benchmarks/timings/: the value that lets each
# scale predict the other best); at paper sizes a batch's arithmetic dwarfs it.
STEP_OVERHEAD = 1.0e5


def batched_steps(examples: float, batch_size: int, steps: float, per_example: float) -> float:
    """Work of ``steps`` steps over ``examples`` examples run ``batch_size`` at a time."""
    if examples <= 0 or steps <= 0:
        return 0.0
    batches = math.ceil(examples / batch_size)
    return steps * (batches * STEP_OVERHEAD + examples * per_example)
