"""toy2024's one item: accuracy per split at the training budget and at the test-time budget."""

from __future__ import annotations

import sys
from typing import Callable

import pandas as pd

from implicit_repro.results.build import named_builder
from implicit_repro.results.output import write_table
from implicit_repro.results.reported import attach_reported


def accuracy_frame(records: list[dict]) -> pd.DataFrame:
    rows = [{"split": split, "seed": r["seed"], "at_train_budget": acc[r["train_iters"] - 1], "at_max": acc[-1]}
            for r in records if r["status"] == "ok" for split, acc in r["accuracy"].items()]
    return pd.DataFrame(rows, columns=["split", "seed", "at_train_budget", "at_max"])


def table_accuracy(records: list[dict], reported: list[dict], scale: str, stem: str) -> pd.DataFrame:
    frame = accuracy_frame(records).groupby("split", sort=False, as_index=False)[["at_train_budget", "at_max"]].mean()
    frame = frame.rename(columns={"at_max": "reproduced"})
    frame = attach_reported(frame, reported, ["split"])
    frame["scale"] = scale
    write_table(frame, frame, stem, f"toy2024: mean accuracy per split (scale {scale}).")
    return frame


def builder(item: str) -> Callable | None:
    return named_builder(item, sys.modules[__name__])
