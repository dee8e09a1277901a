"""The scorecard engine: every paper's claim rows in one frame, and the rules they share.

A paper's ``claims.scorecard(records)`` returns rows of the shape below, each built by ``row`` from a
statistic and the ``judge``ment of its samples: a bootstrap CI (``results.stats``) and a verdict, or
"too few models" when a group is below the minimum that makes a verdict stable."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from implicit_repro.results.stats import bootstrap_ci, verdict

COLUMNS = ["paper", "claim", "task", "part", "statistic", "value", "ci_low", "ci_high", "n", "verdict"]
TOO_FEW = "too few models"
NOT_A_HYPOTHESIS = "not a hypothesis"
VERDICTS = ("replicated", "not replicated", "inconclusive", TOO_FEW, NOT_A_HYPOTHESIS)
NO_CI = (float("nan"), float("nan"))

# The fewest models (runs) per group compared for which a claim gets a verdict. Across CPU types the
# kernels round differently and the trained models differ as with a change of seed: with 3 models per
# group, 3 of 21 small-scale verdicts flipped between two x86 CPUs. A bootstrap over 3 values has only
# 10 distinct resamples and understates their spread; below these sizes we report "too few models"
# rather than a verdict that is an accident of rounding.
MIN_PER_GROUP = 5
# A rank correlation across models needs more: 5 models have only 120 orderings.
MIN_FOR_CORRELATION = 10


def judge(samples: tuple[np.ndarray, ...], statistic: Callable[..., float], expected_sign: int = 1,
          minimum: int = MIN_PER_GROUP, basic: bool = False) -> tuple[float, float, str]:
    """(CI low, CI high, verdict) of ``statistic(*samples)``; each sample is a group of models
    (or runs), resampled with replacement independently of the others."""
    if min(len(s) for s in samples) < minimum:
        return (*NO_CI, TOO_FEW)
    low, high = bootstrap_ci(samples, statistic, basic=basic)
    return low, high, verdict(low, high, expected_sign)


def row(paper: str, claim: int, task: str, statistic: str, value: float,
        judged: tuple[float, float, str], n: int, part: str = "") -> dict:
    """``part``: a short name for one of several rows of a claim on one task ("(a) effectiveness")."""
    low, high, text = judged
    return {"paper": paper, "claim": claim, "task": task, "part": part, "statistic": statistic, "value": value,
            "ci_low": low, "ci_high": high, "n": n, "verdict": text}


def scorecard_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)
