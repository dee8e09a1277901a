"""Asymptotic Alignment (AA) scores of anil2022.

Both variants take any step function f(z, x), so they can be checked on toy systems whose answer
is known as well as on trained models. Each comes in two forms: from a start z0 (the first solve
included), and ``*_from_first`` from the states the first solve reached, for an evaluation that has
them already (the accuracy sweep runs the same zero-init trajectory: ``sweep.Readings``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from implicit_repro.iteration import Step, iterate_to_budget


def derangement(n: int, g: torch.Generator) -> torch.Tensor:
    """A random permutation with no fixed point (one random cycle through all n items), drawn on
    ``g`` (a CPU generator: the same permutation whatever device the states live on)."""
    if n < 2:
        raise ValueError("AA needs at least two examples to permute states between")
    order = torch.randperm(n, generator=g)
    perm = torch.empty(n, dtype=torch.long)
    perm[order] = order.roll(-1)
    return perm


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-example cosine of two batches of states, each example's state flattened."""
    return F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


@torch.no_grad()
def asymptotic_alignment(
    step: Step, x: torch.Tensor, z0: torch.Tensor, iters: int, g: torch.Generator, tol: float | None = None
) -> torch.Tensor:
    """Algorithm 1: per-example cos(z'_i, z''_i), where z''_i restarts input i from another
    example's converged state. The AA score is the mean of the returned vector. ``tol``: early exit
    of each solve (``iteration.settled``)."""
    z_first, _ = iterate_to_budget(step, x, z0, iters, tol)
    return alignment_from_first(step, x, z_first, iters, g, tol)[0]


@torch.no_grad()
def alignment_from_first(
    step: Step, x: torch.Tensor, z_first: torch.Tensor, iters: int, g: torch.Generator, tol: float | None = None,
    batch_size: int | None = None,
) -> tuple[torch.Tensor, int]:
    """Algorithm 1 from the first solve's states ``z_first``: the per-example AA and the number of
    example-steps the second solve computed (run ``batch_size`` examples at a time)."""
    perm = derangement(len(x), g).to(z_first.device)
    z_second, computed = iterate_to_budget(step, x, z_first[perm], iters, tol, batch_size)
    return cosine(z_first, z_second), computed


@torch.no_grad()
def all_pairs_alignment(step: Step, x: torch.Tensor, z0: torch.Tensor, iters: int,
                        tol: float | None = None) -> torch.Tensor:
    """The variant of the authors' pre-release code: a (B, B) matrix over (input i, start j), the
    diagonal included, each start being another example's converged state. Its mean is the score."""
    z_first, _ = iterate_to_budget(step, x, z0, iters, tol)
    return all_pairs_from_first(step, x, z_first, iters, tol)[0]


@torch.no_grad()
def all_pairs_from_first(step: Step, x: torch.Tensor, z_first: torch.Tensor, iters: int,
                         tol: float | None = None, batch_size: int | None = None) -> tuple[torch.Tensor, int]:
    """The all-pairs matrix from the first solve's states, and the example-steps computed (the B²
    restarts run ``batch_size`` at a time)."""
    b = len(x)
    inputs = x.repeat_interleave(b, dim=0)  # row i*b + j holds input i ...
    starts = z_first.repeat(b, *[1] * (z_first.dim() - 1))  # ... and start state j
    z_second, computed = iterate_to_budget(step, inputs, starts, iters, tol, batch_size)
    return cosine(z_first.repeat_interleave(b, dim=0), z_second).view(b, b), computed
