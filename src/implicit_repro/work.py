"""The unit of work the compute plan scales timings by (``plan.py``), shared by every paper's model of
its jobs (``papers/<paper>/grid.py: work``). Torch-free: the Snakefile imports the grids.

A job's work is the sum over the batched steps it runs (one application of a cell, forward or
backward, to a batch) of a fixed overhead per step plus the batch's arithmetic: examples × the cost
of one example's step (width² × positions × blocks: convolutions over the positions, or an MLP's one
position), plus an overhead per run of steps. The overheads are what a step or a solve costs however
small the batch (Python, operator dispatch, kernels too small to be efficient, kernels prepared per
shape); without them, a scale of tiny models (smoke) looks almost free and its timings, scaled by
arithmetic alone, put a larger scale at 40 times its measured cost.
"""

from __future__ import annotations

import math

# The version of the papers' work models: reference timings (benchmarks/timings/) record the work of
# each job in these units, and the plan refuses files of another version. Raise it with any change to
# this module or to a paper's ``work``, and re-record the timings.
VERSION = 1

# The overhead of one batched step, in the units of an example's step (width² × positions × blocks),
# and of one run of batched steps (a solve, an epoch: its setup and the first use of its shapes, for
# which the CPU libraries prepare a kernel each). Both were set on the timings of two scales on one
# machine (benchmarks/timings/): of the grid 1e5..1e7 × 0..1e9 these let each scale predict the
# other best (every rule and paper within 1.5×; 1.8× over the neighbouring values). At paper sizes a
# batch's arithmetic dwarfs them.
STEP_OVERHEAD = 1.0e6
RUN_OVERHEAD = 1.0e8


def batched_steps(examples: float, batch_size: int, steps: float, per_example: float) -> float:
    """Work of ``steps`` steps over ``examples`` examples run ``batch_size`` at a time."""
    if examples <= 0 or steps <= 0:
        return 0.0
    batches = math.ceil(examples / batch_size)
    return RUN_OVERHEAD + steps * (batches * STEP_OVERHEAD + examples * per_example)
