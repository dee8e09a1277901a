"""Training interventions that promote or penalize path independence (anil2022, section 4).

Each intervention is two choices made per training step: where the iteration starts (z0) and how
many forward iterations it gets, plus, for some, an auxiliary loss on the hidden state. Their
parameters come from the config key ``<paper>.<task>.intervention_params``; a parameter only one
intervention uses (``anti_alignment_weight``) is required only when that intervention runs. A
penalty that needs a run from another start (``penalty_start``) gets it in the same batch as the
task's run: one batch of twice the examples costs less than two runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

# torch is imported inside the functions that need it: the grids (imported by the Snakefile, which
# must start in about a second) read the registry below for the compute plan's work model.
if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Intervention:
    name: str
    init: str  # "zero" or "mixed"
    budget: str  # "fixed" or "random"
    effect: str  # on path independence: "baseline", "promotes" or "penalizes"
    provenance: str  # how sure we are the paper did this
    penalty: str = "none"  # auxiliary loss added to the task loss: "none" or "anti_alignment"


INTERVENTIONS = {
    i.name: i
    for i in (
        Intervention("baseline", "zero", "fixed", "baseline", "our choice"),
        Intervention("mixed_init", "mixed", "fixed", "promotes", "primary (quoted)"),
        Intervention("random_budget", "zero", "random", "promotes", "near-primary; range is our choice"),
        Intervention("mixed_init_random_budget", "mixed", "random", "promotes", "combination; our choice"),
        # Baseline starts and budget, so the penalty is the only difference to the baseline run.
        Intervention("anti_alignment", "zero", "fixed", "penalizes",
                     "second-hand, unverified: our documented choice", penalty="anti_alignment"),
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
    import torch

    if intervention.init == "zero":
        return zeros
    noise = torch.randn(zeros.shape, generator=g) * params["init_std"]
    coin = torch.rand(zeros.shape[0], generator=g) < params["mixed_init_prob"]
    return torch.where(coin.view(-1, *[1] * (zeros.dim() - 1)), noise, zeros)


def forward_budget(intervention: Intervention, fixed_iters: int, params: dict, g: torch.Generator) -> int:
    import torch

    if intervention.budget == "fixed":
        return fixed_iters
    low, high = params["budget_min"], params["budget_max"]
    return int(torch.randint(low, high + 1, (1,), generator=g))


def penalty_start(intervention: Intervention, zeros: torch.Tensor, params: dict,
                  g: torch.Generator) -> torch.Tensor | None:
    """The start of the penalty's own run of the batch, iterated beside the task's run (one batch of
    both, see ``auxiliary_loss``), or None for interventions without a penalty (which then draw
    nothing from ``g``, so their runs are unchanged by this hook).

    Anti-alignment: an N(0, init_std^2 I) start per example, drawn on the CPU generator like
    ``initial_state`` (the caller moves it to the model's device)."""
    import torch

    if intervention.penalty == "none":
        return None
    if intervention.penalty != "anti_alignment":
        raise ValueError(f"unknown penalty {intervention.penalty!r}")
    if "anti_alignment_weight" not in params:
        raise ValueError(
            f"intervention {intervention.name!r} needs `intervention_params.anti_alignment_weight` in the config"
        )
    return torch.randn(zeros.shape, generator=g, dtype=zeros.dtype) * params["init_std"]


def auxiliary_loss(intervention: Intervention, z_task: torch.Tensor, z_penalty: torch.Tensor | None,
                   params: dict) -> torch.Tensor | None:
    """The weighted auxiliary loss of one batch, or None for interventions without one.

    ``z_task``: the state the task loss reads, reached from the intervention's own start (zeros for
    anti-alignment) within the training budget; ``z_penalty``: the state the same inputs reached
    from ``penalty_start`` within the same budget. Both carry their autograd graphs.

    Anti-alignment: weight * mean_i cos(z_task_i, z_penalty_i)."""
    if intervention.penalty == "none":
        return None
    return params["anti_alignment_weight"] * anti_alignment_penalty(z_task, z_penalty)


def anti_alignment_penalty(z_task: torch.Tensor, z_penalty: torch.Tensor) -> torch.Tensor:
    """Mean over examples of cos(z_task, z_penalty): the state the task loss reads and the state the
    same input reached from another start (gradient flows through both runs).

    Added to the loss with a positive weight, minimising it rewards states that *depend* on the
    start: the anti-alignment penalty of anil2022 (second-hand, unverified; this form is our choice).
    It compares what AA compares, the zero-init state against a state reached from elsewhere, with
    AA's cosine, so the penalty pushes on exactly what AA measures. The task's own run is one side:
    the penalty costs one more run of the batch per step, not two."""
    from implicit_repro.path_independence import cosine

    return cosine(z_task, z_penalty).mean()
