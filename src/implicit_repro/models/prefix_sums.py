"""The 1-D analogue of the authors' maze cell, for prefix sums.

f(z, x) = BasicBlocks(Conv1d(w+1 -> w)(concat[z, x])): the raw input is injected at every step.
The head maps the state to two logits per position through three convolutions, with hidden channels
``model.head_channels``; the default is DT-net's 1-D head, (width, width / 2). This project's first
head, (width / 2 but at least 8, 8), is what the smoke preset still uses: its 8-channel ReLU layer can
die at a position (all 8 outputs <= 0, so the bias-free last convolution outputs exactly 0 there and
passes no gradient), which froze zero-init prefix-sum models at a loss plateau (config/config.yaml).
Width and block count come from the config (the paper's width is unknown; DT-net used 400).
"""

from __future__ import annotations

from collections.abc import Sequence

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


def prefix_sum_head(width: int, hidden: Sequence[int] | None = None) -> nn.Module:
    first, second = hidden if hidden is not None else (width, width // 2)
    return nn.Sequential(
        nn.Conv1d(width, first, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv1d(first, second, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv1d(second, 2, 3, padding=1, bias=False),
    )
