"""Items of anil2022 built from evaluation metrics."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from implicit_repro.interventions import INTERVENTIONS, get_intervention
from implicit_repro.results.collect import curve_frame, summary_frame
from implicit_repro.results.output import (mean_std_text, save_figure, save_message_figure, unit_axis,
                                          write_table)
from implicit_repro.results.reported import attach_reported

PAPER = "anil2022"
METRICS = {
    "acc_at_train_iters": "accuracy at the training budget",
    "acc_at_max_iters": "accuracy at the largest test-time budget",
    "aa": "AA (Algorithm 1)",
    "aa_all_pairs": "AA (all pairs)",
}


# One colour per intervention in every panel and figure.
INTERVENTION_COLOURS = {name: f"C{i}" for i, name in enumerate(INTERVENTIONS)}


def split_orders(records: list[dict]) -> dict[str, list[str]]:
    """Each task's splits in the config's order: in-distribution first, then harder and harder."""
    return {r["task"]: r["split_order"] for r in records}


def hardest_splits(records: list[dict]) -> dict[str, str]:
    """Each task's hardest evaluated split (the last one of its split order)."""
    return {task: order[-1] for task, order in split_orders(records).items() if order}


def effect_of(intervention: str) -> str:
    return get_intervention(intervention).effect


def table_interventions(records: list[dict], reported: list[dict], scale: str, stem: str) -> pd.DataFrame:
    frame = interventions_frame(records, reported, scale)
    write_table(frame, _display(frame), stem, _caption(scale))
    return frame


