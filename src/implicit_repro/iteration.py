"""Plain forward iteration of a cell, z_{k+1} = step(z_k, x), with early exit at equilibrium.

(The DEQ solvers, Anderson and Broyden with their gradients, are ``deq/``; this is the iteration the
evaluation sweeps and the interventions unroll.)

Early exit: an example whose state has stopped changing is a fixed point, and iterating it further
would give the same state again, so it stops being iterated and keeps its final state. "Stopped
changing" is decided by ``settled``: with ``tol`` 0, the new state equals the old one to the bit
(the iteration is then the full run's wherever the cell's arithmetic does not depend on the batch's
size, which shrinks as examples stop: measured on one CPU, convolutions from 3 rows, a matrix product
from 7); with a tolerance, the relative residual is at most ``tol``; with None, never (every example
runs the whole budget). It assumes the same step at every iteration (``EquilibriumModel``)."""

from __future__ import annotations

from typing import Callable

import torch

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def relative_residual(z_next: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Per-example ||f(z) - z|| / ||f(z)||, the usual DEQ convergence measure."""
    diff = (z_next - z).flatten(1).norm(dim=1)
    return diff / z_next.flatten(1).norm(dim=1).clamp_min(1e-12)


def settled(z_next: torch.Tensor, z: torch.Tensor, residual: torch.Tensor, tol: float | None) -> torch.Tensor:
    """(B,) bool: which examples stopped changing in the step z -> z_next (``residual`` is its
    relative residual). ``tol`` 0 asks for bit equality, not a residual of 0 (a difference of 1e-23
    squares to 0 in float32)."""
    if tol is None:
        return torch.zeros(len(z), dtype=torch.bool, device=z.device)
    if tol == 0:
        return (z_next == z).flatten(1).all(1)
    return residual <= tol


@torch.no_grad()
def iterate_to_budget(step: Step, x: torch.Tensor, z0: torch.Tensor, iters: int,
                      tol: float | None = None, batch_size: int | None = None) -> tuple[torch.Tensor, int]:
    """The states after ``iters`` steps from ``z0``, each example stopping early once ``settled``,
    and the number of example-steps computed (``iters * len(x)`` without early exit). With
    ``batch_size``, the examples run that many at a time (a cell maps each example on its own, so
    the states are the same; only the memory differs)."""
    if batch_size is not None and len(x) > batch_size:
        parts = [iterate_to_budget(step, x[i:i + batch_size], z0[i:i + batch_size], iters, tol)
                 for i in range(0, len(x), batch_size)]
        return torch.cat([z for z, _ in parts]), sum(c for _, c in parts)
    z_final = z0.clone()
    active = torch.arange(len(x), device=x.device)
    z, xa, computed = z0, x, 0
    for _ in range(iters):
        z_next = step(z, xa)
        computed += len(active)
        done = settled(z_next, z, relative_residual(z_next, z), tol)
        z = z_next
        if done.any():
            z_final[active[done]] = z[done]
            keep = ~done
            active, z, xa = active[keep], z[keep], xa[keep]
            if len(active) == 0:
                break
    z_final[active] = z
    return z_final, computed


def fixed_point_iterate(step: Step, x: torch.Tensor, z0: torch.Tensor, iters: int) -> torch.Tensor:
    """``iters`` steps from z0 (with the autograd graph, when gradients are enabled)."""
    z = z0
    for _ in range(iters):
        z = step(z, x)
    return z
