"""The maze cell of anil2022 (a public port of the authors' model): all convolutions 3x3, padding 1,
no bias, no normalization, so any image side works.

f(z, x) = BasicBlocks(Conv2d(w+3 -> w)(concat[z, x])): the raw image is injected at every step.
head: Conv(w -> 32) -> ReLU -> Conv(32 -> 8) -> ReLU -> Conv(8 -> 2), two logits per pixel.

The spec also lists a projection Conv(3 -> w) + ReLU. In DT-net it builds the first state from the
input; here the first state z0 is set by the intervention's init scheme (zeros or per-example noise)
and the cell sees the raw image through the injection conv, so a projection would never be called.
We leave it out: it would be 3*w*9 parameters (3,456 at w = 128) that get no gradient. Without it,
w = 128 and 2 blocks give 780,048 parameters, the ~0.78 M of the released model.
"""

from __future__ import annotations

import torch
from torch import nn

from implicit_repro.models.blocks import BasicBlock2d

IN_CHANNELS = 3


class MazeCell(nn.Module):
    def __init__(self, width: int, blocks: int, in_channels: int = IN_CHANNELS):
        super().__init__()
        self.inject = nn.Conv2d(width + in_channels, width, 3, padding=1, bias=False)
        self.blocks = nn.Sequential(*(BasicBlock2d(width) for _ in range(blocks)))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.inject(torch.cat([z, x], dim=1)))


def maze_head(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(width, 32, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(32, 8, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(8, 2, 3, padding=1, bias=False),
    )
