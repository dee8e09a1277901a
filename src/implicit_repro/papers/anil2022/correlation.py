"""Path independence vs accuracy in anil2022: across models (fig_aa_vs_accuracy,
table_aa_accuracy_correlation) and across examples (fig_per_example_aa, table_per_example_aa)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from implicit_repro.papers.anil2022.generalization import PAPER, hardest_splits, split_orders
from implicit_repro.results.collect import per_example_frame, summary_frame
from implicit_repro.results.output import save_figure, save_message_figure, unit_axis, write_table
from implicit_repro.results.reported import attach_reported
from implicit_repro.papers.anil2022.claims import (ELIGIBLE, MIN_PER_CLASS, eligible_model_examples,
                                                  within_model_correlation)
from implicit_repro.results.stats import bootstrap_ci, spearman

# Test-time depths at which accuracy is read: multiples of the training budget, then the largest.
DEPTH_FACTORS = {"1x train": 1, "2x train": 2, "4x train": 4}


def depths(train_iters: int, max_iters: int) -> dict[int, str]:
    """Depth (iterations) -> label; depths clipped to ``max_iters`` share one entry ("4x train = max")."""
    labelled: dict[int, list[str]] = {}
    for label, factor in DEPTH_FACTORS.items():
        labelled.setdefault(min(factor * train_iters, max_iters), []).append(label)
    labelled.setdefault(max_iters, []).append("max")
    return {d: " = ".join(labels) for d, labels in sorted(labelled.items())}


MARKERS = ("o", "s", "^", "D", "v", "P")


# --- across models -----------------------------------------------------------------------------

def depth_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (converged model, depth): its AA and its accuracy at that depth, hardest split."""
    rows = []
    for r in records:
        if r["status"] != "ok":
            continue
        split = r["split_order"][-1]
        s = r["splits"][split]
        for depth, label in depths(r["train_iters"], r["max_iters"]).items():
            rows.append({"task": r["task"], "intervention": r["intervention"], "seed": r["seed"], "split": split,
                         "depth": depth, "depth_label": label, "aa": s["aa"],
                         "accuracy": s["accuracy"][min(depth, len(s["accuracy"])) - 1]})
    return pd.DataFrame(rows, columns=["task", "intervention", "seed", "split", "depth", "depth_label", "aa",
                                       "accuracy"])


def _spearman_pairs(pairs: np.ndarray) -> float:
    return spearman(pairs[:, 0], pairs[:, 1])


def table_aa_accuracy_correlation(records: list[dict], reported: list[dict], scale: str, stem: str) -> pd.DataFrame:
    values = depth_frame(records)
    rows = []
    for (task, split, depth, label), group in values.groupby(["task", "split", "depth", "depth_label"], sort=True):
        pairs = group[["aa", "accuracy"]].to_numpy(dtype=float)
        pairs = pairs[np.isfinite(pairs).all(axis=1)]
        low, high = bootstrap_ci((pairs,), _spearman_pairs) if len(pairs) else (np.nan, np.nan)
        rows.append({"task": task, "split": split, "depth": depth, "depth_label": label, "n_models": len(pairs),
                     "mean_accuracy": float(np.mean(pairs[:, 1])) if len(pairs) else np.nan,
                     "spearman": _spearman_pairs(pairs) if len(pairs) else np.nan, "ci_low": low, "ci_high": high})
    columns = ["task", "split", "depth", "depth_label", "n_models", "mean_accuracy", "spearman", "ci_low", "ci_high"]
    frame = pd.DataFrame(rows, columns=columns)
    frame = _with_empty_tasks(frame, records)
    frame.insert(0, "paper", PAPER)
    frame = attach_reported(frame, reported, keys=["task", "split", "depth"])
    frame["scale"] = scale
    display = frame.assign(
        rho=frame["spearman"].map(_fmt),
        ci=[f"[{_fmt(lo)}, {_fmt(hi)}]" for lo, hi in zip(frame["ci_low"], frame["ci_high"])],
    )[["task", "split", "depth", "depth_label", "n_models", "mean_accuracy", "rho", "ci"]]
    display = display.rename(columns={"depth": "iterations", "depth_label": "depth", "n_models": "n",
                                      "mean_accuracy": "mean acc", "rho": "Spearman rho", "ci": "95% CI"})
    write_table(frame, display, stem, _correlation_caption(scale))
    return frame


