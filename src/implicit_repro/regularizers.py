"""Auxiliary training losses on the hidden state, for interventions that act through the loss.

Each takes any step function f(z, x), so it can be checked on toy systems with known answers.
"""

from __future__ import annotations

import torch

from implicit_repro.path_independence import _cosine
from implicit_repro.solvers import Step, fixed_point_iterate


def anti_alignment_penalty(
    step: Step, x: torch.Tensor, z0_a: torch.Tensor, z0_b: torch.Tensor, iters: int
) -> torch.Tensor:
    """Mean over examples of cos(z_a, z_b), z_a and z_b being the states reached from two different
    starts of the same input after ``iters`` steps (gradient flows through both runs).

    Added to the loss with a positive weight, minimising it rewards states that *depend* on the
    start: the anti-alignment penalty of anil2022 (second-hand, unverified; this form is our choice).
    The cosine is the one AA uses, so the penalty pushes on exactly what AA measures."""
    # One batched run of both starts: half the calls of two runs, same states (no batch coupling).
    z_a, z_b = fixed_point_iterate(step, torch.cat([x, x]), torch.cat([z0_a, z0_b]), iters).chunk(2)
    return _cosine(z_a, z_b).mean()
