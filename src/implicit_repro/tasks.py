"""What each task needs beyond its data: the model input, the loss and the correctness metric.

The regression tasks (matrix inversion, edge copy) are scored by MSE in the dataset papers and
have no accuracy; ``correct`` is our documented choice: an example counts as solved when its own
MSE is below a threshold. The threshold is a parameter of ``get_task``; the defaults are set
against the error of a trivial predictor so that "correct" means "actually solved":
- edge copy, 0.01: targets are U(-1, 1), so predicting 0 scores an MSE of 1/3; 0.01 is 3% of that
  (an RMS error of 0.1 on a range of width 2).
- matrix inversion, 0.005 here, but every config sets its own (``task_params.threshold``): a tenth
  of the MSE of predicting the mean training inverse at its n and c (0.0078 at n = 5, 0.0034 at
  n = 10; tests/test_thresholds.py measures it). The scale of A^{-1} falls with n, so a fixed
  threshold would drift from "solved" to "anything goes".
The threshold is absolute, not relative to the size of the target: the harder matrix split has
larger inverse entries, and an absolute MSE is the quantity the papers plot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from implicit_repro.data import cifar, digits, edge_copy, matrix_inversion, mazes, prefix_sums

MATRIX_MSE_THRESHOLD = 0.005
EDGE_MSE_THRESHOLD = 0.01


@dataclass(frozen=True)
class Task:
    name: str
    model_input: Callable[[torch.Tensor], torch.Tensor]
    target: Callable[[torch.Tensor], torch.Tensor]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    correct: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    """Per-example correctness (bool, shape (N,))."""


def _exact_match(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (two_class_argmax(logits) == targets).flatten(1).all(1)


def _argmax_match(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return logits.argmax(1) == labels


def per_example_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).pow(2).flatten(1).mean(1)


def _squared_edge_error(pred: torch.Tensor, graphs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared error on real edges only (zero on padding and self loops), and the edge mask."""
    mask = graphs[:, edge_copy.MASK]
    return (pred - graphs[:, edge_copy.VALUE]).pow(2) * mask, mask


def masked_edge_mse(pred: torch.Tensor, graphs: torch.Tensor) -> torch.Tensor:
    """Mean over all real edges of the batch: every edge weighs the same, whatever its graph."""
    err, mask = _squared_edge_error(pred, graphs)
    return err.sum() / mask.sum().clamp_min(1)


def per_example_edge_mse(pred: torch.Tensor, graphs: torch.Tensor) -> torch.Tensor:
    err, mask = _squared_edge_error(pred, graphs)
    return err.flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1)


def prefix_sums_task() -> Task:
    return Task("prefix_sums", prefix_sums.model_input, lambda t: t.long(), F.cross_entropy, _exact_match)


# Maze targets carry WALL (255) on wall pixels (see data/mazes.py): the loss ignores them, so it is
# the mean over the batch's non-wall pixels, and an example is correct when every non-wall pixel is.
def _maze_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, targets, ignore_index=mazes.WALL)


def two_class_argmax(logits: torch.Tensor) -> torch.Tensor:
    """``logits.argmax(1)`` of two-class logits (per pixel or per position), decided as argmax decides
    (a NaN counts as the largest, a tie goes to the first): on the CPU about 100x faster than
    argmax's strided reduction over two channels, which took a tenth of a maze evaluation and 7% of
    a prefix-sum one."""
    if logits.shape[1] != 2:
        raise ValueError(f"two_class_argmax needs 2 classes along dim 1, got shape {tuple(logits.shape)}")
    low, high = logits[:, 0], logits[:, 1]
    return ((high > low) | (high.isnan() & ~low.isnan())).long()


def _maze_correct(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    right = (two_class_argmax(logits) == targets) | (targets == mazes.WALL)
    return right.flatten(1).all(1)


def mazes_task() -> Task:
    return Task("mazes", mazes.model_input, lambda t: t.long(), _maze_loss, _maze_correct)


def matrix_inversion_task(threshold: float = MATRIX_MSE_THRESHOLD) -> Task:
    return Task(
        name="matrix_inversion",
        model_input=matrix_inversion.model_input,
        target=lambda t: t.float(),
        loss=F.mse_loss,
        correct=lambda pred, target: per_example_mse(pred, target) < threshold,
    )


def edge_copy_task(threshold: float = EDGE_MSE_THRESHOLD) -> Task:
    return Task(
        name="edge_copy",
        model_input=edge_copy.model_input,
        target=lambda t: t.float(),
        loss=masked_edge_mse,
        correct=lambda pred, graphs: per_example_edge_mse(pred, graphs) < threshold,
    )


def digits_task() -> Task:
    return Task("digits", digits.model_input, lambda t: t.long(), F.cross_entropy, _argmax_match)


def cifar_task(name: str) -> Callable[[], Task]:
    """CIFAR-10 / -100 classification: uint8 images, normalized per channel as they enter the model."""
    return lambda: Task(name, lambda images: cifar.normalize(images, name), lambda t: t.long(), F.cross_entropy,
                        _argmax_match)


PREFIX_SUMS = prefix_sums_task()
MAZES = mazes_task()
FACTORIES: dict[str, Callable[..., Task]] = {
    "prefix_sums": prefix_sums_task,
    "mazes": mazes_task,
    "matrix_inversion": matrix_inversion_task,
    "edge_copy": edge_copy_task,
    "digits": digits_task,
    "cifar10": cifar_task("cifar10"),
    "cifar100": cifar_task("cifar100"),
}
TASKS = {name: make() for name, make in FACTORIES.items()}


def get_task(name: str, **params) -> Task:
    """The task with its default parameters, or built with ``params`` (e.g. ``threshold``)."""
    if name not in FACTORIES:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(FACTORIES)}")
    if not params:
        return TASKS[name]
    try:
        return FACTORIES[name](**params)
    except TypeError:
        raise ValueError(f"task {name!r} takes no parameters {sorted(params)}") from None
