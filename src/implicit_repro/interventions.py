"""Training interventions that promote or penalize path independence (anil2022, section 4).

Each intervention is two choices made per training step: where the iteration starts (z0) and how
many forward iterations it gets. Their parameters come from the config key
``<paper>.<task>.intervention_params``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Intervention:
    name: str
    init: str  # "zero" or "mixed"
    budget: str  # "fixed" or "random"
    effect: str  # on path independence: "baseline", "promotes" or "penalizes"
    provenance: str  # how sure we are the paper did this


INTERVENTIONS = {
    i.name: i
    for i in (
        Intervention("baseline", "zero", "fixed", "baseline", "our choice"),
        Intervention("mixed_init", "mixed", "fixed", "promotes", "primary (quoted)"),
        Intervention("random_budget", "zero", "random", "promotes", "near-primary; range is our choice"),
        Intervention("mixed_init_random_budget", "mixed", "random", "promotes", "combination; our choice"),
    )
}


def get_intervention(name: str) -> Intervention:
    try:
        return INTERVENTIONS[name]
    except KeyError:
        raise ValueError(f"unknown intervention {name!r}; known: {', '.join(INTERVENTIONS)}") from None


def initial_state(
    intervention: Intervention, zeros: torch.Tensor, params: dict, g: torch.Generator
) -> torch.Tensor:
    """z0 for one batch. Mixed init flips one coin *per example* (not per element)."""
    if intervention.init == "zero":
        return zeros
    noise = torch.randn(zeros.shape, generator=g) * params["init_std"]
    coin = torch.rand(zeros.shape[0], generator=g) < params["mixed_init_prob"]
    return torch.where(coin.view(-1, *[1] * (zeros.dim() - 1)), noise, zeros)


def forward_budget(intervention: Intervention, fixed_iters: int, params: dict, g: torch.Generator) -> int:
    if intervention.budget == "fixed":
        return fixed_iters
    low, high = params["budget_min"], params["budget_max"]
    return int(torch.randint(low, high + 1, (1,), generator=g))
