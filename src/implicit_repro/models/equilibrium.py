"""The model every task shares: z_{k+1} = f(z_k, x), logits = head(z_K)."""

from __future__ import annotations

import torch
from torch import nn

from implicit_repro.iteration import fixed_point_iterate
from implicit_repro.models.digits import DigitsCell, digits_head
from implicit_repro.models.edge_copy import EdgeCopyCell, EdgeHead
from implicit_repro.models.matrix_inversion import MatrixInversionCell, matrix_inversion_head
from implicit_repro.models.mazes import MazeCell, maze_head
from implicit_repro.models.prefix_sums import PrefixSumCell, prefix_sum_head


class EquilibriumModel(nn.Module):
    def __init__(self, cell: nn.Module, head: nn.Module, width: int):
        super().__init__()
        self.cell = cell
        self.head = head
        self.width = width

    def state_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        """By default the hidden state has ``width`` channels and the input's spatial extent; a
        cell whose state is laid out differently (a flat vector, say) says so itself."""
        if hasattr(self.cell, "state_shape"):
            return tuple(self.cell.state_shape(x))
        return (x.shape[0], self.width, *x.shape[2:])

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(self.state_shape(x))

    step_varies = False  # every step applies the same cell (a fixed point of one is a fixed point of all)

    def step(self, z: torch.Tensor, x: torch.Tensor, i: int = 0) -> torch.Tensor:
        """One application of the weight-tied cell; the step index ``i`` is the same for every step
        (models whose steps differ, such as song2023's masked nets, use it)."""
        return self.cell(z, x)

    def readout(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z)

    def solve(self, x: torch.Tensor, iters: int, z0: torch.Tensor | None = None) -> torch.Tensor:
        """The state after ``iters`` unrolled applications from z0 (zeros by default); gradient
        flows through all of them."""
        return fixed_point_iterate(self.step, x, self.initial_state(x) if z0 is None else z0, iters)

    def forward(self, x: torch.Tensor, iters: int, z0: torch.Tensor | None = None) -> torch.Tensor:
        """Logits after ``iters`` unrolled applications."""
        return self.readout(self.solve(x, iters, z0))


def build_model(
    task: str, width: int, blocks: int, matrix_size: int | None = None, classes: int = 10,
    in_channels: int = 1, aggregation: str = "sum", head_channels: list[int] | None = None,
) -> EquilibriumModel:
    """Task-specific options: ``matrix_size`` (n of the n x n matrices) for matrix inversion,
    ``aggregation`` ("sum" or "mean") for edge copy, ``classes`` and ``in_channels`` for digits,
    ``head_channels`` (the head's two hidden widths) for prefix sums."""
    if task == "prefix_sums":
        cell, head = PrefixSumCell(width, blocks), prefix_sum_head(width, head_channels)
    elif task == "mazes":
        cell, head = MazeCell(width, blocks), maze_head(width)
    elif task == "matrix_inversion":
        if matrix_size is None:
            raise ValueError("the matrix_inversion model needs model.matrix_size (n of the n x n inputs)")
        cell, head = MatrixInversionCell(matrix_size, width, blocks), matrix_inversion_head(matrix_size, width)
    elif task == "edge_copy":
        cell, head = EdgeCopyCell(width, blocks, aggregation=aggregation), EdgeHead(width)
    elif task == "digits":
        cell, head = DigitsCell(width, blocks, in_channels), digits_head(width, classes)
    else:
        raise ValueError(f"no model for task {task!r}; known: prefix_sums, mazes, matrix_inversion, edge_copy, digits")
    return EquilibriumModel(cell, head, width)
