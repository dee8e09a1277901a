"""Prefix sums (Schwarzschild et al. 2021): n bits -> prefix parity at every position.

Follows the public generator of the dataset paper: for n < 24 the strings are distinct integers
drawn from [0, 2^n) and written least-significant bit first; otherwise bits are i.i.d.
Bernoulli(0.5). Unlike the original, the draw is seeded.
"""

from __future__ import annotations

import torch

DISTINCT_BELOW_BITS = 24


def prefix_parity(bits: torch.Tensor) -> torch.Tensor:
    """Target of the task: cumsum(x) mod 2 along the last axis."""
    return (bits.long().cumsum(-1) % 2).to(torch.uint8)


def generate(n_bits: int, count: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """``count`` bit strings of length ``n_bits`` with their prefix-parity targets (uint8)."""
    if n_bits < DISTINCT_BELOW_BITS:
        count = min(count, 2**n_bits)
        values = torch.randperm(2**n_bits, generator=g)[:count]
        shifts = torch.arange(n_bits)
        bits = ((values.unsqueeze(1) >> shifts) & 1).to(torch.uint8)
    else:
        bits = torch.randint(0, 2, (count, n_bits), generator=g, dtype=torch.uint8)
    return {"inputs": bits, "targets": prefix_parity(bits)}


def model_input(bits: torch.Tensor) -> torch.Tensor:
    """Network input of the spec: bits - 0.5, shape (N, 1, n)."""
    return (bits.float() - 0.5).unsqueeze(1)
