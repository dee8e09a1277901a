"""Forward iteration of a cell: z_{k+1} = step(z_k, x)."""

from __future__ import annotations

from typing import Callable

import torch

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fixed_point_iterate(step: Step, x: torch.Tensor, z0: torch.Tensor, iters: int) -> torch.Tensor:
    z = z0
    for _ in range(iters):
        z = step(z, x)
    return z


def relative_residual(z_next: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Per-example ||f(z) - z|| / ||f(z)||, the usual DEQ convergence measure."""
    diff = (z_next - z).flatten(1).norm(dim=1)
    return diff / z_next.flatten(1).norm(dim=1).clamp_min(1e-12)
