"""Scores each claim of song2023 from the runs' metrics: statistic, value, 95% bootstrap CI over runs,
sample size and verdict, in the row shape of ``results.scorecard``.

Only the abstract is known, so each statistic is this project's operationalization of a claim; its
text says what is computed, on which task and study. CIs resample runs (seeds) within each group
independently (``results.scorecard.Evidence``); a group below the engine's minimum gets "too few models"
instead of a verdict, and a claim whose study did not run at this scale gets an inconclusive row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from implicit_repro.papers.song2023.grid import DEQ, SEQUENCE_TASK, STUDIES
from implicit_repro.papers.song2023.items import GROUP, curve_rows, runs_frame, select, split_order
from implicit_repro.results.scorecard import NOT_A_HYPOTHESIS, Evidence, row

PAPER = "song2023"
NOT_RUN = " (study not run at this scale)"
INCONCLUSIVE = "inconclusive"
# Claim 4 resamples seeds within each cell of the design grid; its basic bootstrap interval was
# checked on null grids of 3 seeds per cell (tests/test_song2023_items.py), so 3 per cell suffice.
MIN_PER_CELL = 3


def song2023_scorecard(records: list[dict]) -> list[dict]:
    """Claims 1-5: the benchmark (1), WT vs DEQ (2), sparse masks (3), the design grid (4) and the
    second paradigm (5), each on its study's runs."""
    return [*_claim1(records), *_claim2(records), *_claim3(records), *_claim4(records), *_claim5(records)]


scorecard = song2023_scorecard  # the name the generic report calls (``claims.scorecard``)


def _not_run(claim: int, statistic: str, part: str = "") -> dict:
    return row(PAPER, claim, "", statistic + NOT_RUN, float("nan"), INCONCLUSIVE, 0, part)


def _mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a) - np.mean(b)) if len(a) and len(b) else float("nan")


def _log_ratio(a: np.ndarray, b: np.ndarray) -> float:
    if not (len(a) and len(b)) or np.mean(a) <= 0 or np.mean(b) <= 0:
        return float("nan")
    return float(np.log(np.mean(a) / np.mean(b)))


class Group:
    """The runs of one group compared: a value per run (``column``) and each run's name."""

    def __init__(self, runs: pd.DataFrame, mask: pd.Series, column: str = "test_accuracy"):
        chosen = runs.loc[mask].dropna(subset=[column])
        self.values = chosen[column].to_numpy(dtype=float)
        self.names = tuple(f"{r.variant} L{r.depth} w{r.width} d{r.density:g} seed {r.seed}" for r in chosen.itertuples())

    def __len__(self) -> int:
        return len(self.values)


def _compare(claim: int, text: str, a: Group, b: Group, statistic, task: str, part: str = "") -> dict:
    """Group a against group b, the claim saying statistic(a, b) > 0."""
    evidence = Evidence((a.values, b.values), statistic, names=(a.names, b.names))
    return row(PAPER, claim, task, text, statistic(a.values, b.values), evidence, len(a) + len(b), part)


# ---------------------------------------------------------------- claim 1: a benchmark

BENCHMARK = "benchmark, not a hypothesis: {v} variants × {s} seeds benchmarked in table_wt_vs_deq"


def _claim1(records: list[dict]) -> list[dict]:
    runs = runs_frame(select(records, "wt_vs_deq"))
    if runs.empty:
        return [_not_run(1, BENCHMARK.format(v="the", s="the"))]
    rows = []
    for task, r in runs.groupby("task", sort=True):
        ok = int((r["status"] == "ok").sum())
        text = (BENCHMARK.format(v=r["variant"].nunique(), s=r["seed"].nunique())
                + f" (study wt_vs_deq, {task}); value: converged runs, {ok} of {len(r)}")
        rows.append(row(PAPER, 1, task, text, float(ok), NOT_A_HYPOTHESIS, len(r)))
    return rows


# ---------------------------------------------------------------- claim 2: WT vs DEQ

CLAIM2 = ("(a) effectiveness", "(b) stability", "(c) efficiency in time", "(d) efficiency in memory")


