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

from implicit_repro.papers.song2023.grid import DEQ, MATCH_TOLERANCE, SEQUENCE_TASK, STUDIES
from implicit_repro.papers.song2023.items import GROUP, curve_rows, matched_rows, runs_frame, select, split_order
from implicit_repro.results.scorecard import CANNOT_SCORE, NOT_A_HYPOTHESIS, Evidence, row

PAPER = "song2023"
NOT_RUN = " (study not run at this scale)"
INCONCLUSIVE = "inconclusive"


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


def log_spread_ratio(a: np.ndarray, b: np.ndarray) -> float:
    """log(sd(a) / sd(b)): how much wider group a's seeds spread than group b's. An unstable
    training shows as a wide spread of outcomes across seeds long before a run diverges."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    sa, sb = np.std(a, ddof=1), np.std(b, ddof=1)
    if sa <= 0 or sb <= 0:
        return float("nan")
    return float(np.log(sa / sb))


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

CLAIM2 = ("(a) effectiveness", "(a) effectiveness, equal forward evaluations", "(b) stability",
          "(c) efficiency in time", "(d) efficiency in memory")


def deq_ranking(ok: pd.DataFrame) -> pd.Series:
    """Mean validation accuracy per DEQ variant over its converged runs (the training part's
    held-out tail: chosen without the test set), best first; empty without one."""
    deq = ok[ok["variant"].isin(DEQ)].dropna(subset=["val_accuracy"])
    return deq.groupby("variant")["val_accuracy"].mean().sort_values(ascending=False, kind="stable")


def _claim2(records: list[dict]) -> list[dict]:
    runs = runs_frame(select(records, "wt_vs_deq"))
    if runs.empty:
        return [_not_run(2, f"{name}: WT vs DEQ variants (study wt_vs_deq)", name) for name in CLAIM2]
    rows = []
    for task, r in runs.groupby("task", sort=True):
        where = f"study wt_vs_deq, {task}"
        ok = r[r["status"] == "ok"]
        ranking = deq_ranking(ok)
        if ranking.empty:
            rows += [row(PAPER, 2, task, f"{name}: cannot be scored, no DEQ run converged ({where})", float("nan"),
                         CANNOT_SCORE, len(r), name) for name in CLAIM2]
            continue
        deq = str(ranking.index[0])
        budget = int(r.loc[r["variant"] == deq, "depth"].iloc[0])
        wt_depths = sorted(r.loc[r["variant"] == "wt", "depth"].unique())
        depth = next((d for d in wt_depths if d != budget), budget)  # the study's WT depth
        wt = (r["variant"] == "wt") & (r["depth"] == depth)
        wt_ok = (ok["variant"] == "wt") & (ok["depth"] == depth)
        chosen = (f"{deq}, the DEQ variant of highest mean validation accuracy ("
                  + ", ".join(f"{v} {a:.3f}" for v, a in ranking.items()) + ")")
        rows.append(_compare(2, f"{CLAIM2[0]}: mean test accuracy of wt (L = {depth}) minus that of {chosen}; "
                                f"converged runs ({where})", Group(ok, wt_ok),
                             Group(ok, ok["variant"] == deq), _mean_diff, task, CLAIM2[0]))
        equal = (ok["variant"] == "wt") & (ok["depth"] == budget)
        if equal.any():
            rows.append(_compare(2, f"{CLAIM2[1]}: mean test accuracy of wt at the DEQ's forward budget (L = {budget})"
                                    f" minus that of {deq}; converged runs ({where})", Group(ok, equal),
                                 Group(ok, ok["variant"] == deq), _mean_diff, task, CLAIM2[1]))
        else:
            rows.append(row(PAPER, 2, task, f"{CLAIM2[1]}: cannot be scored, no wt run at the DEQ's forward budget "
                                            f"(L = {budget}) ({where})", float("nan"), CANNOT_SCORE, 0, CLAIM2[1]))
        diverged = {v: f"{int((m & (r['status'] != 'ok')).sum())}/{int(m.sum())}"
                    for v, m in ((deq, r["variant"] == deq), ("wt", wt))}
        rows.append(_compare(2, f"{CLAIM2[2]}: log of the seed standard deviation of test accuracy of {deq} over "
                                f"that of wt (> 0: wt steadier; converged runs; diverged runs {deq} {diverged[deq]}, "
                                f"wt {diverged['wt']}) ({where})",
                             Group(ok, ok["variant"] == deq), Group(ok, wt_ok), log_spread_ratio,
                             task, CLAIM2[2]))
        for name, column, what, note in (
                (CLAIM2[3], "seconds_per_epoch", "training seconds per epoch", ""),
                (CLAIM2[4], "memory_mib", "peak training memory",
                 "; at large depth implicit differentiation is expected to use less memory than WT's backprop "
                 "through L steps, see fig_memory_vs_depth")):
            a, b = Group(r, r["variant"] == deq, column), Group(r, wt, column)
            measure = ""
            if column == "memory_mib":
                kinds = sorted({m for m in r.loc[(r["variant"] == deq) | wt, "memory_measure"] if isinstance(m, str)})
                measure = f", measured as {' and '.join(kinds) or 'nothing'}"
            rows.append(_compare(2, f"{name}: log of the mean {what} of {deq} over that of wt (> 0: wt cheaper; "
                                    f"every run that measured it{measure}{note}; a DEQ's unrolled warm-up epochs "
                                    f"left out) ({where})", a, b, _log_ratio, task, name))
    return rows


# ---------------------------------------------------------------- claim 3: capacity and distinct sparse masks

CLAIM3 = ("capacity limit", "distinct masks vs matched dense", "distinct masks vs equal total parameters",
          "distinct vs shared masks")


def depth_gain_gap(untied_deep: np.ndarray, untied_shallow: np.ndarray, wt_deep: np.ndarray,
                   wt_shallow: np.ndarray) -> float:
    """How much more the untied net gains than WT from its last step up in depth: (untied deep −
    untied shallow) − (wt deep − wt shallow); > 0 when WT saturates while untied keeps gaining."""
    return _mean_diff(untied_deep, untied_shallow) - _mean_diff(wt_deep, wt_shallow)


def _capacity_limit(records: list[dict]) -> list[dict]:
    """Claim 3's first half, on the capacity study: at its widest width, the gain from the
    second-largest to the largest depth, untied minus WT."""
    text = ("gain in mean test accuracy from the second-largest to the largest depth, untied minus wt (> 0: wt "
            "saturates while untied keeps gaining), at the widest width")
    runs = runs_frame(select(records, "capacity"))
    if runs.empty:
        return [_not_run(3, f"{text} (study capacity)", CLAIM3[0])]
    rows = []
    for task, r in runs.groupby("task", sort=True):
        ok = r[r["status"] == "ok"]
        width = int(r["width"].max())
        depths = sorted(set(r.loc[r["variant"] == "wt", "depth"]) & set(r.loc[r["variant"] == "untied", "depth"]))
        where = f"study capacity, {task}"
        if len(depths) < 2:
            rows.append(row(PAPER, 3, task, f"{text}: cannot be scored, wt and untied share fewer than two depths "
                                            f"({where})", float("nan"), CANNOT_SCORE, len(r), CLAIM3[0]))
            continue
        shallow, deep = depths[-2], depths[-1]
        at = lambda v, d: Group(ok, (ok["variant"] == v) & (ok["depth"] == d) & (ok["width"] == width))  # noqa: E731
        groups = (at("untied", deep), at("untied", shallow), at("wt", deep), at("wt", shallow))
        evidence = Evidence(tuple(g.values for g in groups), depth_gain_gap, names=tuple(g.names for g in groups))
        value = depth_gain_gap(*(g.values for g in groups))
        rows.append(row(PAPER, 3, task, f"{text}: L {shallow} → {deep}, width {width} ({where})", value, evidence,
                        sum(len(g) for g in groups), CLAIM3[0]))
    return rows


def _at(ok: pd.DataFrame, variant: str, column: str, d: float) -> Group:
    """Accuracies of ``variant``'s converged runs whose ``column`` (density or match_density) is d."""
    return Group(ok, (ok["variant"] == variant) & np.isclose(ok[column], d))


