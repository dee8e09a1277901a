"""An MLP equilibrium cell for matrix inversion (the paper's architecture is unknown).

The state is a flat vector of ``width`` features, not a per-entry map: inverting a matrix mixes
every entry with every other, which a fully connected cell does in one step.
f(z, x) = ResidualMLPBlocks(Linear(w + n^2 -> w)(concat[z, flatten(A)])); A is injected at every
step. The head maps the state to the n x n inverse.
"""

from __future__ import annotations

import torch
from torch import nn

from implicit_repro.models.blocks import ResidualMLPBlock


class MatrixInversionCell(nn.Module):
    def __init__(self, size: int, width: int, blocks: int):
        super().__init__()
        self.width = width
        self.inject = nn.Linear(width + size * size, width)
        self.blocks = nn.Sequential(*(ResidualMLPBlock(width) for _ in range(blocks)))

    def state_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        return (x.shape[0], self.width)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.inject(torch.cat([z, x.flatten(1)], dim=1)))


def matrix_inversion_head(size: int, width: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, size * size),
        nn.Unflatten(1, (size, size)),
    )