def _claim2(records: list[dict]) -> list[dict]:
    runs = runs_frame(select(records, "wt_vs_deq"))
    if runs.empty:
        return [_not_run(2, f"{name}: WT vs DEQ variants (study wt_vs_deq)", name) for name in CLAIM2]
    rows = []
    for task, r in runs.groupby("task", sort=True):
        where = f"study wt_vs_deq, {task}"
        ok = r[r["status"] == "ok"]
        rows.append(_compare(2, f"{CLAIM2[0]}: mean test accuracy of wt minus that of deq_ift over converged runs "
                                f"({where})", Group(ok, ok["variant"] == "wt"), Group(ok, ok["variant"] == "deq_ift"),
                             _mean_diff, task, CLAIM2[0]))
        runs = r.assign(diverged=(r["status"] != "ok").astype(float))
        deq, wt = Group(runs, runs["variant"].isin(DEQ), "diverged"), Group(runs, runs["variant"] == "wt", "diverged")
        rows.append(_compare(2, f"{CLAIM2[1]}: fraction of runs that diverged, the DEQ variants pooled "
                                f"({', '.join(v for v in DEQ if v in set(r['variant']))}: {int(deq.values.sum())}/"
                                f"{len(deq)}) minus wt ({int(wt.values.sum())}/{len(wt)}); all runs ({where})",
                             deq, wt, _mean_diff, task, CLAIM2[1]))
        for name, column, what, note in (
                (CLAIM2[2], "seconds_per_epoch", "training seconds per epoch", ""),
                (CLAIM2[3], "memory_mib", "peak training memory",
                 "; at large depth implicit differentiation is expected to use less memory than WT's backprop "
                 "through L steps, see fig_memory_vs_depth")):
            a, b = (Group(r, r["variant"] == v, column) for v in ("deq_ift", "wt"))
            measure = ""
            if column == "memory_mib":
                kinds = sorted({m for m in r.loc[r["variant"].isin(["deq_ift", "wt"]), "memory_measure"]
                                if isinstance(m, str)})
                measure = f", measured as {' and '.join(kinds) or 'nothing'}"
            rows.append(_compare(2, f"{name}: log of the mean {what} of deq_ift over that of wt (> 0: wt cheaper; "
                                    f"every run that measured it{measure}{note}) ({where})", a, b, _log_ratio, task,
                                 name))
    return rows


# ---------------------------------------------------------------- claim 3: distinct sparse masks

def _at(ok: pd.DataFrame, variant: str, column: str, d: float) -> Group:
    """Accuracies of ``variant``'s converged runs whose ``column`` (density or match_density) is d."""
    return Group(ok, (ok["variant"] == variant) & np.isclose(ok[column], d))


def _claim3(records: list[dict]) -> list[dict]:
    runs = runs_frame(select(records, "sparse_masks"))
    parts = ("distinct masks vs matched dense", "distinct vs shared masks")
    texts = ("accuracy of wt_masked_distinct at density d minus the dense wt whose width matches its active "
             "parameters (match_density = d), smallest d < 1 with converged runs of both",
             "accuracy of wt_masked_distinct minus wt_masked_shared at that density d")
    if runs.empty:
        return [_not_run(3, f"{t} (study sparse_masks)", p) for t, p in zip(texts, parts)]
    rows = []
    for task, r in runs.groupby("task", sort=True):
        ok = r[r["status"] == "ok"]
        distinct = lambda d: _at(ok, "wt_masked_distinct", "density", d)  # noqa: E731
        shared = lambda d: _at(ok, "wt_masked_shared", "density", d)  # noqa: E731
        matched = lambda d: _at(ok, "wt", "match_density", d)  # noqa: E731
        densities = sorted(d for d in ok.loc[ok["variant"] == "wt_masked_distinct", "density"].unique() if d < 1)
        d = next((d for d in densities if len(distinct(d)) and len(matched(d))), None)
        if d is None:
            rows += [row(PAPER, 3, task, f"{t} (study sparse_masks, {task}): no density < 1 with converged runs of "
                                         "both groups", float("nan"), INCONCLUSIVE, 0, p) for t, p in zip(texts, parts)]
            continue
        widths = sorted(ok.loc[(ok["variant"] == "wt") & np.isclose(ok["match_density"], d), "width"].unique())
        where = f"study sparse_masks, {task}"
        rows.append(_compare(3, f"{texts[0]}: d = {d:g}, matched width {', '.join(map(str, widths))} ({where})",
                             distinct(d), matched(d), _mean_diff, task, parts[0]))
        rows.append(_compare(3, f"{texts[1]} = {d:g} ({where})", distinct(d), shared(d), _mean_diff, task, parts[1]))
    return rows


# ---------------------------------------------------------------- claim 4: the design grid