def match_miss(reference: pd.DataFrame, target: float) -> float:
    """The largest relative gap between a reference's parameter count and its target."""
    return float(np.max(np.abs(reference["params_total"].to_numpy(float) - target)) / target)


def _claim3(records: list[dict]) -> list[dict]:
    rows = _capacity_limit(records)
    runs = matched_rows(runs_frame(select(records, "sparse_masks")))
    texts = ("accuracy of wt_masked_distinct at density d minus the dense wt whose width matches its active "
             "parameters (match_density = d), smallest d < 1 with converged runs of both",
             "accuracy of wt_masked_distinct at density d minus the dense wt of the same width, hence the same total "
             "parameters (the control: distinct masks together touch most weights)",
             "accuracy of wt_masked_distinct minus wt_masked_shared at that density d")
    if runs.empty:
        return rows + [_not_run(3, f"{t} (study sparse_masks)", p) for t, p in zip(texts, CLAIM3[1:])]
    for task, r in runs.groupby("task", sort=True):
        ok = r[r["status"] == "ok"]
        distinct = lambda d: _at(ok, "wt_masked_distinct", "density", d)  # noqa: E731
        shared = lambda d: _at(ok, "wt_masked_shared", "density", d)  # noqa: E731
        matched = lambda d: _at(ok, "wt", "match_density", d)  # noqa: E731
        densities = sorted(d for d in ok.loc[ok["variant"] == "wt_masked_distinct", "density"].unique() if d < 1)
        d = next((d for d in densities if len(distinct(d)) and len(matched(d))), None)
        where = f"study sparse_masks, {task}"
        if d is None:
            rows += [row(PAPER, 3, task, f"{t} ({where}): cannot be scored, no density < 1 with converged runs of "
                                         "both groups", float("nan"), CANNOT_SCORE, 0, p)
                     for t, p in zip(texts, CLAIM3[1:])]
            continue
        masked = ok[(ok["variant"] == "wt_masked_distinct") & np.isclose(ok["density"], d)]
        width = int(masked["width"].iloc[0])
        target = float(masked["params_active"].median())
        reference = ok[(ok["variant"] == "wt") & np.isclose(ok["match_density"], d)]
        miss = match_miss(reference, target)
        widths = ", ".join(map(str, sorted(reference["width"].unique())))
        params = ", ".join(f"{int(p):,}" for p in sorted(reference["params_total"].unique()))
        match = (f"d = {d:g}, matched width {widths} ({params} parameters against {int(target):,} active, "
                 f"{miss:.1%} off; tolerance {MATCH_TOLERANCE:.0%})")
        if miss > MATCH_TOLERANCE:
            rows.append(row(PAPER, 3, task, f"{texts[0]}: cannot be scored, no width matches within the tolerance: "
                                            f"{match} ({where})", float("nan"), CANNOT_SCORE, len(reference),
                            CLAIM3[1]))
        else:
            rows.append(_compare(3, f"{texts[0]}: {match} ({where})", distinct(d), matched(d), _mean_diff, task,
                                 CLAIM3[1]))
        dense = Group(ok, (ok["variant"] == "wt") & ok["match_density"].isna() & (ok["width"] == width))
        rows.append(_compare(3, f"{texts[1]}: d = {d:g}, width {width} ({where})", distinct(d), dense, _mean_diff,
                             task, CLAIM3[2]))
        rows.append(_compare(3, f"{texts[2]} = {d:g} ({where})", distinct(d), shared(d), _mean_diff, task, CLAIM3[3]))
    return rows


