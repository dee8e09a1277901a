"""Scores each claim of anil2022 from the evaluation metrics: statistic, value, 95% bootstrap CI,
sample size and verdict. The statistics and thresholds are this project's choices (see README)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from implicit_repro.interventions import get_intervention
from implicit_repro.papers.anil2022.generalization import split_orders
from implicit_repro.results.collect import per_example_frame, summary_frame
from implicit_repro.results.scorecard import MIN_MODELS
from implicit_repro.results.stats import bootstrap_ci, point_biserial, spearman, verdict

GOOD_IN_DISTRIBUTION = 0.9  # claim 4 looks only at models at least this accurate in-distribution
IN_DISTRIBUTION = "in_distribution"
MIN_PER_CLASS = 10  # claim 4 needs this many correct and wrong examples for a meaningful CI


def scorecard(records: list[dict]) -> list[dict]:
    """Claims 1-4 per task, each on the task's hardest evaluated split."""
    summary = summary_frame(records)
    ok = summary[summary["status"] == "ok"]
    examples = per_example_frame(records)
    rows = []
    for task, order in split_orders(records).items():
        by_task = ok[ok["task"] == task]
        if len(order) < 2 or by_task.empty:
            why = "no harder split was evaluated" if len(order) < 2 else "no converged model (every run diverged)"
            rows += [_row(c, why, float("nan"), (np.nan, np.nan), 0, task) for c in (1, 2, 3, 4)]
            continue
        hardest = order[-1]
        hard = by_task[by_task["split"] == hardest]
        rows += [
            _claim1(task, hard, hardest),
            _claim2(task, hard, hardest),
            *_claim3(task, hard, hardest),
            _claim4(task, by_task, examples, hardest),
        ]
    return rows


def _row(claim, statistic, value, ci, n, task="", expected_sign=1):
    return {"paper": "anil2022", "claim": claim, "task": task, "statistic": statistic, "value": value,
            "ci_low": ci[0], "ci_high": ci[1], "n": n, "verdict": verdict(*ci, expected_sign)}


def _ci(samples: tuple[np.ndarray, ...], statistic) -> tuple[float, float]:
    """A bootstrap CI, or none when some sample has too few models to resample meaningfully."""
    if min(len(s) for s in samples) < MIN_MODELS:
        return np.nan, np.nan
    return bootstrap_ci(samples, statistic)


def _claim1(task, hard, split):
    gain = (hard["acc_at_max_iters"] - hard["acc_at_train_iters"]).to_numpy()
    ci = _ci((gain,), np.mean)
    return _row(1, f"mean over models of accuracy gain on {split} from the training budget to the largest "
                   "test-time budget", float(np.mean(gain)), ci, len(gain), task)


def _claim2(task, hard, split):
    pairs = hard[["aa", "acc_at_max_iters"]].to_numpy()
    stat = lambda p: spearman(p[:, 0], p[:, 1])  # noqa: E731
    ci = _ci((pairs,), stat)
    return _row(2, f"Spearman correlation across models of AA and accuracy on {split} (largest budget)",
                stat(pairs), ci, len(pairs), task)


def _claim3(task, hard, split):
    effect = hard["intervention"].map(lambda i: get_intervention(i).effect)
    base = hard.loc[effect == "baseline", "acc_at_max_iters"].to_numpy()
    rows = []
    for kind, sign in (("promotes", 1), ("penalizes", -1)):
        group = hard.loc[effect == kind, "acc_at_max_iters"].to_numpy()
        if len(group) == 0 or len(base) == 0:
            continue
        diff = lambda a, b: float(np.mean(a) - np.mean(b))  # noqa: E731
        ci = _ci((group, base), diff)
        rows.append(_row(3, f"mean accuracy on {split} (largest budget) of interventions that {kind} path "
                            "independence minus the zero-init baseline", diff(group, base), ci,
                         len(group) + len(base), task, expected_sign=sign))
    return rows


def good_models(by_task: pd.DataFrame) -> pd.DataFrame:
    """(task, intervention, seed) of the converged models at least GOOD_IN_DISTRIBUTION accurate
    in-distribution (at the largest test-time budget); ``by_task`` is a summary frame of ok runs."""
    good = by_task[(by_task["split"] == IN_DISTRIBUTION) & (by_task["acc_at_max_iters"] >= GOOD_IN_DISTRIBUTION)]
    return good[["task", "intervention", "seed"]]


def good_model_examples(by_task: pd.DataFrame, examples: pd.DataFrame, split: str) -> pd.DataFrame:
    """The per-example rows (AA, correct) of ``split`` from the good models only."""
    keep = examples.merge(good_models(by_task), on=["task", "intervention", "seed"])
    return keep[keep["split"] == split]


def _claim4(task, by_task, examples, split):
    pairs = good_model_examples(by_task, examples, split)[["aa", "correct"]].to_numpy(dtype=float)
    n_right = int(pairs[:, 1].sum()) if len(pairs) else 0
    n_wrong = len(pairs) - n_right
    enough = min(n_right, n_wrong) >= MIN_PER_CLASS
    ci = bootstrap_ci((pairs,), point_biserial) if enough else (np.nan, np.nan)
    return _row(4, f"point-biserial correlation of per-example AA and correctness on {split}, pooled over "
                   f"models with in-distribution accuracy >= {GOOD_IN_DISTRIBUTION} ({n_right} correct, "
                   f"{n_wrong} wrong; no verdict below {MIN_PER_CLASS} of each)",
                point_biserial(pairs), ci, len(pairs), task)


def training_outcome(records: list[dict]) -> pd.DataFrame:
    """Per task: how many models trained, diverged, and reached GOOD_IN_DISTRIBUTION in-distribution
    accuracy at the training budget.

    The scorecard tests the claims on whatever models the run produced; a reader needs to see
    next to it whether those models solved the task they were trained on."""
    frame = summary_frame(records)
    rows = []
    for task, jobs in frame.groupby("task", sort=True):
        per_job = jobs.drop_duplicates(["intervention", "gradient", "seed"])
        acc = jobs.loc[jobs["split"] == IN_DISTRIBUTION, "acc_at_train_iters"]
        rows.append({"task": task, "models": len(per_job), "diverged": int((per_job["status"] != "ok").sum()),
                     "median": acc.median(), "min": acc.min(), "max": acc.max(),
                     "learned": int((acc >= GOOD_IN_DISTRIBUTION).sum())})
    return pd.DataFrame(rows, columns=["task", "models", "diverged", "median", "min", "max", "learned"])


def training_outcome_markdown(records: list[dict]) -> list[str]:
    """The README section that shows, next to the verdicts, whether the models learned their task."""
    outcome = training_outcome(records)
    if outcome.empty:
        return []
    lines = ["## How well the models learned their training task", "",
             "In-distribution accuracy at the training budget of iterations, over the models of the "
             "intervention grid. The scorecard below tests the claims on these models; where few of them "
             "learned the task, a verdict says little about the paper's trained networks.", "",
             f"| task | models | diverged | median | min | max | models ≥ {GOOD_IN_DISTRIBUTION:g} |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.task} | {r.models} | {r.diverged} | {_fmt(r.median)} | {_fmt(r.min)} | {_fmt(r.max)} | "
              f"{r.learned} of {r.models - r.diverged} |" for r in outcome.itertuples()]
    return lines


def _fmt(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3f}"
