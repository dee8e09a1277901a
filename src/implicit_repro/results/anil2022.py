"""Items of anil2022 built from evaluation metrics."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from implicit_repro.interventions import get_intervention
from implicit_repro.results.collect import curve_frame, summary_frame
from implicit_repro.results.output import save_figure, write_table
from implicit_repro.results.reported import attach_reported

PAPER = "anil2022"
METRICS = {
    "acc_at_train_iters": "accuracy at the training budget",
    "acc_at_max_iters": "accuracy at the largest test-time budget",
    "aa": "AA (Algorithm 1)",
    "aa_all_pairs": "AA (all pairs)",
}


def split_orders(records: list[dict]) -> dict[str, list[str]]:
    """Each task's splits in the config's order: in-distribution first, then harder and harder."""
    return {r["task"]: r["split_order"] for r in records}


def table_interventions(records: list[dict], reported: list[dict], scale: str, stem: str) -> pd.DataFrame:
    summary = summary_frame(records)
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
    frame.insert(3, "effect", frame["intervention"].map(lambda i: get_intervention(i).effect))
    frame = attach_reported(frame, reported, keys=keys)
    frame["scale"] = scale
    frame = frame.sort_values(["task", "intervention", "split_rank"], kind="stable").drop(columns="split_rank")
    write_table(frame, _display(frame), stem, _caption(scale))
    return frame


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, intervention, split), one column per metric: "mean ± std"."""
    cell = frame.assign(text=[
        "—" if pd.isna(mean) else f"{mean:.3f} ± {0 if pd.isna(std) else std:.3f}"
        for mean, std in zip(frame["reproduced"], frame["reproduced_std"])
    ])
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
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.text(0.5, 0.5, "no converged run to plot: every run diverged", ha="center", va="center")
        ax.set_axis_off()
        save_figure(fig, stem)
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
                line, = ax.plot(stats.index, stats["mean"], label=f"{intervention} (n={group['seed'].nunique()})")
                ax.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.15)
            ax.axvline(train_iters[task], color="grey", ls="--", lw=0.8)
            ax.set_title(f"{task}: {split}", fontsize=9)
            ax.set_xlabel("test-time iterations")
            if col == 0:
                ax.set_ylabel("accuracy (exact match)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Upward generalization (mean, band = min–max over seeds; dashed = training budget; "
                 f"scale {scale})", fontsize=9)
    save_figure(fig, stem)
    return curves
