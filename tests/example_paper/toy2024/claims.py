"""toy2024's one claim: more test-time iterations help on the harder split."""

from __future__ import annotations

import numpy as np

from implicit_repro.results.scorecard import Evidence, row
from implicit_repro.papers.toy2024.items import accuracy_frame


def scorecard(records: list[dict]) -> list[dict]:
    frame = accuracy_frame(records)
    harder = frame[frame["split"] != "in_distribution"]
    gain = (harder["at_max"] - harder["at_train_budget"]).to_numpy()
    evidence = Evidence((gain,), lambda g: float(np.mean(g)))
    return [row("toy2024", 1, "prefix_sums", "mean accuracy gain, test-time over training budget (harder split)",
                float(np.mean(gain)) if len(gain) else float("nan"), evidence, len(gain))]


def training_outcome_markdown(records: list[dict]) -> list[str]:
    ok = sum(r["status"] == "ok" for r in records)
    return ["## toy2024: how well the models learned their task", "", f"{ok} of {len(records)} runs trained."]
