"""Matrix inversion (Du et al. 2022): a symmetric matrix A -> its inverse A^{-1}.

R ~ U(-1, 1)^{n x n} and A = R R^T + (R R^T)^T + c I. R R^T is positive semi-definite, so A is
symmetric positive definite with smallest eigenvalue at least c: the inverse always exists and
its entries grow like 1/c. Training uses c = 0.5; the harder split c = 0.1 is worse conditioned
(about 4x the condition number at n = 10) and has larger inverse entries.
"""

from __future__ import annotations

import torch

TRAIN_C = 0.5
HARDER_C = 0.1


def generate(n: int, c: float, count: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """``count`` matrices A (count, n, n) with their inverses, both stored as float32.

    The inverse is computed in float64: in float32 the error of inv() grows with the condition
    number and would become part of the target on the harder split.
    """
    if n < 1 or c <= 0:
        raise ValueError(f"matrix inversion needs n >= 1 and c > 0 (got n={n}, c={c})")
    r = torch.rand(count, n, n, generator=g, dtype=torch.float64) * 2 - 1
    rrt = r @ r.mT
    a = rrt + rrt.mT + c * torch.eye(n, dtype=torch.float64)
    return {"inputs": a.float(), "targets": torch.linalg.inv(a).float()}


def model_input(a: torch.Tensor) -> torch.Tensor:
    """The network sees A as is, shape (N, n, n); the cell flattens it."""
    return a.float()
