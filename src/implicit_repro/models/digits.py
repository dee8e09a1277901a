"""A small convolutional equilibrium cell for blurry digits (the paper's architecture is unknown).

The 2-D analogue of the prefix-sum cell: f(z, x) = BasicBlocks(Conv(w+1 -> w)(concat[z, x])), the
image injected at every step and the state a (w, H, W) feature map. The head pools the map to a
4x4 grid (keeping the coarse layout a digit needs, for 8x8 and 28x28 images alike) and reads out
class logits.
"""

from __future__ import annotations

import torch
from torch import nn

from implicit_repro.models.blocks import BasicBlock2d

POOLED_SIDE = 4


class DigitsCell(nn.Module):
    def __init__(self, width: int, blocks: int, in_channels: int = 1):
        super().__init__()
        self.inject = nn.Conv2d(width + in_channels, width, 3, padding=1, bias=False)
        self.blocks = nn.Sequential(*(BasicBlock2d(width) for _ in range(blocks)))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.inject(torch.cat([z, x], dim=1)))


def digits_head(width: int, classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(width, width, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(POOLED_SIDE),
        nn.Flatten(),
        nn.Linear(width * POOLED_SIDE**2, classes),
    )
