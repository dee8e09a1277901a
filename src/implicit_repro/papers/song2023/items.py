"""song2023's items: one builder per item id of config/papers.yaml, registered in ``ITEMS``.

Every item reads the runs of its study (``study in record["studies"]``) from the metrics records
(one record per trained run, see ``papers/song2023/evaluate.py``). Table builders take
``(records, reported, scale, stem)`` and write <stem>.csv|.md|.tex; figure builders take
``(records, scale, stem)`` and write <stem>.png|.pdf. Only the paper's abstract is known: no table
has a number of the paper (reported: empty, provenance ``unknown``), and every design value is this
project's choice; captions and titles say so.

Shared rules: a group is a (task, variant, depth, width, density) point of the design space (plus
``match_density`` for the sparse-mask study, where a reference matched to two densities counts in
both); accuracy is the mean ± std over the group's converged
(``ok``) runs; diverged runs are counted ("diverged k/n") and never raise; time, memory and solver
statistics are the mean over every run that measured them; an empty study gives a table with a note
or a figure that says why it is empty.
"""

from __future__ import annotations

import sys

from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from implicit_repro.papers.song2023.grid import DEQ, GRADIENTS, SEQUENCE_TASK
from implicit_repro.results.output import (mean_std_text, save_figure, save_message_figure, unit_axis,
                                          write_table)
from implicit_repro.results.build import named_builder
from implicit_repro.results.reported import attach_reported

PAPER = "song2023"
VARIANTS = tuple(GRADIENTS)  # the variants in one fixed order: rows, legends and colours follow it
VARIANT_COLOURS = {v: f"C{i}" for i, v in enumerate(VARIANTS)}
MIB = 2 ** 20
BUDGET_FACTOR = 1.5  # design guidelines: cells within this factor of active parameters share a budget
GROUP = ["task", "variant", "depth", "width", "density"]
DESIGN_NOTE = ("Only the paper's abstract is known: no number of the paper is known (reported: empty, "
               "provenance unknown), and the design (variants, depths, widths, densities, solver and "
               "training settings) is this project's choice.")


# ---------------------------------------------------------------- records -> frames

RUN_COLUMNS = ["task", "run", "variant", "depth", "width", "density", "seed", "match_densities", "status",
               "params_total", "params_active", "test_accuracy", "val_accuracy", "solves_reaching_tol",
               "memory_mib", "memory_measure",
               "seconds_per_epoch", "step_seconds", "fwd_nfe", "bwd_nfe", "residual", "train_iters"]


def _num(value) -> float:
    """A JSON number as a float; null (or a missing key) as NaN."""
    return float("nan") if value is None else float(value)


def select(records: list[dict], study: str, task: str | None = None) -> list[dict]:
    """The records of the runs ``study`` asked for (on ``task`` when given), in a fixed order."""
    chosen = [r for r in records if study in (r.get("studies") or []) and (task is None or r["task"] == task)]
    return sorted(chosen, key=lambda r: (r["task"], r["run"], r["seed"]))


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run with its scalar measurements (memory in MiB, solver statistics unpacked)."""
    rows = []
    for r in records:
        solver = r.get("solver") or {}
        rows.append({
            "task": r["task"], "run": r["run"], "variant": r["variant"], "depth": int(r["depth"]),
            "width": int(r["width"]), "density": float(r["density"]), "seed": int(r["seed"]),
            "match_densities": tuple(r.get("match_densities") or ()), "status": r["status"],
            "params_total": _num(r.get("params_total")), "params_active": _num(r.get("params_active")),
            "test_accuracy": _num(r.get("test_accuracy")) if r["status"] == "ok" else float("nan"),
            "val_accuracy": _num(r.get("val_accuracy")) if r["status"] == "ok" else float("nan"),
            "solves_reaching_tol": _num(r.get("solves_reaching_tol")),
            "memory_mib": _num(r.get("memory_bytes")) / MIB, "memory_measure": r.get("memory_measure"),
            "seconds_per_epoch": _num(r.get("seconds_per_epoch")), "step_seconds": _num(r.get("step_seconds")),
            "fwd_nfe": _num(solver.get("fwd_nfe")), "bwd_nfe": _num(solver.get("bwd_nfe")),
            "residual": _num(solver.get("residual")), "train_iters": _num(r.get("train_iters")),
        })
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def matched_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with a ``match_density`` column: a dense reference matched to several densities
    appears once per density, every other run once with NaN."""
    densities = runs["match_densities"].map(lambda m: list(m) or [float("nan")])
    out = runs.assign(match_density=densities).explode("match_density", ignore_index=True)
    return out.assign(match_density=out["match_density"].astype(float))


