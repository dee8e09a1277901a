"""Residual building blocks shared by the task cells."""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock1d(nn.Module):
    """conv-relu-conv plus identity, then relu (ResNet BasicBlock without normalization)."""

    def __init__(self, width: int, kernel: int = 3):
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, kernel, padding=kernel // 2, bias=False)
        self.conv2 = nn.Conv1d(width, width, kernel, padding=kernel // 2, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(z + self.conv2(torch.relu(self.conv1(z))))


class BasicBlock2d(nn.Module):
    """The 2-D twin of BasicBlock1d: conv-relu-conv plus identity, then relu, no normalization."""

    def __init__(self, width: int, kernel: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, kernel, padding=kernel // 2, bias=False)
        self.conv2 = nn.Conv2d(width, width, kernel, padding=kernel // 2, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(z + self.conv2(torch.relu(self.conv1(z))))


class ResidualMLPBlock(nn.Module):
    """linear-relu-linear plus identity, then relu: BasicBlock for flat vectors."""

    def __init__(self, width: int):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(z + self.fc2(torch.relu(self.fc1(z))))
