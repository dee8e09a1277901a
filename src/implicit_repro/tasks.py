"""What each task needs beyond its data: the model input, the loss and the correctness metric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from implicit_repro.data import mazes, prefix_sums


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


# Maze targets carry WALL (255) on wall pixels (see data/mazes.py): the loss ignores them, so it is
# the mean over the batch's non-wall pixels, and an example is correct when every non-wall pixel is.
def _maze_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, targets, ignore_index=mazes.WALL)


def _maze_correct(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    right = (logits.argmax(1) == targets) | (targets == mazes.WALL)
    return right.flatten(1).all(1)


MAZES = Task(
    name="mazes",
    model_input=mazes.model_input,
    target=lambda t: t.long(),
    loss=_maze_loss,
    correct=_maze_correct,
)

TASKS = {t.name: t for t in (PREFIX_SUMS, MAZES)}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None
