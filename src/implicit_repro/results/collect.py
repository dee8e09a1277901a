"""Per-job metrics files -> tidy pandas frames."""

from __future__ import annotations

import pandas as pd

from implicit_repro.io import read_json

JOB_COLUMNS = ["paper", "task", "intervention", "gradient", "seed"]


def load_records(paths: list[str]) -> list[dict]:
    return [read_json(p) for p in paths]


def curve_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (job, split, iteration): accuracy and median relative residual."""
    rows = [
        {**{k: r[k] for k in JOB_COLUMNS}, "split": split, "iteration": i + 1, "accuracy": acc,
         "residual_median": s["residual_median"][i]}
        for r in records if r["status"] == "ok"
        for split, s in r["splits"].items()
        for i, acc in enumerate(s["accuracy"])
    ]
    return pd.DataFrame(rows, columns=[*JOB_COLUMNS, "split", "iteration", "accuracy", "residual_median"])


def summary_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (job, split) with the headline numbers; diverged jobs keep one row, status set."""
    rows = []
    for r in records:
        job = {**{k: r[k] for k in JOB_COLUMNS}, "status": r["status"]}
        if r["status"] != "ok":
            rows.append({**job, "split": None})
            continue
        for split, s in r["splits"].items():
            acc = s["accuracy"]
            rows.append({
                **job, "split": split,
                "acc_at_train_iters": acc[r["train_iters"] - 1],
                "acc_at_max_iters": acc[-1],
                "acc_best": max(acc),
                "aa": s["aa"],
                "aa_all_pairs": s["aa_all_pairs"],
            })
    return pd.DataFrame(rows)


def per_example_frame(records: list[dict]) -> pd.DataFrame:
    """One row per AA example: its alignment and whether the model got it right."""
    rows = [
        {**{k: r[k] for k in JOB_COLUMNS}, "split": split, "aa": aa, "correct": ok}
        for r in records if r["status"] == "ok"
        for split, s in r["splits"].items()
        for aa, ok in zip(s["aa_per_example"], s["correct_at_aa_iters"])
    ]
    return pd.DataFrame(rows, columns=[*JOB_COLUMNS, "split", "aa", "correct"])
