"""The model every task shares: z_{k+1} = f(z_k, x), logits = head(z_K)."""

from __future__ import annotations

import torch
from torch import nn

from implicit_repro.models.mazes import MazeCell, maze_head
from implicit_repro.models.prefix_sums import PrefixSumCell, prefix_sum_head


class EquilibriumModel(nn.Module):
    def __init__(self, cell: nn.Module, head: nn.Module, width: int):
        super().__init__()
        self.cell = cell
        self.head = head
        self.width = width

    def state_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        """The hidden state has ``width`` channels and the input's spatial extent."""
        return (x.shape[0], self.width, *x.shape[2:])

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(self.state_shape(x))

    def step(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.cell(z, x)

    def readout(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z)

    def forward(self, x: torch.Tensor, iters: int, z0: torch.Tensor | None = None) -> torch.Tensor:
        """Logits after ``iters`` unrolled applications (gradient flows through all of them)."""
        z = self.initial_state(x) if z0 is None else z0
        for _ in range(iters):
            z = self.step(z, x)
        return self.readout(z)


def build_model(task: str, width: int, blocks: int) -> EquilibriumModel:
    if task == "prefix_sums":
        return EquilibriumModel(PrefixSumCell(width, blocks), prefix_sum_head(width), width)
    if task == "mazes":
        return EquilibriumModel(MazeCell(width, blocks), maze_head(width), width)
    raise ValueError(f"no model for task {task!r}; known: prefix_sums, mazes")
