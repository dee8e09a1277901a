"""Scores each claim of anil2022 from the evaluation metrics: statistic, value, 95% bootstrap CI,
sample size and verdict. The statistics and thresholds are this project's choices (see README).

Every claim resamples models, the unit that varies between runs and between machines: claim 4 is a
per-example claim, but its examples are nested in models, so it is tested within each model (the mean
of per-model correlations) rather than on examples pooled across models, where differences between
models would decide the verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd

from implicit_repro.interventions import get_intervention
from implicit_repro.papers.anil2022.generalization import split_orders
from implicit_repro.results.collect import per_example_frame, summary_frame
from implicit_repro.results.scorecard import MIN_FOR_CORRELATION, Evidence, row
from implicit_repro.results.stats import point_biserial, spearman

PAPER = "anil2022"
IN_DISTRIBUTION = "in_distribution"
# The one definition of a model that learned its task, used by claim 4, its items and the README's
# training-outcome table: in-distribution accuracy at the training budget of iterations (what the
# model was trained to do) at least this.
LEARNED_ACCURACY = 0.9
MODEL = ["task", "intervention", "gradient", "seed"]
MIN_PER_CLASS = 3  # a model's own AA-correctness correlation needs this many correct and wrong examples


def scorecard(records: list[dict]) -> list[dict]:
    """Claims 1-4 per task, each on the task's hardest evaluated split."""
    summary = summary_frame(records)
    if summary.empty:
        return []
    ok = summary[summary["status"] == "ok"]
    examples = per_example_frame(records)
    rows = []
    for task, order in split_orders(records).items():
        by_task = ok[ok["task"] == task]
        if len(order) < 2 or by_task.empty:
            why = "no harder split was evaluated" if len(order) < 2 else "no converged model (every run diverged)"
            rows += [row(PAPER, c, task, why, float("nan"), "inconclusive", 0, part=part)
                     for c, part in ((1, ""), (2, ""), (3, "promote"), (3, "penalize"), (4, ""))]
            continue
        hardest = order[-1]
        hard = by_task[by_task["split"] == hardest]
        rows += [
            claim1(task, hard, hardest),
            claim2(task, hard, hardest),
            *claim3(task, hard, hardest),
            claim4(task, by_task, examples, hardest),
        ]
    return rows


def model_names(models: pd.DataFrame) -> tuple[str, ...]:
    """How the fragility note names a model: its intervention (and gradient, if not unrolled) and seed."""
    return tuple(f"{m.intervention}{'' if m.gradient == 'unrolled' else '/' + m.gradient} seed {m.seed}"
                 for m in models.itertuples())


def claim1(task: str, hard: pd.DataFrame, split: str) -> dict:
    gain = (hard["acc_at_max_iters"] - hard["acc_at_train_iters"]).to_numpy()
    return row(PAPER, 1, task, f"mean over models of accuracy gain on {split} from the training budget to the "
                               "largest test-time budget", float(np.mean(gain)),
               Evidence((gain,), np.mean, names=(model_names(hard),)), len(gain))


def claim2(task: str, hard: pd.DataFrame, split: str) -> dict:
    pairs = hard[["aa", "acc_at_max_iters"]].to_numpy()
    stat = lambda p: spearman(p[:, 0], p[:, 1])  # noqa: E731
    return row(PAPER, 2, task, f"Spearman correlation across models of AA and accuracy on {split} (largest "
                               f"budget; a verdict from {MIN_FOR_CORRELATION} models)",
               stat(pairs), Evidence((pairs,), stat, minimum=MIN_FOR_CORRELATION, names=(model_names(hard),)),
               len(pairs))


def claim3(task: str, hard: pd.DataFrame, split: str) -> list[dict]:
    effect = hard["intervention"].map(lambda i: get_intervention(i).effect)
    base = hard.loc[effect == "baseline", "acc_at_max_iters"].to_numpy()
    rows = []
    diff = lambda a, b: float(np.mean(a) - np.mean(b))  # noqa: E731
    for kind, sign in (("promote", 1), ("penalize", -1)):
        members = hard[effect == f"{kind}s"]
        group = members["acc_at_max_iters"].to_numpy()
        text = (f"mean accuracy on {split} (largest budget) of interventions that {kind} path independence minus "
                f"the zero-init baseline ({'> 0' if sign > 0 else '< 0'} replicates)")
        if len(group) == 0 or len(base) == 0:
            missing = f"no model trained with an intervention that {kind}s path independence" if len(group) == 0 \
                else "no zero-init baseline model"
            rows.append(row(PAPER, 3, task, f"{text}: cannot be scored, {missing} at this scale", float("nan"),
                            "inconclusive", 0, part=kind))
            continue
        names = (model_names(members), model_names(hard[effect == "baseline"]))
        rows.append(row(PAPER, 3, task, text, diff(group, base),
                        Evidence((group, base), diff, expected_sign=sign, names=names), len(group) + len(base),
                        part=kind))
    return rows


