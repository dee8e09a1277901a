"""The scorecard engine: every paper's claim rows in one frame, and the rules they share.

A paper's ``claims.scorecard(records)`` returns rows of the shape below; the statistic, its
bootstrap CI and the verdict rule come from ``results.stats``."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["paper", "claim", "task", "statistic", "value", "ci_low", "ci_high", "n", "verdict"]
MIN_MODELS = 3  # a group-comparing claim gives a CI only with at least this many models in every group


def scorecard_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)