def between_cell_variance(*cells: np.ndarray) -> float:
    """The variance of the cells' true mean accuracies, estimated without the seed noise: the sample
    variance of the cell means minus the mean squared standard error of a cell mean. Its expectation
    is 0 when no design choice matters (the max − min of cell means, by contrast, is always > 0), so
    a CI above 0 says the grid's cells really differ. Needs two cells and two runs in each."""
    if len(cells) < 2 or min(len(c) for c in cells) < 2:
        return float("nan")
    means = np.array([np.mean(c) for c in cells])
    noise = np.mean([np.var(c, ddof=1) / len(c) for c in cells])
    return float(np.var(means, ddof=1) - noise)


def _claim4(records: list[dict]) -> list[dict]:
    runs = runs_frame(select(records, "design_guidelines"))
    text = ("variance of the true cell mean test accuracies over the depth × width × density grid, seed noise "
            "removed (var of cell means − mean squared standard error; 0 when no design choice matters; converged "
            "runs; basic bootstrap CI, seeds resampled within each cell)")
    if runs.empty:
        return [_not_run(4, f"{text} (study design_guidelines)")]
    rows = []
    for task, r in runs.groupby("task", sort=True):
        ok = r[(r["status"] == "ok") & r["test_accuracy"].notna()]
        cells = {key: g["test_accuracy"].to_numpy(float) for key, g in ok.groupby(GROUP, sort=True)}
        names = {key: tuple(f"L={key[2]}, width {key[3]}, density {key[4]:g}, seed {s}" for s in g["seed"])
                 for key, g in ok.groupby(GROUP, sort=True)}
        detail = ""
        if len(cells) >= 2:
            means = {k: float(np.mean(v)) for k, v in cells.items()}
            name = lambda k: f"L={k[2]}, width {k[3]}, density {k[4]:g}"  # noqa: E731
            best, worst = max(means, key=means.get), min(means, key=means.get)
            detail = (f"; best cell {name(best)} ({means[best]:.3f}), worst {name(worst)} ({means[worst]:.3f})")
        n_cells = r.groupby(GROUP).ngroups
        value = between_cell_variance(*cells.values())
        # Resampling seeds within cells adds back the seed noise the statistic removes, so the
        # percentile interval sits too high: the basic interval corrects that shift.
        judged = (Evidence(tuple(cells.values()), between_cell_variance, minimum=MIN_PER_CELL, basic=True,
                           names=tuple(names[k] for k in cells))
                  if len(cells) >= 2 else INCONCLUSIVE)
        rows.append(row(PAPER, 4, task, f"{text}{detail}; {len(cells)} of {n_cells} cells converged (study "
                                        f"design_guidelines, {task})", value, judged, len(ok)))
    return rows


# ---------------------------------------------------------------- claim 5: another paradigm

def _claim5(records: list[dict]) -> list[dict]:
    chosen = select(records, "other_paradigm", SEQUENCE_TASK)
    text = "mean accuracy of wt minus deq_ift on the hardest split at the largest test-time budget"
    if not chosen:
        return [_not_run(5, f"{text} (study other_paradigm, {SEQUENCE_TASK})")]
    hardest = split_order(chosen)[-1]
    curves = curve_rows(chosen)
    hard = curves[(curves["split"] == hardest) & (curves["status"] == "ok") & curves["acc_max"].notna()]
    a, b = (Group(hard, hard["variant"] == v, "acc_max") for v in ("wt", "deq_ift"))
    budget = ", ".join(str(int(m)) for m in sorted(hard["max_iters"].unique()))
    return [_compare(5, f"{text} ({hardest}, {budget or '—'} iterations; converged runs; study other_paradigm, "
                        f"{SEQUENCE_TASK})", a, b, _mean_diff, SEQUENCE_TASK)]


# ---------------------------------------------------------------- README section

def training_outcome_markdown(records: list[dict]) -> list[str]:
    """The README section that shows, next to the verdicts, how each study's runs trained."""
    if not records:
        return []
    lines = ["## song2023: how well the models learned their task", "",
             "Per study: runs, diverged runs and the test accuracy of the converged ones (for prefix sums: "
             "in-distribution, at the training budget). The scorecard tests the claims on these runs.", "",
             "| study | task | runs | diverged | median | min | max |", "|---|---|---|---|---|---|---|"]
    for study in STUDIES:
        runs = runs_frame(select(records, study))
        for task, r in runs.groupby("task", sort=True):
            acc = r.loc[r["status"] == "ok", "test_accuracy"].dropna()
            stats = [f"{v:.3f}" if len(acc) else "n/a" for v in (acc.median(), acc.min(), acc.max())]
            lines.append(f"| {study} | {task} | {len(r)} | {int((r['status'] != 'ok').sum())} | {' | '.join(stats)} |")
    return lines