def interventions_frame(records: list[dict], reported: list[dict], scale: str) -> pd.DataFrame:
    """One row per (task, intervention, split, metric): mean and std over the seeds that converged,
    with the number of models and of diverged runs (shared by table_ and fig_interventions)."""
    summary = summary_frame(records)
    if summary.empty:
        summary = pd.DataFrame(columns=["task", "intervention", "seed", "status", "split", *METRICS])
    keys = ["task", "intervention", "split", "metric"]
    counts = (
        summary.drop_duplicates(["task", "intervention", "seed"])
        .groupby(["task", "intervention"])["status"]
        .agg(n_models="size", n_diverged=lambda s: int((s != "ok").sum()))
        .reset_index()
    )
    # Every (task, intervention) x split x metric cell, so runs that all diverged still show up.
    splits = pd.DataFrame(
        [(task, split, rank) for task, order in split_orders(records).items() for rank, split in enumerate(order)],
        columns=["task", "split", "split_rank"],
    )
    grid = counts.merge(splits, on="task").merge(pd.DataFrame({"metric": list(METRICS)}), how="cross")
    ok = summary[summary["status"] == "ok"].reindex(columns=["task", "intervention", "seed", "split", *METRICS])
    values = (
        ok.melt(id_vars=["task", "intervention", "seed", "split"], value_vars=list(METRICS), var_name="metric")
        .groupby(keys)["value"]
        .agg(reproduced="mean", reproduced_std="std", n_evaluated="count")
        .reset_index()
    )
    frame = grid.merge(values, on=keys, how="left").fillna({"n_evaluated": 0})
    frame.insert(0, "paper", PAPER)
    frame.insert(3, "effect", frame["intervention"].map(effect_of))
    frame = attach_reported(frame, reported, keys=keys)
    frame["scale"] = scale
    return frame.sort_values(["task", "intervention", "split_rank"], kind="stable").drop(columns="split_rank")


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, intervention, split), one column per metric: "mean ± std"."""
    cell = frame.assign(text=[mean_std_text(m, s) for m, s in zip(frame["reproduced"], frame["reproduced_std"])])
    short = {"acc_at_train_iters": "acc@train", "acc_at_max_iters": "acc@max", "aa": "AA",
             "aa_all_pairs": "AA pairs"}
    rows = ["task", "intervention", "effect", "n_models", "n_diverged", "split"]
    wide = cell.pivot_table(index=rows, columns="metric", values="text", aggfunc="first", sort=False)
    wide = wide[[m for m in short if m in wide.columns]].rename(columns=short)
    return wide.reset_index()


def _caption(scale: str) -> str:
    return (
        f"anil2022 interventions: accuracy and asymptotic alignment per split, mean ± std over seeds "
        f"(scale: {scale}). The paper reports no numbers for this item (reported: unknown)."
    )


def fig_upward_generalization(records: list[dict], scale: str, stem: str) -> pd.DataFrame:
    curves = curve_frame(records)
    tasks, orders = sorted(curves["task"].unique()), split_orders(records)
    n_cols = max((len(orders[t]) for t in tasks), default=1)
    if curves.empty:
        save_message_figure(stem, "no converged run to plot: every run diverged")
        return curves
    fig, axes = plt.subplots(len(tasks), n_cols, figsize=(4 * n_cols, 3.2 * len(tasks)),
                             squeeze=False, sharey=True)
    train_iters = {r["task"]: r["train_iters"] for r in records}
    for row, task in enumerate(tasks):
        for col in range(n_cols):
            ax = axes[row][col]
            if col >= len(orders[task]):
                ax.set_axis_off()
                continue
            split = orders[task][col]
            sub = curves[(curves["task"] == task) & (curves["split"] == split)]
            for intervention, group in sub.groupby("intervention", sort=True):
                stats = group.groupby("iteration")["accuracy"].agg(["mean", "min", "max"])
                line, = ax.plot(stats.index, stats["mean"], color=INTERVENTION_COLOURS[intervention],
                                label=f"{intervention} (n={group['seed'].nunique()})")
                ax.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.15)
            ax.axvline(train_iters[task], color="grey", ls="--", lw=0.8)
            ax.set_title(f"{task}: {split}", fontsize=9)
            ax.set_xlabel("test-time iterations")
            if col == 0:
                ax.set_ylabel("accuracy (exact match)")
                ax.legend(fontsize=7)  # per row: tasks may run different interventions
    fig.suptitle(f"Upward generalization (mean, band = min–max over seeds; dashed = training budget; "
                 f"scale {scale})", fontsize=9)
    fig.tight_layout()
    save_figure(fig, stem)
    return curves


EFFECT_COLOURS = {"baseline": "tab:grey", "promotes": "tab:green", "penalizes": "tab:red"}
FIG_INTERVENTION_METRICS = {"aa": "AA (Algorithm 1)", "acc_at_max_iters": "accuracy at the largest budget"}


def fig_interventions(records: list[dict], scale: str, stem: str) -> pd.DataFrame:
    """Per task, AA and accuracy on the hardest split per intervention: mean ± std over seeds (the
    numbers of table_interventions) with a dot per seed."""
    hardest = hardest_splits(records)
    frame = interventions_frame(records, [], scale)
    on_hardest = frame["split"] == frame["task"].map(hardest)
    frame = frame[on_hardest & frame["metric"].isin(list(FIG_INTERVENTION_METRICS))]
    if frame.empty:
        save_message_figure(stem, "no evaluated model to plot")
        return frame
    summary = summary_frame(records).reindex(columns=["task", "intervention", "seed", "status", "split",
                                                      *FIG_INTERVENTION_METRICS])
    seeds = summary[(summary["status"] == "ok") & (summary["split"] == summary["task"].map(hardest))]
    tasks = sorted(frame["task"].unique())
    fig, axes = plt.subplots(len(tasks), 2, figsize=(9, 2.6 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        for col, (metric, label) in enumerate(FIG_INTERVENTION_METRICS.items()):
            cells = frame[(frame["task"] == task) & (frame["metric"] == metric)].reset_index(drop=True)
            _intervention_panel(axes[row][col], cells, seeds[seeds["task"] == task], metric)
            axes[row][col].set_title(f"{task}: {label} on {hardest[task]}", fontsize=9)
    fig.suptitle(f"Interventions on each task's hardest split (open circle: mean ± std over seeds; dots: single "
                 f"seeds; diverged runs left out; scale {scale})", fontsize=9)
    fig.tight_layout()
    save_figure(fig, stem)
    return frame


def _intervention_panel(ax, cells: pd.DataFrame, seeds: pd.DataFrame, metric: str) -> None:
    for x, cell in cells.iterrows():
        colour = EFFECT_COLOURS.get(cell["effect"], "tab:blue")
        std = 0 if pd.isna(cell["reproduced_std"]) else cell["reproduced_std"]
        ax.errorbar(x, cell["reproduced"], yerr=std, fmt="o", ms=9, color=colour, capsize=4, mfc="white", mew=2)
        mine = seeds.loc[seeds["intervention"] == cell["intervention"], metric].to_numpy(dtype=float)
        ax.scatter(x + np.linspace(-0.15, 0.15, len(mine)) * (len(mine) > 1), mine, s=12, color="black", zorder=3)
    n_ok = (cells["n_models"] - cells["n_diverged"]).astype(int)
    # Three lines per label (name, effect, converged count) so four or five interventions still fit.
    ax.set_xticks(range(len(cells)), [f"{c.intervention}\n{c.effect}\n{ok}/{int(c.n_models)} converged"
                                      for c, ok in zip(cells.itertuples(), n_ok)], fontsize=6)
    ax.set_xlim(-0.6, len(cells) - 0.4)
    unit_axis(ax, "y", [*cells["reproduced"], *seeds[metric]])
    ax.grid(axis="y", alpha=0.3)
