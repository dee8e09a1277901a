"""Per-job metrics files -> tidy pandas frames."""

from __future__ import annotations

import pandas as pd

from implicit_repro.errors import ReproError
from implicit_repro.io import read_json, read_jsonl, regenerate_command
from implicit_repro.train import own_epochs

JOB_COLUMNS = ["paper", "task", "intervention", "gradient", "seed"]


def load_records(paths: list[str], train_logs: list[str] | None = None) -> list[dict]:
    """The metrics files; with ``train_logs`` (one per metrics file, same order) each record also
    gets the run's wall-clock training time, which the deterministic metrics files do not hold."""
    records = [_read_metrics(p) for p in paths]
    if train_logs:
        if len(train_logs) != len(records):
            raise ValueError(f"{len(train_logs)} training logs for {len(records)} metrics files")
        for record, log in zip(records, train_logs):
            record.update(training_time(read_jsonl(log)))
    return records


def _read_metrics(path: str) -> dict:
    try:
        record = read_json(path)
    except (OSError, ValueError) as exc:  # missing, unreadable, or not JSON
        raise ReproError(f"{path}: not a readable metrics file ({type(exc).__name__}: {exc}). Delete it and rerun "
                         f"`{regenerate_command(path)}` to evaluate the model again.") from None
    if not isinstance(record, dict) or "status" not in record:
        raise ReproError(f"{path}: not a metrics file of this pipeline (no `status`). Delete it and rerun "
                         f"`{regenerate_command(path)}`.")
    return record


def training_time(history: list[dict]) -> dict:
    """Mean seconds per completed epoch and per optimizer step (when the log counts steps); an
    unrolled warm-up epoch (``pretrain``) is not the model's own cost and is left out."""
    ok = own_epochs(history)
    seconds = sum(h["seconds"] for h in ok)
    steps = sum(h.get("steps", 0) for h in ok)
    return {"seconds_per_epoch": seconds / len(ok) if ok else None,
            "step_seconds": seconds / steps if steps else None}


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
                "residual_at_train_iters": s["residual_median"][r["train_iters"] - 1],
                "residual_at_max_iters": s["residual_median"][-1],
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