# ---------------------------------------------------------------- claim 4: the design grid

FACTORS = {"depth": 2, "width": 3, "density": 4}  # each factor's place in a cell's key (GROUP)


def main_effect_statistic(pairs: list[tuple[int, int]]):
    """The statistic over the cells' accuracy arrays: the mean, over ``pairs`` of cells (low, high)
    that differ only in one factor, of mean(high) − mean(low)."""
    def statistic(*cells: np.ndarray) -> float:
        return float(np.mean([np.mean(cells[high]) - np.mean(cells[low]) for low, high in pairs]))
    return statistic


def main_effect(keys: list[tuple], factor: str) -> tuple[list[tuple[tuple, tuple]], float, float]:
    """The pairs of cell keys (low, high) at the factor's lowest and highest level with every other
    factor equal, and those two levels."""
    place = FACTORS[factor]
    levels = sorted({k[place] for k in keys})
    low, high = levels[0], levels[-1]
    if low == high:  # the grid does not vary this factor
        return [], low, high
    rest = lambda k: tuple(v for i, v in enumerate(k) if i not in (1, place))  # noqa: E731 (variant follows density)
    pairs = [(a, b) for a in keys for b in keys if a[place] == low and b[place] == high and rest(a) == rest(b)]
    return pairs, low, high


