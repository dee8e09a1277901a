"""Stress tests of anil2022: adversarial initial states (table1), the DEQ gradient study (table2)
and the convergence dynamics (fig_convergence_traces)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from implicit_repro.interventions import INTERVENTIONS
from implicit_repro.papers.anil2022.generalization import PAPER, effect_of, hardest_splits
from implicit_repro.results.output import mean_std_text, save_figure, save_message_figure, write_table
from implicit_repro.results.reported import attach_reported

IN_DISTRIBUTION = "in_distribution"

# --- table1_adversarial_init ------------------------------------------------------------------

# Our grouping: a model is "path independent" when its training intervention promotes path
# independence; the zero-init baseline and the interventions that penalize it are "not".
GROUP_OF_EFFECT = {"promotes": "path_independent", "baseline": "not_path_independent",
                   "penalizes": "not_path_independent"}
GROUPS = ("path_independent", "not_path_independent")
# (metric, when) -> key of the attack summary in metrics.json
ATTACK_CELLS = {
    ("aa", "before_attack"): "aa_before",
    ("aa", "after_attack"): "aa_after",
    ("accuracy", "zero_init"): "accuracy_zero",
    ("accuracy", "before_attack"): "accuracy_before",
    ("accuracy", "after_attack"): "accuracy_after",
}


def group_of(intervention: str) -> str:
    return GROUP_OF_EFFECT[effect_of(intervention)]


def attack_values(records: list[dict]) -> pd.DataFrame:
    """One row per (model, metric, when) of the converged models that ran the attack."""
    rows = [
        {"task": r["task"], "model": group_of(r["intervention"]), "intervention": r["intervention"],
         "seed": r["seed"], "metric": metric, "when": when, "value": attack.get(key)}
        for r in records if r["status"] == "ok"
        for attack in [r["splits"].get(IN_DISTRIBUTION, {}).get("attack")] if attack
        for (metric, when), key in ATTACK_CELLS.items()
    ]
    return pd.DataFrame(rows, columns=["task", "model", "intervention", "seed", "metric", "when", "value"])


def table1_adversarial_init(records: list[dict], reported: list[dict], scale: str, stem: str) -> pd.DataFrame:
    values = attack_values(records)
    attacked = sorted(values["task"].unique())
    # Rows for every task with attack results, and for every task the paper reports, so the paper's
    # numbers are shown even where we ran no attack.
    tasks = sorted(set(attacked) | {c["task"] for c in reported})
    keys = ["task", "model", "metric", "when"]
    grid = pd.DataFrame([(t, g, m, w) for t in tasks for g in GROUPS for (m, w) in ATTACK_CELLS], columns=keys)
    stats = (values.dropna(subset=["value"]).groupby(keys)["value"]
             .agg(reproduced="mean", reproduced_std="std", n_attacked="count").reset_index())
    frame = grid.merge(_group_counts(records), on=["task", "model"], how="left").merge(stats, on=keys, how="left")
    frame = frame.fillna({"interventions": "", "n_models": 0, "n_diverged": 0, "n_attacked": 0})
    frame.insert(0, "paper", PAPER)
    frame = attach_reported(frame, reported, keys=keys)
    frame["scale"] = scale
    without = sorted({r["task"] for r in records} - set(attacked))
    write_table(frame, _table1_display(frame), stem, _table1_caption(scale, without))
    return frame


def _group_counts(records: list[dict]) -> pd.DataFrame:
    jobs = pd.DataFrame([{"task": r["task"], "model": group_of(r["intervention"]),
                          "intervention": r["intervention"], "ok": r["status"] == "ok"} for r in records],
                        columns=["task", "model", "intervention", "ok"])
    return (jobs.groupby(["task", "model"])
            .agg(interventions=("intervention", lambda s: ", ".join(sorted(set(s)))),
                 n_models=("ok", "size"), n_diverged=("ok", lambda s: int((~s).sum())))
            .reset_index())


def _with_paper(mean: float, std: float, paper: float) -> str:
    ours = mean_std_text(mean, std)
    return ours if pd.isna(paper) else f"{ours} (paper {paper:.4g})"


def _table1_display(frame: pd.DataFrame) -> pd.DataFrame:
    short = {("aa", "before_attack"): "AA before", ("aa", "after_attack"): "AA after",
             ("accuracy", "zero_init"): "acc zero init", ("accuracy", "before_attack"): "acc before",
             ("accuracy", "after_attack"): "acc after"}
    cells = frame.assign(
        column=[short[(m, w)] for m, w in zip(frame["metric"], frame["when"])],
        text=[_with_paper(*v) for v in zip(frame["reproduced"], frame["reproduced_std"], frame["reported"])],
        attacked=frame.groupby(["task", "model"])["n_attacked"].transform("max").astype(int),
    )
    rows = ["task", "model", "interventions", "n_models", "n_diverged", "attacked"]
    wide = cells.pivot_table(index=rows, columns="column", values="text", aggfunc="first", sort=False)
    return wide[list(short.values())].reset_index()


def _table1_caption(scale: str, without: list[str]) -> str:
    promotes = ", ".join(i.name for i in INTERVENTIONS.values() if i.effect == "promotes")
    others = ", ".join(i.name for i in INTERVENTIONS.values() if i.effect != "promotes")
    missing = f" No attack results (eval.attack_examples = 0 or every run diverged) for: {', '.join(without)}." \
        if without else ""
    return (
        f"anil2022 table 1: AA and in-distribution accuracy before and after an optimizer searches for "
        f"adversarial initial states, mean ± std over models (scale: {scale}). Our choice of groups: "
        f"path_independent = models trained with an intervention that promotes path independence ({promotes}); "
        f"not_path_independent = the zero-init baseline and interventions that penalize it ({others}); the "
        f"paper's way of picking its PI and non-PI nets is not known to us. before_attack: from a random start "
        f"in the N(0, init_std^2 I) ball; after_attack: from the start the attack found; zero_init: from the "
        f"model's default start. AA = cos(state from zero init, state from the start), both after eval.aa_iters "
        f"iterations, on the first eval.attack_examples in-distribution examples. 'attacked' counts the models "
        f"with attack results. Reported numbers are second-hand and unverified.{missing}"
    )


# --- table2_phantom_vs_ift ---------------------------------------------------------------------

GRADIENT_ORDER = ("phantom", "ift")
# (metric, split) cells of table 2; "harder" is each task's hardest evaluated split.
TABLE2_CELLS = (("residual", IN_DISTRIBUTION), ("aa", IN_DISTRIBUTION), ("aa", "harder"),
                ("accuracy", IN_DISTRIBUTION), ("accuracy", "harder"))


def study_values(records: list[dict]) -> pd.DataFrame:
    """One row per (model, metric, split) of the gradient-study records that converged."""
    rows = []
    for r in records:
        if r["status"] != "ok":
            continue
        splits = {IN_DISTRIBUTION: r["splits"][IN_DISTRIBUTION], "harder": r["splits"][r["split_order"][-1]]}
        values = {
            ("residual", IN_DISTRIBUTION): splits[IN_DISTRIBUTION]["residual_median"][r["train_iters"] - 1],
            **{("aa", s): splits[s]["aa"] for s in splits},
            **{("accuracy", s): splits[s]["accuracy"][-1] for s in splits},
        }
        rows += [{"task": r["task"], "gradient": r["gradient"], "seed": r["seed"], "metric": m, "split": s,
                  "harder_split": r["split_order"][-1], "value": values[(m, s)]} for m, s in TABLE2_CELLS]
    return pd.DataFrame(rows, columns=["task", "gradient", "seed", "metric", "split", "harder_split", "value"])


def table2_phantom_vs_ift(records: list[dict], reported: list[dict], scale: str, stem: str) -> pd.DataFrame:
    values = study_values(records)
    present = sorted({r["gradient"] for r in records} - set(GRADIENT_ORDER))
    gradients = [*GRADIENT_ORDER, *present]
    tasks = sorted({r["task"] for r in records}) or [None]  # None: no gradient study was configured
    keys = ["task", "gradient", "metric", "split"]
    grid = pd.DataFrame([(t, g, m, s) for t in tasks for g in gradients for m, s in TABLE2_CELLS], columns=keys)
    jobs = pd.DataFrame([{"task": r["task"], "gradient": r["gradient"], "ok": r["status"] == "ok"} for r in records],
                        columns=["task", "gradient", "ok"])
    counts = jobs.groupby(["task", "gradient"])["ok"].agg(
        n_models="size", n_diverged=lambda s: int((~s).sum())).reset_index()
    stats = (values.dropna(subset=["value"]).groupby(keys)
             .agg(reproduced=("value", "mean"), reproduced_std=("value", "std"), n_evaluated=("value", "count"),
                  harder_split=("harder_split", "first")).reset_index())
    frame = grid.merge(counts, on=["task", "gradient"], how="left").merge(stats, on=keys, how="left")
    frame = frame.fillna({"n_models": 0, "n_diverged": 0, "n_evaluated": 0})
    frame.insert(0, "paper", PAPER)
    frame = attach_reported(frame, reported, keys=["gradient", "metric", "split"])
    frame["scale"] = scale
    write_table(frame, _table2_display(frame), stem, _table2_caption(scale, records))
    return frame


def _table2_display(frame: pd.DataFrame) -> pd.DataFrame:
    short = {("residual", IN_DISTRIBUTION): "residual (in-dist)", ("aa", IN_DISTRIBUTION): "AA in-dist",
             ("aa", "harder"): "AA harder", ("accuracy", IN_DISTRIBUTION): "acc in-dist",
             ("accuracy", "harder"): "acc harder"}
    cells = frame.assign(
        task=frame["task"].fillna("(no study)"),
        column=[short[(m, s)] for m, s in zip(frame["metric"], frame["split"])],
        text=[_with_paper(*v) for v in zip(frame["reproduced"], frame["reproduced_std"], frame["reported"])],
    )
    rows = ["task", "gradient", "n_models", "n_diverged"]
    # Not pivot_table(dropna=False): that crosses every level of the index (a diverged gradient would get
    # rows with the other gradient's counts). Keep the rows that exist, in their order.
    wide = cells.set_index([*rows, "column"])["text"].unstack("column")
    wide = wide.reindex(pd.MultiIndex.from_frame(cells[rows].drop_duplicates()))
    return wide.reindex(columns=list(short.values())).reset_index()


def _table2_caption(scale: str, records: list[dict]) -> str:
    if not records:
        study = ("No gradient study was configured at this scale (gradient_study.gradients is empty), so every "
                 "reproduced cell is empty; the paper's numbers are shown alone. ")
    else:
        hard = ", ".join(f"{t}: {s}" for t, s in sorted(hardest_splits(records).items()))
        study = (f"Models of the gradient study (intervention {records[0]['intervention']}; "
                 f"harder = the hardest evaluated split, {hard}), mean ± std over seeds. ")
    return (
        f"anil2022 table 2: DEQs trained with phantom gradients vs implicit differentiation (IFT) (scale: "
        f"{scale}). {study}Residual: the median over examples of the RELATIVE residual ||f(z) - z|| / ||f(z)|| "
        f"after the training budget of iterations from zero init; the paper's residual is probably absolute "
        f"(not known), so the two are not comparable. AA: Algorithm 1 after eval.aa_iters iterations. Accuracy: "
        f"at the largest test-time budget. The paper does not say (to our knowledge) which task its table uses; "
        f"its numbers are matched on gradient, metric and split for every task. Reported numbers are second-hand "
        f"and unverified."
    )


# --- fig_convergence_traces ---------------------------------------------------------------------

TRACE_MODELS = 2  # models (seeds) per intervention whose stored residual traces are drawn
DYNAMICS = ("fixed_point", "cycle", "moving")
DYNAMICS_COLOURS = {"fixed_point": "tab:green", "cycle": "tab:orange", "moving": "tab:red"}


def dynamics_frame(records: list[dict]) -> pd.DataFrame:
    """Per (task, intervention, seed) on the hardest split: the dynamics counts and cycle periods."""
    hardest = hardest_splits(records)
    rows = [
        {"task": r["task"], "intervention": r["intervention"], "seed": r["seed"], "split": hardest[r["task"]],
         **{k: s["dynamics"].get(k, 0) for k in DYNAMICS}, "cycle_periods": s.get("cycle_periods", [])}
        for r in records if r["status"] == "ok"
        for s in [r["splits"][hardest[r["task"]]]]
    ]
    return pd.DataFrame(rows, columns=["task", "intervention", "seed", "split", *DYNAMICS, "cycle_periods"])


def fig_convergence_traces(records: list[dict], scale: str, stem: str) -> pd.DataFrame:
    dynamics = dynamics_frame(records)
    if dynamics.empty:
        save_message_figure(stem, "no converged run to plot: every run diverged")
        return dynamics
    hardest = hardest_splits(records)
    ok = [r for r in records if r["status"] == "ok"]
    tasks = sorted(dynamics["task"].unique())
    fig, axes = plt.subplots(len(tasks), 2, figsize=(10, 3 * len(tasks)), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 2]})
    for row, task in enumerate(tasks):
        _traces_panel(axes[row][0], [r for r in ok if r["task"] == task], task, hardest[task])
        _dynamics_panel(axes[row][1], dynamics[dynamics["task"] == task], task)
    fig.suptitle(f"Convergence on the hardest split: relative residual per iteration (our choice: up to "
                 f"{TRACE_MODELS} models per intervention, their stored example traces) and where the AA "
                 f"examples' trajectories end (scale {scale})", fontsize=9)
    fig.tight_layout()
    save_figure(fig, stem)
    return dynamics


def _traces_panel(ax, records: list[dict], task: str, split: str) -> None:
    names = sorted({r["intervention"] for r in records})
    for i, name in enumerate(names):
        chosen = sorted((r for r in records if r["intervention"] == name), key=lambda r: r["seed"])[:TRACE_MODELS]
        for r in chosen:
            for trace in r["splits"][split].get("residual_traces", []):
                # null (non-finite) and exact zeros have no place on a log axis
                y = np.array([np.nan if v is None or v <= 0 else v for v in trace], dtype=float)
                ax.plot(np.arange(1, len(y) + 1), y, color=f"C{i}", lw=0.7, alpha=0.6)
        ax.plot([], [], color=f"C{i}", label=f"{name} (seed {', '.join(str(r['seed']) for r in chosen)})")
    ax.axvline(records[0]["train_iters"], color="grey", ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("test-time iterations")
    ax.set_ylabel("relative residual")
    ax.set_title(f"{task}: {split} (dashed = training budget)", fontsize=9)
    ax.legend(fontsize=7)


def _dynamics_panel(ax, dynamics: pd.DataFrame, task: str) -> None:
    counts = dynamics.groupby("intervention")[list(DYNAMICS)].sum()
    left = np.zeros(len(counts))
    for kind in DYNAMICS:
        ax.barh(counts.index, counts[kind], left=left, color=DYNAMICS_COLOURS[kind], label=kind.replace("_", " "))
        left += counts[kind].to_numpy()
    for y, name in enumerate(counts.index):
        periods = sorted({p for ps in dynamics.loc[dynamics["intervention"] == name, "cycle_periods"] for p in ps})
        if periods:
            ax.text(left[y], y, f" periods {', '.join(map(str, periods))}", va="center", fontsize=7)
    ax.set_xlim(0, max(left.max(), 1) * 1.4)
    ax.set_xlabel("AA examples (summed over seeds)")
    ax.set_title(f"{task}: where trajectories end", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
