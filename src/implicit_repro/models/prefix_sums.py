"""The 1-D analogue of the authors' maze cell, for prefix sums.

f(z, x) = BasicBlocks(Conv1d(w+1 -> w)(concat[z, x])): the raw input is injected at every step.
The head maps the state to two logits per position. Width and block count come from the config
(the paper's width is unknown; DT-net used 400).
"""

from __future__ import annotations

import torch
from torch import nn

from implicit_repro.models.blocks import BasicBlock1d


class PrefixSumCell(nn.Module):
    def __init__(self, width: int, blocks: int, in_channels: int = 1):
        super().__init__()
        self.inject = nn.Conv1d(width + in_channels, width, 3, padding=1, bias=False)
        self.blocks = nn.Sequential(*(BasicBlock1d(width) for _ in range(blocks)))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.inject(torch.cat([z, x], dim=1)))


def prefix_sum_head(width: int) -> nn.Module:
    mid = max(width // 2, 8)
    return nn.Sequential(
        nn.Conv1d(width, mid, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv1d(mid, 8, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv1d(8, 2, 3, padding=1, bias=False),
    )