def _variant_rank(variants: pd.Series) -> pd.Series:
    return variants.map(lambda v: VARIANTS.index(v) if v in VARIANTS else len(VARIANTS))


def sort_rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows in the fixed order: variant by ``VARIANTS``, everything else ascending (NaN first)."""
    if frame.empty:
        return frame.reset_index(drop=True)
    order = frame.assign(_variant=_variant_rank(frame["variant"])) if "variant" in frame else frame.copy()
    by = [("_variant" if k == "variant" else k) for k in keys]
    order = order.sort_values(by, kind="stable", na_position="first")
    return order.drop(columns=[c for c in ("_variant",) if c in order]).reset_index(drop=True)


def _mean(values: pd.Series) -> float:
    finite = values.dropna()
    return float(finite.mean()) if len(finite) else float("nan")


def _std(values: pd.Series) -> float:
    finite = values.dropna()
    return float(finite.std(ddof=1)) if len(finite) > 1 else float("nan")


def _count(values: pd.Series) -> float:
    """A parameter count of a group (every run of a group has the same)."""
    finite = values.dropna()
    return float(finite.median()) if len(finite) else float("nan")


SUMMARY_COLUMNS = ["n_runs", "n_ok", "n_diverged", "params_total", "params_active", "accuracy_mean",
                   "accuracy_std", "val_accuracy_mean", "solves_reaching_tol", "seconds_per_epoch", "step_seconds", "memory_mib", "memory_measure",
                   "fwd_nfe", "bwd_nfe", "residual"]


def summarise(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per group of ``keys``: run counts, accuracy mean ± std over ok runs, mean costs."""
    rows = []
    if not runs.empty:
        for key, g in runs.groupby(keys, dropna=False, sort=False):
            ok = g[g["status"] == "ok"]
            measures = sorted({m for m in g["memory_measure"] if isinstance(m, str)})
            rows.append({
                **dict(zip(keys, key)), "n_runs": len(g), "n_ok": len(ok),
                "n_diverged": int((g["status"] != "ok").sum()),
                "params_total": _count(g["params_total"]), "params_active": _count(g["params_active"]),
                "accuracy_mean": _mean(ok["test_accuracy"]), "accuracy_std": _std(ok["test_accuracy"]),
                "val_accuracy_mean": _mean(ok["val_accuracy"]), "solves_reaching_tol": _mean(ok["solves_reaching_tol"]),
                "seconds_per_epoch": _mean(g["seconds_per_epoch"]), "step_seconds": _mean(g["step_seconds"]),
                "memory_mib": _mean(g["memory_mib"]), "memory_measure": ", ".join(measures) or None,
                "fwd_nfe": _mean(g["fwd_nfe"]), "bwd_nfe": _mean(g["bwd_nfe"]), "residual": _mean(g["residual"]),
            })
    return sort_rows(pd.DataFrame(rows, columns=[*keys, *SUMMARY_COLUMNS]), keys)


def _finish(frame: pd.DataFrame, reported: list[dict], keys: list[str], scale: str) -> pd.DataFrame:
    """The contract's columns: paper first; reported, its provenance and the scale last."""
    frame = frame.copy()
    frame.insert(0, "paper", PAPER)
    frame = attach_reported(frame, reported or [], keys=keys)
    frame["scale"] = scale
    return frame


def _diverged_text(row) -> str:
    return f"{int(row['n_diverged'])}/{int(row['n_runs'])}"


def _fmt(value: float, digits: int = 3) -> str:
    return "—" if pd.isna(value) else f"{value:.{digits}g}" if abs(value) < 1e-3 else f"{value:.{digits}f}"


def _int_text(value: float) -> str:
    return "—" if pd.isna(value) else f"{int(round(value)):,}"


def _caption(what: str, scale: str, extra: str = "") -> str:
    return f"song2023 {what} (scale: {scale}). {DESIGN_NOTE}" + (f" {extra}" if extra else "")