def _with_empty_tasks(frame: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """A row (n_models 0) for each task where every run diverged, so the task is not silently missing."""
    missing = sorted(set(split_orders(records)) - set(frame["task"]))
    extra = pd.DataFrame([{"task": t, "split": hardest_splits(records).get(t), "n_models": 0} for t in missing])
    return pd.concat([frame, extra], ignore_index=True) if missing else frame


def _fmt(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.2f}"


def _correlation_caption(scale: str) -> str:
    return (
        f"anil2022: Spearman correlation across trained models (interventions x seeds, diverged runs left out) "
        f"of AA and accuracy on each task's hardest split, by the test-time depth at which accuracy is read "
        f"(scale: {scale}). AA is measured once (Algorithm 1, eval.aa_iters iterations); only the depth of the "
        f"accuracy changes. Depths (our choice): 1x, 2x and 4x the training budget and the largest test-time "
        f"budget (max), clipped to eval.max_iters; depths that coincide share a row. 95% CI: percentile "
        f"bootstrap over models; n/a where the correlation is undefined (fewer than 3 models, or no spread in "
        f"AA or accuracy). The paper reports no correlation "
        f"value (reported: unknown); it says the correlation is strong only at large enough depth."
    )


def fig_aa_vs_accuracy(records: list[dict], scale: str, stem: str) -> pd.DataFrame:
    values = depth_frame(records)
    if values.empty:
        save_message_figure(stem, "no converged run to plot: every run diverged")
        return values
    tasks = sorted(values["task"].unique())
    interventions = sorted(values["intervention"].unique())
    n_cols = int(values.groupby("task")["depth"].nunique().max())
    fig, axes = plt.subplots(len(tasks), n_cols, figsize=(3.2 * n_cols, 3.0 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        by_task = values[values["task"] == task]
        task_depths = sorted(by_task["depth"].unique())
        for col, ax in enumerate(axes[row]):
            if col >= len(task_depths):
                ax.set_axis_off()
                continue
            _scatter_panel(ax, by_task[by_task["depth"] == task_depths[col]], interventions)
            if col == 0:
                ax.set_ylabel(f"{task} ({by_task['split'].iloc[0]})\naccuracy", fontsize=8)
    axes[0][0].legend(fontsize=7, title="intervention", title_fontsize=7)
    fig.suptitle(f"AA vs accuracy on the hardest split across models; accuracy read at growing test-time depth "
                 f"(depths: our choice; scale {scale})", fontsize=9)
    fig.tight_layout()
    save_figure(fig, stem)
    return values


def _scatter_panel(ax, at: pd.DataFrame, interventions: list[str]) -> None:
    for i, name in enumerate(interventions):
        mine = at[at["intervention"] == name]
        # open markers of different shapes: models with the same numbers stay visible
        ax.scatter(mine["aa"], mine["accuracy"], s=30, marker=MARKERS[i % len(MARKERS)], facecolors="none",
                   edgecolors=f"C{i}", linewidths=1.3, label=name)
    rho = spearman(at["aa"].to_numpy(dtype=float), at["accuracy"].to_numpy(dtype=float))
    ax.set_title(f"{at['depth_label'].iloc[0]} ({at['depth'].iloc[0]} it.)\nSpearman rho = {_fmt(rho)}, "
                 f"n = {len(at)}", fontsize=8)
    ax.set_xlabel("AA", fontsize=8)
    unit_axis(ax, "x", at["aa"])
    unit_axis(ax, "y", at["accuracy"])
    ax.tick_params(labelsize=7)


# --- across examples ---------------------------------------------------------------------------

def eligible_examples(records: list[dict]) -> pd.DataFrame:
    """Per-example AA and correctness on each task's hardest split, from the models that learned
    their task and reached equilibrium (the scorecard's claim 4 selection)."""
    summary = summary_frame(records)
    examples = per_example_frame(records)
    if summary.empty or "split" not in summary or examples.empty:
        return examples.iloc[0:0]
    ok = summary[summary["status"] == "ok"]
    parts = [eligible_model_examples(ok[ok["task"] == task], examples, split)
             for task, split in hardest_splits(records).items()]
    return pd.concat(parts, ignore_index=True) if parts else examples.iloc[0:0]


def table_per_example_aa(records: list[dict], reported: list[dict], scale: str, stem: str) -> pd.DataFrame:
    examples = eligible_examples(records)
    rows = []
    for task, split in sorted(hardest_splits(records).items()):
        mine = examples[examples["task"] == task]
        correct = mine["correct"].to_numpy(dtype=bool)
        aa = mine["aa"].to_numpy(dtype=float)
        value, evidence, used, eligible = within_model_correlation(mine)
        low, high = evidence.ci() if used >= 2 else (np.nan, np.nan)
        rows.append({
            "task": task, "split": split,
            "n_models": sum(1 for r in records if r["task"] == task and r["status"] == "ok"),
            "n_eligible_models": eligible, "n_models_used": used,
            "n_correct": int(correct.sum()), "n_wrong": int((~correct).sum()),
            "mean_aa_correct": float(aa[correct].mean()) if correct.any() else np.nan,
            "mean_aa_wrong": float(aa[~correct].mean()) if (~correct).any() else np.nan,
            "within_model_r": value, "ci_low": low, "ci_high": high,
        })
    frame = pd.DataFrame(rows, columns=["task", "split", "n_models", "n_eligible_models", "n_models_used", "n_correct",
                                        "n_wrong", "mean_aa_correct", "mean_aa_wrong", "within_model_r", "ci_low",
                                        "ci_high"])
    frame.insert(0, "paper", PAPER)
    frame = attach_reported(frame, reported, keys=["task", "split"])
    frame["scale"] = scale
    display = frame[["task", "split", "n_models", "n_eligible_models", "n_models_used", "n_correct", "n_wrong"]].assign(
        mean_aa_correct=frame["mean_aa_correct"].map(_fmt3), mean_aa_wrong=frame["mean_aa_wrong"].map(_fmt3),
        r=frame["within_model_r"].map(_fmt),
        ci=[f"[{_fmt(lo)}, {_fmt(hi)}]" for lo, hi in zip(frame["ci_low"], frame["ci_high"])])
    display = display.rename(columns={"n_eligible_models": "eligible models", "n_models_used": "models used",
                                      "mean_aa_correct": "mean AA correct", "mean_aa_wrong": "mean AA wrong",
                                      "r": "within-model r", "ci": "95% CI"})
    write_table(frame, display, stem, _per_example_caption(scale))
    return frame


def _fmt3(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.3f}"


def _per_example_caption(scale: str) -> str:
    return (
        f"anil2022: per-example AA vs correctness on each task's hardest split, from the {ELIGIBLE} "
        f"(scale: {scale}). "
        f"Per-example AA = cos(state from zero init, state from another example's state), Algorithm 1; "
        f"correct = the task's rule (exact match; MSE below the threshold for matrix inversion and edge copy) "
        f"after eval.aa_iters iterations from zero init. Within-model r: each model's point-biserial correlation "
        f"of AA with correctness (models with at least {MIN_PER_CLASS} correct and {MIN_PER_CLASS} wrong "
        f"examples), averaged over models; 95% CI: percentile bootstrap over models, as in the scorecard's claim "
        f"4, which gives the verdict against the claim's smallest effect of interest. The mean AA columns pool the examples and are descriptive only. The paper reports no number for "
        f"this item (reported: unknown)."
    )


def fig_per_example_aa(records: list[dict], scale: str, stem: str) -> pd.DataFrame:
    examples = eligible_examples(records)
    hardest = hardest_splits(records)
    if not hardest:
        save_message_figure(stem, "no evaluated model to plot")
        return examples
    tasks = sorted(hardest)
    n_cols = min(3, len(tasks))
    n_rows = math.ceil(len(tasks) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols, 3.2 * n_rows), squeeze=False)
    rng = np.random.default_rng(0)  # fixed jitter: the same metrics give the same figure
    for k, ax in enumerate(axes.flat):
        if k >= len(tasks):
            ax.set_axis_off()
            continue
        task = tasks[k]
        mine = examples[examples["task"] == task]
        if mine.empty:
            ax.text(0.5, 0.5, "no model learned the task\nand reached equilibrium",
                    ha="center", va="center", fontsize=8, transform=ax.transAxes)
        for x, (label, is_correct) in enumerate((("wrong", False), ("correct", True))):
            aa = mine.loc[mine["correct"] == is_correct, "aa"].to_numpy(dtype=float)
            ax.scatter(x + rng.uniform(-0.18, 0.18, len(aa)), aa, s=6, alpha=0.4,
                       color="tab:red" if not is_correct else "tab:green")
            if len(aa):
                ax.hlines(np.mean(aa), x - 0.3, x + 0.3, color="black", lw=2)
        n_right, n_wrong = int(mine["correct"].sum()), int((~mine["correct"].astype(bool)).sum())
        ax.set_xticks([0, 1], [f"wrong (n={n_wrong})", f"correct (n={n_right})"], fontsize=8)
        unit_axis(ax, "y", mine["aa"])
        ax.set_xlim(-0.6, 1.6)
        ax.set_ylabel("per-example AA", fontsize=8)
        value = within_model_correlation(mine)[0]
        ax.set_title(f"{task}: {hardest[task]}, within-model r = {_fmt(value)}\n"
                     f"({mine[['intervention', 'gradient', 'seed']].drop_duplicates().shape[0]} eligible models)",
                     fontsize=8)
    fig.suptitle(f"Per-example AA on the hardest split by correctness, models that learned the task and reached "
                 f"equilibrium (bar = mean; scale {scale})", fontsize=9)
    fig.tight_layout()
    save_figure(fig, stem)
    return examples
