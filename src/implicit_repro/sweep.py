"""Accuracy at every test-time iteration count 1..K in one pass over the trajectory.

Running the model once per K would cost K(K+1)/2 cell applications; reading the head off each
state of one trajectory costs K (plus K cheap head applications).
"""

from __future__ import annotations

import torch

from implicit_repro.models import EquilibriumModel
from implicit_repro.solvers import relative_residual
from implicit_repro.tasks import Task


@torch.no_grad()
def trajectory_sweep(
    model: EquilibriumModel, task: Task, x: torch.Tensor, targets: torch.Tensor, max_iters: int,
    z0: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per-example correctness (K, N) and relative residual (K, N) after 1..K iterations."""
    z = model.initial_state(x) if z0 is None else z0
    correct, residual = [], []
    for i in range(max_iters):
        z_next = model.step(z, x, i)
        residual.append(relative_residual(z_next, z))
        correct.append(task.correct(model.readout(z_next), targets))
        z = z_next
    return {"correct": torch.stack(correct), "residual": torch.stack(residual)}


@torch.no_grad()
def batched_sweep(
    model: EquilibriumModel, task: Task, x: torch.Tensor, targets: torch.Tensor, max_iters: int,
    batch_size: int,
) -> dict[str, torch.Tensor]:
    parts = [
        trajectory_sweep(model, task, x[i : i + batch_size], targets[i : i + batch_size], max_iters)
        for i in range(0, len(x), batch_size)
    ]
    return {k: torch.cat([p[k] for p in parts], dim=1) for k in parts[0]}