def _write(frame: pd.DataFrame, display: pd.DataFrame, stem: str, caption: str, study: str) -> None:
    if frame.empty:
        display = pd.DataFrame({"note": [f"no run of study {study} at this scale"]})
        caption += f" No run of study {study} at this scale: the table is empty."
    write_table(frame, display, stem, caption)


# ---------------------------------------------------------------- table_wt_vs_deq

def wt_vs_deq_frame(records: list[dict], reported: list[dict], scale: str) -> pd.DataFrame:
    frame = summarise(runs_frame(select(records, "wt_vs_deq")), GROUP)
    return _finish(frame.drop(columns=["params_active", "step_seconds"]), reported, GROUP, scale)


def table_wt_vs_deq(records: list[dict], reported: list[dict], scale: str, stem: str) -> pd.DataFrame:
    frame = wt_vs_deq_frame(records, reported, scale)
    display = pd.DataFrame({
        "task": frame["task"], "variant": frame["variant"], "L": frame["depth"], "width": frame["width"],
        "params": frame["params_total"].map(_int_text),
        "accuracy": [mean_std_text(m, s) for m, s in zip(frame["accuracy_mean"], frame["accuracy_std"])],
        "validation": frame["val_accuracy_mean"].map(lambda v: _fmt(v, 3)),
        "s/epoch": frame["seconds_per_epoch"].map(lambda v: _fmt(v, 2)),
        "memory (MiB)": [f"{_fmt(m, 1)} ({k})" if isinstance(k, str) else _fmt(m, 1)
                         for m, k in zip(frame["memory_mib"], frame["memory_measure"])],
        **{label: [_fmt(v, 2 if col != "residual" else 3) if var in DEQ else "—"
                   for v, var in zip(frame[col], frame["variant"])]
           for label, col in (("fwd NFE", "fwd_nfe"), ("bwd NFE", "bwd_nfe"), ("residual", "residual"),
                              ("test solves at tol", "solves_reaching_tol"))},
        "diverged": [_diverged_text(r) for _, r in frame.iterrows()],
    })
    caption = _caption(
        "weight-tied vs DEQ variants: parameters, test accuracy (mean ± std over converged seeds), validation "
        "accuracy (the training part's held-out tail; mean), training seconds per epoch (a DEQ's unrolled warm-up "
        "epochs left out), peak training memory (MiB, with how it was measured), solver evaluations per step "
        "(forward, backward) and final relative residual of the DEQs (last epoch's mean), the fraction of test "
        "examples whose DEQ solve reached the tolerance, diverged runs out of runs", scale, "Time, memory and solver statistics: mean over every run that measured them. For the "
        "DEQs L is the solver's evaluation budget.")
    _write(frame, display, stem, caption, "wt_vs_deq")
    return frame


# ---------------------------------------------------------------- fig_training_stability

STABILITY_PANELS = (("loss", "training loss"), ("acc", "accuracy"), ("residual", "relative residual (DEQ)"),
                    ("fwd_nfe", "forward NFE (DEQ)"))