def _claim4(records: list[dict]) -> list[dict]:
    runs = runs_frame(select(records, "design_guidelines"))
    text = ("main effect of {f}: mean test accuracy at the highest {f} minus at the lowest, averaged over the other "
            "factors' cells of the depth × width × density grid (the guideline 'more {f} helps'; converged runs; "
            "seeds resampled within each cell)")
    if runs.empty:
        return [_not_run(4, f"{text.format(f=f)} (study design_guidelines)", f) for f in FACTORS]
    rows = []
    for task, r in runs.groupby("task", sort=True):
        ok = r[(r["status"] == "ok") & r["test_accuracy"].notna()]
        cells = {key: g["test_accuracy"].to_numpy(float) for key, g in ok.groupby(GROUP, sort=True)}
        names = {key: tuple(f"L={key[2]}, width {key[3]}, density {key[4]:g}, seed {s}" for s in g["seed"])
                 for key, g in ok.groupby(GROUP, sort=True)}
        where = f"{len(cells)} of {r.groupby(GROUP).ngroups} cells converged (study design_guidelines, {task})"
        for factor in FACTORS:
            pairs, low, high = main_effect(list(cells), factor)
            if not pairs:
                rows.append(row(PAPER, 4, task, f"{text.format(f=factor)}: cannot be scored, no two cells differ "
                                                f"only in {factor} ({where})", float("nan"), CANNOT_SCORE, len(ok),
                                factor))
                continue
            used = sorted({key for pair in pairs for key in pair})  # the cells the pairs compare
            place = {key: n for n, key in enumerate(used)}
            statistic = main_effect_statistic([(place[a], place[b]) for a, b in pairs])
            groups = tuple(cells[key] for key in used)
            evidence = Evidence(groups, statistic, names=tuple(names[key] for key in used))
            rows.append(row(PAPER, 4, task, f"{text.format(f=factor)}: {factor} {low:g} → {high:g}, {len(pairs)} "
                                            f"pairs of cells; {where}", statistic(*groups), evidence,
                            sum(len(g) for g in groups), factor))
    return rows


# ---------------------------------------------------------------- claim 5: another paradigm

def _claim5(records: list[dict]) -> list[dict]:
    chosen = select(records, "other_paradigm", SEQUENCE_TASK)
    text = ("mean accuracy of wt minus deq_ift on the hardest split at the largest test-time budget (deq_ift read where "
            "its own solver stops when allowed that many evaluations)")
    if not chosen:
        return [_not_run(5, f"{text} (study other_paradigm, {SEQUENCE_TASK})")]
    hardest = split_order(chosen)[-1]
    curves = curve_rows(chosen)
    hard = curves[(curves["split"] == hardest) & (curves["status"] == "ok") & curves["acc_max"].notna()]
    a, b = (Group(hard, hard["variant"] == v, "acc_max") for v in ("wt", "deq_ift"))
    budget = ", ".join(str(int(m)) for m in sorted(hard["max_iters"].unique()))
    where = f"{hardest}, {budget or '—'} iterations; converged runs; study other_paradigm, {SEQUENCE_TASK}"
    bound = at_bound(a.values, b.values)
    if bound:
        return [row(PAPER, 5, SEQUENCE_TASK, f"{text}: cannot be scored, both groups at the {bound} (mean accuracy "
                                             f"wt {np.mean(a.values):.3f}, deq_ift {np.mean(b.values):.3f}), where no "
                                             f"difference can show ({where})", float("nan"), CANNOT_SCORE,
                    len(a) + len(b))]
    return [_compare(5, f"{text} ({where})", a, b, _mean_diff, SEQUENCE_TASK)]


ROOM = 0.05  # a group whose mean accuracy is within this of 0 or 1 sits at the floor or the ceiling


def at_bound(*groups: np.ndarray) -> str | None:
    """"ceiling" or "floor" when every group's mean accuracy is within ``ROOM`` of it, else None:
    a difference of accuracies there is 0 by construction, not a finding."""
    means = [float(np.mean(g)) for g in groups if len(g)]
    if means and min(means) >= 1 - ROOM:
        return "ceiling"
    if means and max(means) <= ROOM:
        return "floor"
    return None


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