def learned_models(by_task: pd.DataFrame) -> pd.DataFrame:
    """The models (``MODEL`` columns) that learned their task: converged, and in-distribution
    accuracy at the training budget at least LEARNED_ACCURACY. ``by_task``: a summary frame."""
    learned = by_task[(by_task["status"] == "ok") & (by_task["split"] == IN_DISTRIBUTION)
                      & (by_task["acc_at_train_iters"] >= LEARNED_ACCURACY)]
    return learned[MODEL].drop_duplicates()


def learned_model_examples(by_task: pd.DataFrame, examples: pd.DataFrame, split: str) -> pd.DataFrame:
    """The per-example rows (AA, correct) of ``split`` from the models that learned their task."""
    keep = examples.merge(learned_models(by_task), on=MODEL)
    return keep[keep["split"] == split]


def per_model_correlations(examples: pd.DataFrame) -> pd.DataFrame:
    """Per model: correct and wrong example counts and the point-biserial correlation of per-example
    AA with correctness (NaN below MIN_PER_CLASS of either)."""
    rows = []
    for key, mine in examples.groupby(MODEL, sort=True):
        pairs = mine[["aa", "correct"]].to_numpy(dtype=float)
        n_right = int(pairs[:, 1].sum())
        n_wrong = len(pairs) - n_right
        r = point_biserial(pairs) if min(n_right, n_wrong) >= MIN_PER_CLASS else float("nan")
        rows.append({**dict(zip(MODEL, key)), "n_correct": n_right, "n_wrong": n_wrong, "r": r})
    return pd.DataFrame(rows, columns=[*MODEL, "n_correct", "n_wrong", "r"])


def within_model_correlation(examples: pd.DataFrame) -> tuple[float, Evidence, int, int]:
    """Claim 4's statistic on the examples of learned models: the mean over models of each model's
    own correlation, its evidence (models resampled) and the numbers of models used and learned."""
    per_model = per_model_correlations(examples)
    used = per_model.dropna(subset=["r"])
    r = used["r"].to_numpy()
    value = float(np.mean(r)) if len(r) else float("nan")
    return value, Evidence((r,), np.mean, names=(model_names(used),)), len(r), len(per_model)


def claim4(task: str, by_task: pd.DataFrame, examples: pd.DataFrame, split: str) -> dict:
    value, judged, used, learned = within_model_correlation(learned_model_examples(by_task, examples, split))
    return row(PAPER, 4, task, f"mean over models of the within-model point-biserial correlation of per-example AA "
                               f"and correctness on {split} (models resampled); models that learned the task "
                               f"(in-distribution accuracy at the training budget >= {LEARNED_ACCURACY}) with at "
                               f"least {MIN_PER_CLASS} correct and {MIN_PER_CLASS} wrong examples there: {used} of "
                               f"{learned}", value, judged, used)


def training_outcome(records: list[dict]) -> pd.DataFrame:
    """Per task: how many models trained, diverged, and learned the task (``learned_models``).

    The scorecard tests the claims on whatever models the run produced; a reader needs to see
    next to it whether those models solved the task they were trained on."""
    frame = summary_frame(records)
    rows = []
    for task, jobs in frame.groupby("task", sort=True):
        per_job = jobs.drop_duplicates(["intervention", "gradient", "seed"])
        acc = jobs.loc[jobs["split"] == IN_DISTRIBUTION, "acc_at_train_iters"]
        rows.append({"task": task, "models": len(per_job), "diverged": int((per_job["status"] != "ok").sum()),
                     "median": acc.median(), "min": acc.min(), "max": acc.max(),
                     "learned": len(learned_models(jobs))})
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
             f"| task | models | diverged | median | min | max | learned (≥ {LEARNED_ACCURACY:g}) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.task} | {r.models} | {r.diverged} | {_fmt(r.median)} | {_fmt(r.min)} | {_fmt(r.max)} | "
              f"{r.learned} of {r.models - r.diverged} |" for r in outcome.itertuples()]
    return lines


def _fmt(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3f}"