def fig_training_stability(records: list[dict], scale: str, stem: str) -> pd.DataFrame:
    chosen = select(records, "wt_vs_deq")
    if not chosen:
        save_message_figure(stem, "no run of study wt_vs_deq at this scale")
        return pd.DataFrame()
    # Per-epoch test accuracy where the training log holds it, training accuracy otherwise.
    acc_key = "test_acc" if any(e.get("test_acc") is not None for r in chosen for e in r.get("epochs") or []) \
        else "train_acc"
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    shown = []
    for r in sorted(chosen, key=lambda r: (VARIANTS.index(r["variant"]) if r["variant"] in VARIANTS
                                           else len(VARIANTS), r["task"], r["run"], r["seed"])):
        epochs = r.get("epochs") or []
        x = [e.get("epoch", i) for i, e in enumerate(epochs)]
        colour = VARIANT_COLOURS.get(r["variant"], "black")
        for ax, (key, _) in zip(axes, STABILITY_PANELS):
            if key in ("residual", "fwd_nfe") and r["variant"] not in DEQ:
                continue
            y = np.array([_num(e.get(acc_key if key == "acc" else key)) for e in epochs], dtype=float)
            if not np.isfinite(y).any():
                continue
            ax.plot(x, y, color=colour, lw=0.8, alpha=0.8)
            if r["status"] != "ok":
                last = int(np.flatnonzero(np.isfinite(y))[-1])
                ax.plot(x[last], y[last], "x", color=colour, ms=8, mew=2)
        shown.append({"variant": r["variant"], "seed": r["seed"], "status": r["status"], "epochs": len(epochs)})
    shown = pd.DataFrame(shown)
    for ax, (key, label) in zip(axes, STABILITY_PANELS):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{acc_key.replace('_acc', '')} accuracy" if key == "acc" else label)
        if key == "residual" and ax.lines:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    counts = shown.groupby("variant", sort=False)["status"].agg(lambda s: f"{int((s != 'ok').sum())}/{len(s)}")
    handles = [plt.Line2D([], [], color=VARIANT_COLOURS.get(v, "black"), label=f"{v} (diverged {counts[v]})")
               for v in counts.index]
    axes[0].legend(handles=handles, fontsize=7)
    fig.suptitle(f"song2023 training stability per epoch: one line per seed, x = diverged there (scale {scale}; "
                 "design is this project's choice)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, stem)
    return shown


# ---------------------------------------------------------------- fig_capacity_depth_width

LINESTYLES = {"wt": "-", "untied": "--"}


def fig_capacity_depth_width(records: list[dict], scale: str, stem: str) -> pd.DataFrame:
    frame = summarise(runs_frame(select(records, "capacity")), GROUP)
    plotted = frame[frame["accuracy_mean"].notna()]
    if plotted.empty:
        save_message_figure(stem, "no converged run of study capacity at this scale" if len(frame)
                            else "no run of study capacity at this scale")
        return frame
    widths = sorted(plotted["width"].unique())
    fig, ax = plt.subplots(figsize=(6, 4))
    for (task, variant, width), g in plotted.groupby(["task", "variant", "width"], sort=False):
        g = g.sort_values("depth")
        ax.errorbar(g["depth"], g["accuracy_mean"], yerr=g["accuracy_std"].fillna(0), capsize=3, marker="o",
                    ls=LINESTYLES.get(variant, ":"), color=f"C{widths.index(width)}",
                    label=f"{variant}, width {width}" + (f" ({task})" if plotted["task"].nunique() > 1 else ""))
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(plotted["depth"].unique()), [str(d) for d in sorted(plotted["depth"].unique())])
    ax.set_xlabel("depth L (applications of the block)")
    ax.set_ylabel("test accuracy")
    unit_axis(ax, "y", plotted["accuracy_mean"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"song2023 capacity: accuracy vs depth, mean ± std over seeds (WT solid, untied dashed; "
                 f"scale {scale})", fontsize=8)
    fig.tight_layout()
    save_figure(fig, stem)
    return frame


# ---------------------------------------------------------------- table_sparse_masks + fig_sparse_masks

SPARSE_KEYS = [*GROUP, "match_density"]


def sparse_label(variant: str, match_density: float) -> str:
    return variant if pd.isna(match_density) else f"{variant} (width matched to d={match_density:g})"


def sparse_frame(records: list[dict], reported: list[dict], scale: str) -> pd.DataFrame:
    frame = summarise(matched_rows(runs_frame(select(records, "sparse_masks"))), SPARSE_KEYS)
    frame = sort_rows(frame, ["task", "match_density", "variant", "density", "width", "depth"])
    frame.insert(2, "label", [sparse_label(v, m) for v, m in zip(frame["variant"], frame["match_density"])])
    keep = [*SPARSE_KEYS[:1], "label", *SPARSE_KEYS[1:], "n_runs", "n_ok", "n_diverged", "params_active",
            "params_total", "accuracy_mean", "accuracy_std"]
    return _finish(frame[keep], reported, SPARSE_KEYS, scale)


def table_sparse_masks(records: list[dict], reported: list[dict], scale: str, stem: str) -> pd.DataFrame:
    frame = sparse_frame(records, reported, scale)
    display = pd.DataFrame({
        "task": frame["task"], "variant": frame["label"], "L": frame["depth"], "width": frame["width"],
        "density": frame["density"].map(lambda d: f"{d:g}"),
        "active params": frame["params_active"].map(_int_text), "total params": frame["params_total"].map(_int_text),
        "accuracy": [mean_std_text(m, s) for m, s in zip(frame["accuracy_mean"], frame["accuracy_std"])],
        "diverged": [_diverged_text(r) for _, r in frame.iterrows()],
    })
    caption = _caption(
        "sparse masks for weight-tied nets: active parameters (used at one step), total parameters and test "
        "accuracy (mean ± std over converged seeds) per masked variant and density, the dense weight-tied net, "
        "and dense nets whose width matches the masked nets' active parameters at density d", scale)
    _write(frame, display, stem, caption, "sparse_masks")
    return frame


def fig_sparse_masks(records: list[dict], scale: str, stem: str) -> pd.DataFrame:
    frame = sparse_frame(records, [], scale)
    plotted = frame[frame["accuracy_mean"].notna()]
    if plotted.empty:
        save_message_figure(stem, "no converged run of study sparse_masks at this scale" if len(frame)
                            else "no run of study sparse_masks at this scale")
        return frame
    fig, ax = plt.subplots(figsize=(6, 4))
    masked = plotted[plotted["match_density"].isna() & (plotted["density"] < 1)]
    for variant, g in masked.groupby("variant", sort=False):
        ax.errorbar(g["density"], g["accuracy_mean"], yerr=g["accuracy_std"].fillna(0), marker="o", capsize=3,
                    color=VARIANT_COLOURS.get(variant, "black"),
                    label=f"{variant} ({'distinct' if 'distinct' in variant else 'shared'} masks)"
                    if "masked" in variant else variant)
    dense = plotted[plotted["match_density"].isna() & (plotted["density"] >= 1)]
    for _, row in dense.iterrows():
        colour = VARIANT_COLOURS.get(row["variant"], "black")
        ax.axhline(row["accuracy_mean"], color=colour, ls=":", lw=1.2,
                   label=f"dense {row['variant']} (width {row['width']})")
        if pd.notna(row["accuracy_std"]):
            ax.axhspan(row["accuracy_mean"] - row["accuracy_std"], row["accuracy_mean"] + row["accuracy_std"],
                       color=colour, alpha=0.1)
    matched = plotted[plotted["match_density"].notna()]
    for variant, g in matched.groupby("variant", sort=False):
        ax.errorbar(g["match_density"], g["accuracy_mean"], yerr=g["accuracy_std"].fillna(0), fmt="s",
                    ms=7, mfc="white", mew=1.5, capsize=3, color=VARIANT_COLOURS.get(variant, "black"),
                    label=f"{variant}, width matched to active params")
    ax.set_xlabel("density d (fraction of weights each mask keeps)")
    ax.set_ylabel("test accuracy")
    unit_axis(ax, "y", plotted["accuracy_mean"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"song2023 sparse masks: accuracy vs density, mean ± std over seeds (scale {scale})", fontsize=8)
    fig.tight_layout()
    save_figure(fig, stem)
    return frame


# ---------------------------------------------------------------- table_design_guidelines + fig_design_guidelines

def budget_bins(params: pd.Series, factor: float = BUDGET_FACTOR) -> pd.Series:
    """Budget bin per cell: in ascending order of active parameters, a bin holds the cells within
    ``factor`` of its smallest one; the next cell beyond that opens the next bin (0, 1, ...)."""
    bins, start, current = {}, None, -1
    for value in sorted(params.dropna().unique()):
        if start is None or value > factor * start:
            start, current = value, current + 1
        bins[value] = current
    return params.map(bins)


def cell_text(row) -> str:
    return f"L={int(row['depth'])}, width {int(row['width'])}, density {row['density']:g}"


def _trend(best, cells: pd.DataFrame, column: str) -> tuple[bool, bool] | None:
    """Is the bin's best cell at the top / the bottom of ``column`` in its bin? None if it does not vary."""
    if cells[column].nunique() < 2:
        return None
    return best[column] == cells[column].max(), best[column] == cells[column].min()


TRENDS = (("depth", "deepest", "shallowest", "more depth", "less depth"),
          ("width", "widest", "narrowest", "more width", "less width"),
          ("density", "densest", "sparsest", "denser masks", "sparser masks"))


def guideline_sentence(cells: pd.DataFrame) -> str:
    """The guideline the grid supports, computed from its cells (columns depth, width, density,
    params_active, accuracy_mean, budget_bin): the best cell overall, and per active-parameter budget
    which end of depth, width and density its best cell sits at."""
    scored = cells[cells["accuracy_mean"].notna()]
    if scored.empty:
        return "No cell of the grid has a converged run: the grid supports no guideline."
    order = ["accuracy_mean", "params_active", "depth", "width", "density"]
    rank = lambda frame: frame.sort_values(order, ascending=[False, *[True] * 4], kind="stable")  # noqa: E731
    best = rank(scored).iloc[0]
    text = (f"Best cell overall: {cell_text(best)} (accuracy {best['accuracy_mean']:.3f}, "
            f"{int(best['params_active']):,} active parameters).")
    tallies = {column: [0, 0, 0] for column, *_ in TRENDS}  # (top, bottom, bins where it varies)
    per_bin = []
    for _, group in scored.groupby("budget_bin", sort=True):
        if len(group) < 2:
            continue
        top = rank(group).iloc[0]
        per_bin.append(f"~{int(group['params_active'].median()):,} active params: {cell_text(top)} "
                       f"({top['accuracy_mean']:.3f}) best of {len(group)}")
        for column, *_ in TRENDS:
            ends = _trend(top, group, column)
            if ends is not None:
                tallies[column][0] += ends[0]
                tallies[column][1] += ends[1]
                tallies[column][2] += 1
    if not per_bin:
        return text + (f" No two cells share an active-parameter budget (within a factor {BUDGET_FACTOR:g}), so the "
                       "grid supports no matched-budget guideline.")
    found, summary = [], []
    for column, top_word, bottom_word, more, less in TRENDS:
        top, bottom, varies = tallies[column]
        if varies == 0:
            continue
        found.append(f"the {top_word} in {top}/{varies} and the {bottom_word} in {bottom}/{varies}")
        summary.append(more if top > varies / 2 else less if bottom > varies / 2 else f"no clear {column} trend")
    text += (f" At a matched active-parameter budget (cells within a factor {BUDGET_FACTOR:g}; {len(per_bin)} "
             f"budgets with two or more converged cells) the best cell is " + "; ".join(found) + " of its budget"
             + (f", so at a fixed budget this grid favours {', '.join(summary)}" if summary else "")
             + ". Per budget: " + "; ".join(per_bin) + ". Cell means over few seeds: differences smaller than "
             "the seed std are not resolved (claim 4 tests whether the cells differ beyond seed noise).")
    return text


def design_frame(records: list[dict], reported: list[dict], scale: str) -> pd.DataFrame:
    frame = summarise(runs_frame(select(records, "design_guidelines")), GROUP)
    frame = frame[[*GROUP, "n_runs", "n_ok", "n_diverged", "params_active", "params_total", "accuracy_mean",
                   "accuracy_std"]].copy()
    frame["budget_bin"] = budget_bins(frame["params_active"])
    best = frame[frame["accuracy_mean"].notna()].groupby("budget_bin")["accuracy_mean"].transform("max")
    frame["best_in_budget"] = (frame["accuracy_mean"] == best.reindex(frame.index)) & frame["accuracy_mean"].notna()
    frame["guideline"] = guideline_sentence(frame) if len(frame) else ""
    frame = sort_rows(frame, ["task", "params_active", "depth", "width", "density", "variant"])
    return _finish(frame, reported, GROUP, scale)


def table_design_guidelines(records: list[dict], reported: list[dict], scale: str, stem: str) -> pd.DataFrame:
    frame = design_frame(records, reported, scale)
    display = pd.DataFrame({
        "task": frame["task"], "variant": frame["variant"], "L": frame["depth"], "width": frame["width"],
        "density": frame["density"].map(lambda d: f"{d:g}"), "active params": frame["params_active"].map(_int_text),
        "budget": frame["budget_bin"], "accuracy": [mean_std_text(m, s) for m, s in
                                                    zip(frame["accuracy_mean"], frame["accuracy_std"])],
        "n": frame["n_ok"].astype(int) if len(frame) else [], "best of budget": frame["best_in_budget"].map(
            lambda b: "✓" if b else ""),
        "diverged": [_diverged_text(r) for _, r in frame.iterrows()],
    })
    caption = _caption(
        "design guidelines: every (depth, width, density) cell of the grid (weight-tied, distinct masks where "
        "density < 1) with its active parameters, test accuracy (mean ± std over n converged seeds) and its "
        f"active-parameter budget (cells within a factor {BUDGET_FACTOR:g} share one)", scale,
        f"Guideline computed from these numbers: {frame['guideline'].iloc[0]}" if len(frame) else "")
    _write(frame, display, stem, caption, "design_guidelines")
    return frame


DEPTH_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def fig_design_guidelines(records: list[dict], scale: str, stem: str) -> pd.DataFrame:
    frame = design_frame(records, [], scale)
    plotted = frame[frame["accuracy_mean"].notna()]
    if plotted.empty:
        save_message_figure(stem, "no converged run of study design_guidelines at this scale" if len(frame)
                            else "no run of study design_guidelines at this scale")
        return frame
    depths, densities = sorted(plotted["depth"].unique()), sorted(plotted["density"].unique())
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for _, row in plotted.iterrows():
        ax.errorbar(row["params_active"], row["accuracy_mean"], yerr=0 if pd.isna(row["accuracy_std"])
                    else row["accuracy_std"], fmt=DEPTH_MARKERS[depths.index(row["depth"]) % len(DEPTH_MARKERS)],
                    color=f"C{densities.index(row['density'])}", ms=7, capsize=3,
                    mfc="white" if not row["best_in_budget"] else None)
        ax.annotate(f"w{int(row['width'])}", (row["params_active"], row["accuracy_mean"]), fontsize=6,
                    xytext=(4, 4), textcoords="offset points")
    handles = [plt.Line2D([], [], ls="", marker=DEPTH_MARKERS[i % len(DEPTH_MARKERS)], color="grey", label=f"L={d}")
               for i, d in enumerate(depths)]
    handles += [plt.Line2D([], [], ls="", marker="o", color=f"C{i}", label=f"density {d:g}")
                for i, d in enumerate(densities)]
    ax.legend(handles=handles, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("active parameters (log)")
    ax.set_ylabel("test accuracy")
    unit_axis(ax, "y", plotted["accuracy_mean"])
    ax.grid(alpha=0.3)
    ax.set_title(f"song2023 design grid: accuracy vs active parameters, mean ± std over seeds; filled = best of "
                 f"its budget, label = width (scale {scale})", fontsize=8)
    fig.tight_layout()
    save_figure(fig, stem)
    return frame


# ---------------------------------------------------------------- table_other_paradigm

OTHER_KEYS = [*GROUP, "split"]


def split_order(records: list[dict]) -> list[str]:
    """The splits of the study, easiest first (the longest order any record gives)."""
    return max((list(r.get("split_order") or []) for r in records), key=len, default=[])


def curve_rows(records: list[dict]) -> pd.DataFrame:
    """One row per (run, split): accuracy at the training budget (``curve[train_iters - 1]``), at the
    largest test-time budget (``curve[-1]``) and the gain between them; diverged runs get no value."""
    rows = []
    for r in records:
        for split in r.get("split_order") or []:
            curve = (r.get("curves") or {}).get(split) if r["status"] == "ok" else None
            at_train = at_max = float("nan")
            if curve:
                at_max = _num(curve[-1])
                if 1 <= r["train_iters"] <= len(curve):
                    at_train = _num(curve[r["train_iters"] - 1])
            rows.append({"task": r["task"], "variant": r["variant"], "depth": int(r["depth"]),
                         "width": int(r["width"]), "density": float(r["density"]), "seed": r["seed"],
                         "status": r["status"], "split": split, "train_iters": r["train_iters"],
                         "max_iters": len(curve) if curve else np.nan, "acc_train": at_train, "acc_max": at_max,
                         "gain": at_max - at_train})
    return pd.DataFrame(rows, columns=["task", "variant", "depth", "width", "density", "seed", "status", "split",
                                       "train_iters", "max_iters", "acc_train", "acc_max", "gain"])


def other_paradigm_frame(records: list[dict], reported: list[dict], scale: str) -> pd.DataFrame:
    chosen = select(records, "other_paradigm", SEQUENCE_TASK)
    curves, order = curve_rows(chosen), split_order(chosen)
    rows = []
    for key, g in curves.groupby(OTHER_KEYS, sort=False):
        ok = g[g["status"] == "ok"]
        rows.append({**dict(zip(OTHER_KEYS, key)), "split_rank": order.index(key[-1]) if key[-1] in order else -1,
                     "n_runs": len(g), "n_ok": len(ok), "n_diverged": int((g["status"] != "ok").sum()),
                     "train_iters": int(g["train_iters"].iloc[0]), "max_iters": _mean(ok["max_iters"]),
                     **{f"{m}_{s}": fn(ok[m]) for m in ("acc_train", "acc_max", "gain")
                        for s, fn in (("mean", _mean), ("std", _std))}})
    columns = [*OTHER_KEYS, "split_rank", "n_runs", "n_ok", "n_diverged", "train_iters", "max_iters",
               *[f"{m}_{s}" for m in ("acc_train", "acc_max", "gain") for s in ("mean", "std")]]
    frame = sort_rows(pd.DataFrame(rows, columns=columns), ["task", "variant", "depth", "width", "density",
                                                              "split_rank"])
    return _finish(frame, reported, OTHER_KEYS, scale)


def table_other_paradigm(records: list[dict], reported: list[dict], scale: str, stem: str) -> pd.DataFrame:
    frame = other_paradigm_frame(records, reported, scale)
    display = pd.DataFrame({
        "variant": frame["variant"], "L": frame["depth"], "width": frame["width"],
        "density": frame["density"].map(lambda d: f"{d:g}"), "split": frame["split"],
        "acc @ training budget": [mean_std_text(m, s) for m, s in zip(frame["acc_train_mean"], frame["acc_train_std"])],
        "acc @ largest budget": [mean_std_text(m, s) for m, s in zip(frame["acc_max_mean"], frame["acc_max_std"])],
        "gain": [mean_std_text(m, s) for m, s in zip(frame["gain_mean"], frame["gain_std"])],
        "budgets": [f"{int(t)} → {_int_text(m)}" for t, m in zip(frame["train_iters"], frame["max_iters"])],
        "diverged": [_diverged_text(r) for _, r in frame.iterrows()],
    })
    caption = _caption(
        "in another paradigm (our choice: upward generalization on anil2022's prefix sums): per variant and "
        "split (easiest first), exact-match accuracy at the training budget of iterations and at the largest "
        "test-time budget, and the gain between them (mean ± std over converged seeds)", scale)
    _write(frame, display, stem, caption, "other_paradigm")
    return frame


# ---------------------------------------------------------------- fig_memory_vs_depth (our addition)

def fig_memory_vs_depth(records: list[dict], scale: str, stem: str) -> pd.DataFrame:
    frame = summarise(runs_frame(select(records, "memory_vs_depth")), GROUP)
    plotted = frame[frame["memory_mib"].notna() | frame["step_seconds"].notna()]
    if plotted.empty:
        save_message_figure(stem, "OUR ADDITION (not an item of the paper): no measured run of study "
                                  "memory_vs_depth at this scale")
        return frame
    measures = sorted({m for ms in plotted["memory_measure"].dropna() for m in ms.split(", ")})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for (task, variant, width, density), g in plotted.groupby(["task", "variant", "width", "density"], sort=False):
        g = g.sort_values("depth")
        for ax, column in zip(axes, ("memory_mib", "step_seconds")):
            ax.plot(g["depth"], g[column], marker="o", color=VARIANT_COLOURS.get(variant, "black"),
                    label=f"{variant} (width {width})")
    axes[0].set_ylabel(f"peak training memory (MiB)\n{', '.join(measures) or 'not measured'}")
    axes[1].set_ylabel("seconds per training step")
    for ax in axes:
        ax.set_xscale("log", base=2)
        depths = sorted(plotted["depth"].unique())
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.set_xlabel("effective depth L (unrolled steps / solver budget)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"OUR ADDITION, not an item of the paper: training memory and time per step vs depth "
                 f"(mean over seeds; scale {scale})", fontsize=9)
    fig.tight_layout()
    save_figure(fig, stem)
    return frame


# ---------------------------------------------------------------- registry

def builder(item: str) -> Callable | None:
    """The builder of ``item``: the function of this module named after it (the ids and kinds live
    in config/papers.yaml), or None."""
    return named_builder(item, sys.modules[__name__])
