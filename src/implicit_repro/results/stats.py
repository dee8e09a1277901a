"""Bootstrap confidence intervals, the verdict rule of the scorecard, and the power estimate."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Callable

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
MIN_DEFINED = 0.95  # fraction of resamples on which the statistic must be defined
POWER = 0.8  # the probability with which ``models_needed``'s sample size resolves a row


def bootstrap_ci(
    samples: tuple[np.ndarray, ...], statistic: Callable[..., float], seed: int = 0, basic: bool = False
) -> tuple[float, float]:
    """Percentile CI of ``statistic(*samples)``, each sample resampled independently with
    replacement. Paired data should be passed as one 2-D sample so rows stay together.

    ``basic``: the basic (reverse-percentile) interval 2θ̂ − q_hi, 2θ̂ − q_lo instead, for a
    statistic whose bootstrap distribution is shifted from it (one that subtracts a noise term the
    resampling adds back, such as a variance component)."""
    # Uniform draws per group from their own stream, one block of RESAMPLES per position, mapped onto
    # the group's size: a group with one model left out is resampled from the same draws (its first
    # n - 1 blocks), so the fragility check compares like with like.
    uniforms = [np.random.default_rng([seed, g]).random((len(s), RESAMPLES)).T for g, s in enumerate(samples)]
    indices = [np.minimum((u * len(s)).astype(int), len(s) - 1) for u, s in zip(uniforms, samples)]
    draws = []
    for k in range(RESAMPLES):
        draws.append(statistic(*[s[i[k]] for s, i in zip(samples, indices)]))
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


def within_group_spearman(x: np.ndarray, y: np.ndarray, group: np.ndarray) -> float:
    """Spearman's correlation of x and y with ``group`` partialled out: both are ranked over all
    models, each rank is centred on its group's mean rank, and the centred ranks are correlated.
    A difference between the groups' levels (say, one arm high on both) then adds nothing; only how
    x and y move together inside each group does. NaN when no group varies in both."""
    if len(x) < 3:
        return float("nan")
    _, inverse = np.unique(group, return_inverse=True)
    rx, ry = _centred_within(_ranks(x), inverse), _centred_within(_ranks(y), inverse)
    varies = [np.ptp(rx[inverse == g]) > 0 and np.ptp(ry[inverse == g]) > 0 for g in range(inverse.max() + 1)]
    if not any(varies):
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _centred_within(values: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """``values`` minus their group's mean; ``inverse``: each value's group index 0..G-1."""
    means = np.bincount(inverse, weights=values) / np.bincount(inverse)
    return values - means[inverse]


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


def claimed_side(low: float, high: float, expected_sign: int) -> tuple[float, float]:
    """The CI in the claim's direction: a claim that the statistic is negative reads -high, -low."""
    return (low, high) if expected_sign > 0 else (-high, -low)


def verdict(low: float, high: float, expected_sign: int = 1, smallest_effect: float = 0.0) -> str:
    """The scorecard's rule, on the claimed side of the statistic:

    - *not replicated*: the whole CI lies below the smallest effect of interest (the effect is
      absent, too small to matter, or reversed);
    - else *replicated*: the CI excludes 0;
    - else *inconclusive*: the data cannot tell yet (or there is too little data for a CI).

    With ``smallest_effect`` 0, "not replicated" needs a CI wholly on the wrong side of 0."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    low, high = claimed_side(low, high, expected_sign)
    if high < smallest_effect:
        return "not replicated"
    if low > 0:
        return "replicated"
    return "inconclusive"


def models_needed(n: int, half_width: float, estimate: float, smallest_effect: float) -> float:
    """Models per group at which an inconclusive row would likely resolve, from its own bootstrap.

    The CI's half-width h shrinks as 1/√n (the spread of a mean, or of a correlation, over n
    models). Taking today's estimate θ (on the claimed side) as the true effect, the row resolves
    when the CI clears 0 (θ > z·se) or clears the smallest effect of interest s from below
    (s − θ > z·se); with power ``POWER`` either needs θ or s − θ ≥ (z + z_β)·se(n'). So

        n' = n · ((z + z_β) · se / max(θ, s − θ))²,   se = h / z · √(n / (n − 1)),

    the square root undoing the bootstrap's shrinkage of a spread over n values (it resamples the
    plug-in variance, (n − 1)/n of the unbiased one). ``n`` is the size of the smallest group (the
    unit the bootstrap resamples), so the answer is per group, every group growing in proportion. A
    statistic whose spread shrinks faster than 1/√n (a variance component under the null: 1/n) needs
    fewer models than this says. NaN when h is not finite."""
    if not (np.isfinite(half_width) and np.isfinite(estimate)) or n < 2:
        return float("nan")
    z = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)
    z_power = NormalDist().inv_cdf(POWER)
    target = max(estimate, smallest_effect - estimate)  # >= smallest_effect / 2 > 0
    se = half_width / z * math.sqrt(n / (n - 1))
    return float(math.ceil(n * (se * (z + z_power) / target) ** 2))
