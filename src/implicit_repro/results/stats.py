"""Bootstrap confidence intervals and the verdict rule of the scorecard."""

from __future__ import annotations

from typing import Callable

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
MIN_DEFINED = 0.95  # fraction of resamples on which the statistic must be defined


def bootstrap_ci(
    samples: tuple[np.ndarray, ...], statistic: Callable[..., float], seed: int = 0, basic: bool = False
) -> tuple[float, float]:
    """Percentile CI of ``statistic(*samples)``, each sample resampled independently with
    replacement. Paired data should be passed as one 2-D sample so rows stay together.

    ``basic``: the basic (reverse-percentile) interval 2θ̂ − q_hi, 2θ̂ − q_lo instead, for a
    statistic whose bootstrap distribution is shifted from it (one that subtracts a noise term the
    resampling adds back, such as a variance component)."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(RESAMPLES):
        resampled = [s[rng.integers(0, len(s), len(s))] for s in samples]
        draws.append(statistic(*resampled))
    draws = np.asarray(draws, dtype=float)
    finite = draws[np.isfinite(draws)]
    if len(finite) < MIN_DEFINED * len(draws):
        # The statistic is often undefined on resamples (e.g. a correlation when every resampled
        # example is correct): dropping those draws would fake a tight interval.
        return float("nan"), float("nan")
    draws = finite
    alpha = (1 - CONFIDENCE) / 2
    low, high = float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha))
    if basic:
        estimate = statistic(*samples)
        return 2 * estimate - high, 2 * estimate - low
    return low, high


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    rx, ry = _ranks(x), _ranks(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def point_biserial(pairs: np.ndarray) -> float:
    """Pearson correlation of column 0 (a score) with column 1 (0/1 correctness) of ``pairs``."""
    if len(pairs) < 3 or np.ptp(pairs[:, 0]) == 0 or np.ptp(pairs[:, 1]) == 0:
        return float("nan")
    return float(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank)."""
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v))
    uniq, inverse = np.unique(v, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse]


def verdict(low: float, high: float, expected_sign: int = 1) -> str:
    """replicated if the CI lies wholly on the claimed side of zero, not replicated if wholly on
    the other side, inconclusive otherwise (or when there is too little data for a CI)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if expected_sign * low > 0 and expected_sign * high > 0:
        return "replicated"
    if expected_sign * low < 0 and expected_sign * high < 0:
        return "not replicated"
    return "inconclusive"
