"""Asymptotic Alignment (AA) scores of anil2022.

Both variants take any step function f(z, x), so they can be checked on toy systems whose answer
is known as well as on trained models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from implicit_repro.solvers import Step, fixed_point_iterate


def derangement(n: int, g: torch.Generator) -> torch.Tensor:
    """A random permutation with no fixed point (one random cycle through all n items)."""
    if n < 2:
        raise ValueError("AA needs at least two examples to permute states between")
    order = torch.randperm(n, generator=g)
    perm = torch.empty(n, dtype=torch.long)
    perm[order] = order.roll(-1)
    return perm


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


@torch.no_grad()
def asymptotic_alignment(
    step: Step, x: torch.Tensor, z0: torch.Tensor, iters: int, g: torch.Generator
) -> torch.Tensor:
    """Algorithm 1: per-example cos(z'_i, z''_i), where z''_i restarts input i from another
    example's converged state. The AA score is the mean of the returned vector."""
    z_first = fixed_point_iterate(step, x, z0, iters)
    z_second = fixed_point_iterate(step, x, z_first[derangement(len(x), g)], iters)
    return _cosine(z_first, z_second)


@torch.no_grad()
def all_pairs_alignment(step: Step, x: torch.Tensor, z0: torch.Tensor, iters: int) -> torch.Tensor:
    """The variant of the authors' pre-release code: a (B, B) matrix over (input i, start j), the
    diagonal included, each start being another example's converged state. Its mean is the score."""
    b = len(x)
    z_first = fixed_point_iterate(step, x, z0, iters)
    inputs = x.repeat_interleave(b, dim=0)  # row i*b + j holds input i ...
    starts = z_first.repeat(b, *[1] * (z_first.dim() - 1))  # ... and start state j
    z_second = fixed_point_iterate(step, inputs, starts, iters)
    return _cosine(z_first.repeat_interleave(b, dim=0), z_second).view(b, b)
