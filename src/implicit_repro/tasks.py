"""What each task needs beyond its data: the model input, the loss and the correctness metric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from implicit_repro.data import prefix_sums


@dataclass(frozen=True)
class Task:
    name: str
    model_input: Callable[[torch.Tensor], torch.Tensor]
    target: Callable[[torch.Tensor], torch.Tensor]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    correct: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    """Per-example correctness (bool, shape (N,)): the paper's exact-match criterion."""


def _exact_match(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == targets).flatten(1).all(1)


PREFIX_SUMS = Task(
    name="prefix_sums",
    model_input=prefix_sums.model_input,
    target=lambda t: t.long(),
    loss=F.cross_entropy,
    correct=_exact_match,
)

TASKS = {t.name: t for t in (PREFIX_SUMS,)}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None
