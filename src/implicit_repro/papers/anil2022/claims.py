"""Scores each claim of anil2022 from the evaluation metrics: statistic, value, 95% bootstrap CI,
sample size and verdict. The statistics and thresholds are this project's choices (see README).

Every claim resamples models, the unit that varies between runs and between machines: claim 4 is a
per-example claim, but its examples are nested in models, so it is tested within each model (the mean
of per-model correlations) rather than on examples pooled across models, where differences between
models would decide the verdict."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from implicit_repro.interventions import get_intervention
from implicit_repro.papers.anil2022.generalization import split_orders
from implicit_repro.results.collect import per_example_frame, summary_frame
from implicit_repro.results.scorecard import CANNOT_SCORE, MIN_FOR_CORRELATION, MIN_PER_GROUP, Evidence, row
from implicit_repro.results.stats import point_biserial, spearman, within_group_spearman

PAPER = "anil2022"
IN_DISTRIBUTION = "in_distribution"
# The one definition of a model that learned its task, used by claim 4, its items and the README's
# training-outcome table: in-distribution accuracy at the training budget of iterations (what the
# model was trained to do) at least this.
LEARNED_ACCURACY = 0.9
# The equilibrium premise, measured: a model converged when the median over in-distribution examples of
# the relative residual ||f(z) - z|| / ||f(z)|| at the largest test-time budget is at most this (the
# paper's claims are about equilibrium models; an unrolled net still moving there is not one).
CONVERGED_RESIDUAL = 1e-3
# A model collapses when its in-distribution accuracy at the largest budget is this much below its
# accuracy at the training budget: more iterations undo what it learned, so its harder-split gain
# says nothing about upward generalization (claim 1's smallest effect, 5 points).
COLLAPSE_DROP = 0.05
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
            why = "no harder split was evaluated" if len(order) < 2 else "every run diverged in training"
            rows += [row(PAPER, c, task, f"cannot be scored: {why}", float("nan"), CANNOT_SCORE, 0, part=part)
                     for c, part in ((1, "promote"), (1, "baseline"), (2, ""), (3, "promote"), (3, "penalize"),
                                     (4, ""))]
            continue
        hardest = order[-1]
        hard = by_task[by_task["split"] == hardest]
        outcomes = model_outcomes(summary[summary["task"] == task])  # diverged runs count as trained
        eligible = eligible_of(outcomes)
        rows += [
            *claim1(task, hard.merge(eligible, on=MODEL), hardest, outcomes),
            claim2(task, hard.merge(eligible, on=MODEL), hardest, outcomes),
            *claim3(task, by_task, order),
            claim4(task, split_examples(examples, eligible, hardest), hardest, outcomes),
        ]
    return rows


def model_names(models: pd.DataFrame) -> tuple[str, ...]:
    """How the fragility note names a model: its intervention (and gradient, if not unrolled) and seed."""
    return tuple(f"{m.intervention}{'' if m.gradient == 'unrolled' else '/' + m.gradient} seed {m.seed}"
                 for m in models.itertuples())


ELIGIBLE = (f"models that learned (in-distribution accuracy at the training budget >= {LEARNED_ACCURACY}), "
            f"converged (median in-distribution residual at the largest budget <= {CONVERGED_RESIDUAL:g}) and "
            f"did not collapse (accuracy there not {COLLAPSE_DROP:g} below)")
# Claim 1's rows: the arms that promote path independence, and the zero-init baseline, apart (pooled,
# an arm that does not promote it would dilute the claim, or one that does would carry the baseline).
CLAIM1_ARMS = (("promote", "promotes", "interventions that promote path independence"),
               ("baseline", "baseline", "the zero-init baseline"))


def claim1(task: str, eligible: pd.DataFrame, split: str, outcomes: pd.DataFrame) -> list[dict]:
    effect = eligible["intervention"].map(lambda i: get_intervention(i).effect)
    arm_of = outcomes["intervention"].map(lambda i: get_intervention(i).effect)
    rows = []
    for part, kind, who in CLAIM1_ARMS:
        arm = eligible[effect == kind]
        gain = (arm["acc_at_max_iters"] - arm["acc_at_train_iters"]).to_numpy()
        text = (f"mean over models of {who} of the accuracy gain on {split} from the training budget to the "
                f"largest test-time budget; {ELIGIBLE}: {len(arm)} ({outcome_counts(outcomes[arm_of == kind])})")
        value = float(np.mean(gain)) if len(gain) else float("nan")
        evidence = Evidence((gain,), np.mean, names=(model_names(arm),))
        if not (arm_of == kind).any():
            text, evidence = f"{text}: cannot be scored, no model of this arm at this scale", CANNOT_SCORE
        elif len(arm) and not gain.any() and at_rest_by_training_budget(arm):
            text, evidence = (f"{text}: cannot be scored, every one of these models is already at its fixed point on "
                              f"{split} at the training budget (median residual <= {CONVERGED_RESIDUAL:g}), so more "
                              "iterations cannot change an answer: this split asks for no more computation than "
                              "training gave"), CANNOT_SCORE
        rows.append(row(PAPER, 1, task, text, value,
                        short_of(outcomes[arm_of == kind], len(arm), MIN_PER_GROUP) or evidence, len(gain), part=part))
    return rows


def at_rest_by_training_budget(models: pd.DataFrame) -> bool:
    """Whether every model (rows of the summary frame on one split) has reached its fixed point there
    by the training budget. Where, besides, no model gains anything, claim 1's 0 is fixed by the
    design: the split is not harder in computation, and the 0 does not say that the models fail to
    generalize upward (a model still moving there that gains nothing does say it)."""
    return bool((models["residual_at_train_iters"] <= CONVERGED_RESIDUAL).all())


def short_of(trained: pd.DataFrame, read: int, minimum: int) -> str:
    """CANNOT_SCORE when enough models trained (``trained``: their ``model_outcomes``) but fewer than
    ``minimum`` of them are ones the claim reads (``read``); "" otherwise (then a group too small is
    the engine's "too few models": more seeds would help)."""
    if len(trained) < minimum or read >= minimum:
        return ""
    return CANNOT_SCORE


def outcome_counts(outcomes: pd.DataFrame) -> str:
    """"of 6: 6 learned, 0 converged, 0 collapsed": why few models are eligible."""
    return (f"of {len(outcomes)}: {int(outcomes['learned'].sum())} learned, {int(outcomes['converged'].sum())} "
            f"converged, {int(outcomes['collapsed'].sum())} collapsed")


def claim2(task: str, eligible: pd.DataFrame, split: str, outcomes: pd.DataFrame) -> dict:
    """Across models, within arms: AA and accuracy are ranked over all models and each rank centred
    on its arm's mean, so arms that differ on both (one near AA 1 and solving, one near 0 and
    failing) cannot make the correlation by themselves. The pooled ρ is shown beside it."""
    finite = np.isfinite(eligible[["aa", "acc_at_max_iters"]].to_numpy(dtype=float)).all(axis=1)
    dropped = int((~finite).sum())  # a state that overflowed on this split has no AA
    eligible = eligible[finite]
    arm = eligible["intervention"].astype("category").cat.codes.to_numpy()
    triples = np.column_stack([eligible[["aa", "acc_at_max_iters"]].to_numpy(dtype=float), arm])
    stat = lambda t: within_group_spearman(t[:, 0], t[:, 1], t[:, 2])  # noqa: E731
    pooled = spearman(triples[:, 0], triples[:, 1]) if len(triples) else float("nan")
    text = (f"Spearman correlation across models of AA and accuracy on {split} (largest budget) within "
            f"interventions (ranks centred on each intervention's mean; pooled ρ = {pooled:.2f}); {ELIGIBLE}: "
            f"{len(triples)} ({outcome_counts(outcomes)}"
            + (f"; {dropped} more without a finite AA there" if dropped else "")
            + f"; a verdict from {MIN_FOR_CORRELATION})")
    evidence = Evidence((triples,), stat, minimum=MIN_FOR_CORRELATION, names=(model_names(eligible),))
    value = stat(triples) if len(triples) else float("nan")
    if len(triples) >= MIN_FOR_CORRELATION and not np.isfinite(value):
        text += f": cannot be scored, {undefined_correlation(triples)}"
        evidence = CANNOT_SCORE
    return row(PAPER, 2, task, text, value, short_of(outcomes, len(triples), MIN_FOR_CORRELATION) or evidence,
               len(triples))


def undefined_correlation(triples: np.ndarray) -> str:
    """Why claim 2's correlation is undefined on (AA, accuracy, arm) ``triples``: a quantity that is the
    same for every model (AA 1.000 when every model reaches one fixed point from any start), or no
    arm whose models vary in both."""
    for name, k in (("AA", 0), ("accuracy", 1)):
        if np.ptp(triples[:, k]) == 0:
            return f"{name} is {triples[0, k]:.3f} for every one of these models, so no correlation is defined"
    return "no intervention's models vary in both AA and accuracy, so no correlation within interventions is defined"


# Claim 3 compares an arm with the baseline on a split where the baseline leaves room for the effect:
# promoting needs the baseline's mean accuracy below 1 - ROOM (else nothing can rise), penalizing above
# ROOM (else nothing can fall; a CI pinned at 0 never gives a verdict). ROOM is claim 3's smallest effect.
ROOM = 0.05


def claim3_split(by_task: pd.DataFrame, order: list[str], kind: str) -> tuple[str, str]:
    """The hardest harder split whose baseline leaves room for ``kind``'s effect, and a note for the
    row when it is not the hardest; the hardest split when none does (the row then cannot be scored)."""
    base = by_task[by_task["intervention"].map(lambda i: get_intervention(i).effect) == "baseline"]
    mean = base.groupby("split")["acc_at_max_iters"].mean()
    harder = [s for s in order if s != IN_DISTRIBUTION]
    where, bound = ("at most", 1 - ROOM) if kind == "promote" else ("at least", ROOM)
    for split in reversed(harder):
        if split in mean and leaves_room(kind, mean[split]):
            note = "" if split == harder[-1] else (f"; on {split}, the hardest split whose baseline mean accuracy "
                                                     f"is {where} {bound:g}")
            return split, note
    return harder[-1], ""


def leaves_room(kind: str, baseline_mean: float) -> bool:
    """Whether a baseline of this mean accuracy leaves room for ``kind``'s effect (see ROOM)."""
    return baseline_mean <= 1 - ROOM if kind == "promote" else baseline_mean >= ROOM


# Claim 3's manipulation check: an arm tests "promoting (penalizing) path independence helps (hurts)" only
# if it moved path independence, so its mean AA on the row's split must lie at least AA_MOVED above (below)
# the baseline's. A penalty that leaves AA where the baseline has it (edge copy's, whose baseline already
# sits at AA 1) says nothing about the claim whatever happens to accuracy.
AA_MOVED = 0.05


def aa_moved(kind: str, arm_aa: float, baseline_aa: float) -> bool:
    """Whether an arm of mean AA ``arm_aa`` moved path independence the way ``kind`` names (see AA_MOVED);
    an arm or a baseline with no finite AA did not."""
    sign = 1 if kind == "promote" else -1
    moved = sign * (arm_aa - baseline_aa) >= AA_MOVED - 1e-9  # 0.85 - 0.8 moved (float rounding)
    return bool(np.isfinite(arm_aa) and np.isfinite(baseline_aa) and moved)


def mean_aa(models: pd.DataFrame) -> tuple[float, str]:
    """The mean AA of ``models`` over those with a finite one (a state that overflowed has none), and
    how the row writes it: the mean, with how many models it rests on when some have no AA."""
    aa = models["aa"].to_numpy(dtype=float)
    finite = aa[np.isfinite(aa)]
    mean = float(np.mean(finite)) if len(finite) else float("nan")
    return mean, f"{mean:.3f}" + ("" if len(finite) == len(aa) else f" ({len(finite)} of {len(aa)} models with an AA)")


def claim3(task: str, by_task: pd.DataFrame, order: list[str]) -> list[dict]:
    rows = []
    diff = lambda a, b: float(np.mean(a) - np.mean(b))  # noqa: E731
    for kind, sign in (("promote", 1), ("penalize", -1)):
        split, note = claim3_split(by_task, order, kind)
        hard = by_task[by_task["split"] == split]
        effect = hard["intervention"].map(lambda i: get_intervention(i).effect)
        baseline = hard[effect == "baseline"]
        base = baseline["acc_at_max_iters"].to_numpy()
        members = hard[effect == f"{kind}s"]
        group = members["acc_at_max_iters"].to_numpy()
        text = (f"mean accuracy on {split} (largest budget) of interventions that {kind} path independence minus "
                f"the zero-init baseline ({'> 0' if sign > 0 else '< 0'} replicates){note}")
        if len(group) == 0 or len(base) == 0:
            missing = f"no model trained with an intervention that {kind}s path independence" if len(group) == 0 \
                else "no zero-init baseline model"
            rows.append(row(PAPER, 3, task, f"{text}: cannot be scored, {missing} at this scale", float("nan"),
                            CANNOT_SCORE, 0, part=kind))
            continue
        if not leaves_room(kind, np.mean(base)):
            at = "floor" if kind == "penalize" else "ceiling"
            rows.append(row(PAPER, 3, task, f"{text}: cannot be scored, the baseline is at the {at} on every harder "
                                            f"split (mean accuracy {np.mean(base):.3f} on {split})",
                            diff(group, base), CANNOT_SCORE, len(group) + len(base), part=kind))
            continue
        (arm_aa, arm_text), (base_aa, base_text) = mean_aa(members), mean_aa(baseline)
        aa_note = f"mean AA {arm_text} against the baseline's {base_text}"
        if not aa_moved(kind, arm_aa, base_aa):
            way = "above" if kind == "promote" else "below"
            rows.append(row(PAPER, 3, task, f"{text}: cannot be scored, the intervention did not move path "
                                            f"independence ({aa_note} on {split}; it needs to lie at least "
                                            f"{AA_MOVED:g} {way})",
                            diff(group, base), CANNOT_SCORE, len(group) + len(base), part=kind))
            continue
        names = (model_names(members), model_names(baseline))
        rows.append(row(PAPER, 3, task, f"{text}; {aa_note}", diff(group, base),
                        Evidence((group, base), diff, expected_sign=sign, names=names), len(group) + len(base),
                        part=kind))
    return rows


def model_frame(by_task: pd.DataFrame) -> pd.DataFrame:
    """One row per model of a summary frame: its ``MODEL`` columns, status and in-distribution
    numbers (accuracy at the training and largest budgets, residual at the largest); a diverged run
    has NaN there."""
    models = by_task.drop_duplicates(MODEL)[[*MODEL, "status"]]
    ind = by_task[(by_task["status"] == "ok") & (by_task["split"] == IN_DISTRIBUTION)]
    return models.merge(ind[[*MODEL, "acc_at_train_iters", "acc_at_max_iters", "residual_at_max_iters"]],
                        on=MODEL, how="left")


def model_outcomes(by_task: pd.DataFrame) -> pd.DataFrame:
    """``model_frame`` with what the claims ask of a model: learned (accuracy at the training budget
    >= LEARNED_ACCURACY), converged (residual at the largest budget <= CONVERGED_RESIDUAL; a state
    that overflowed has residual NaN and did not), collapsed (accuracy at the largest budget
    COLLAPSE_DROP or more below the training budget's) and eligible (learned, converged, not collapsed)."""
    models = model_frame(by_task)
    learned = models["acc_at_train_iters"] >= LEARNED_ACCURACY
    converged = models["residual_at_max_iters"] <= CONVERGED_RESIDUAL
    collapsed = models["acc_at_train_iters"] - models["acc_at_max_iters"] >= COLLAPSE_DROP - 1e-9  # 0.96 -> 0.91
    return models.assign(learned=learned, converged=converged, collapsed=collapsed,
                         eligible=learned & converged & ~collapsed)


def learned_models(by_task: pd.DataFrame) -> pd.DataFrame:
    """The models (``MODEL`` columns) that learned their task: trained without diverging, and
    in-distribution accuracy at the training budget at least LEARNED_ACCURACY."""
    outcomes = model_outcomes(by_task)
    return outcomes.loc[outcomes["learned"], MODEL]


def eligible_of(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The models (``MODEL`` columns) claims 1, 2 and 4 are scored on, of ``model_outcomes``: learned,
    converged and not collapsed."""
    return outcomes.loc[outcomes["eligible"], MODEL]


def split_examples(examples: pd.DataFrame, models: pd.DataFrame, split: str) -> pd.DataFrame:
    """The per-example rows (AA, correct) of ``split`` from ``models`` (``MODEL`` columns)."""
    keep = examples.merge(models, on=MODEL)
    return keep[keep["split"] == split]


def eligible_model_examples(by_task: pd.DataFrame, examples: pd.DataFrame, split: str) -> pd.DataFrame:
    """The per-example rows (AA, correct) of ``split`` from the models claims 1, 2 and 4 read."""
    return split_examples(examples, eligible_of(model_outcomes(by_task)), split)


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


def claim4(task: str, examples: pd.DataFrame, split: str, outcomes: pd.DataFrame) -> dict:
    """``examples``: the per-example rows of ``split`` from the eligible models."""
    value, judged, used, eligible = within_model_correlation(examples)
    text = (f"mean over models of the within-model point-biserial correlation of per-example AA and correctness on "
            f"{split} (models resampled); {ELIGIBLE}, with at least {MIN_PER_CLASS} correct and {MIN_PER_CLASS} "
            f"wrong examples there: {used} of {eligible} eligible ({outcome_counts(outcomes)})")
    return row(PAPER, 4, task, text, value, short_of(outcomes, used, MIN_PER_GROUP) or judged, used)


def iterations_to_rest(residual_median: list, tol: float = CONVERGED_RESIDUAL) -> float:
    """The first test-time budget (1-based) at which a split's median relative residual is at most
    ``tol``; inf when the sweep never gets there (an overflowed NaN never does)."""
    return next((float(k) for k, r in enumerate(residual_median, start=1) if r is not None and r <= tol), math.inf)


def computation_needed(records: list[dict]) -> dict[str, tuple[float, float, str]]:
    """Per task: (median over its converged models of the budget at which in-distribution examples
    come to rest, the same on the hardest split, that split's name).

    Whether a harder split is harder *in computation*, measured where no receptive field bounds it
    (matrix inversion, edge copy, digits): a split whose fixed point the models reach at the budget
    they need in-distribution asks for no more iterations, however much harder its inputs are."""
    outcomes = model_outcomes(summary_frame(records))  # "converged" has one definition, model_outcomes'
    converged = set(outcomes.loc[outcomes["converged"], MODEL].itertuples(index=False, name=None))
    out = {}
    for task, order in split_orders(records).items():
        rest = [(iterations_to_rest(r["splits"][IN_DISTRIBUTION]["residual_median"]),
                 iterations_to_rest(r["splits"][order[-1]]["residual_median"]))
                for r in records if r["task"] == task and tuple(r[k] for k in MODEL) in converged]
        if len(order) > 1 and rest:
            out[task] = (float(np.median([a for a, _ in rest])), float(np.median([b for _, b in rest])), order[-1])
    return out


def training_outcome(records: list[dict]) -> pd.DataFrame:
    """Per task: how many models trained and diverged; of the trained ones, how many learned the
    task, reached equilibrium in-distribution (converged), collapsed with more iterations, and are
    eligible for claims 1, 2 and 4 (``model_outcomes``).

    The scorecard tests the claims on the models the run produced; a reader needs to see next to it
    whether those models solved the task they were trained on and are the equilibrium models the
    paper's claims speak of."""
    frame = summary_frame(records)
    needed = computation_needed(records)
    rows = []
    for task, jobs in frame.groupby("task", sort=True):
        models = model_outcomes(jobs)
        acc = models["acc_at_train_iters"]
        at_rest, hard_at_rest, hardest = needed.get(task, (math.nan, math.nan, None))
        rows.append({"task": task, "models": len(models), "diverged": int((models["status"] != "ok").sum()),
                     "median": acc.median(), "min": acc.min(), "max": acc.max(),
                     **{k: int(models[k].sum()) for k in ("learned", "converged", "collapsed", "eligible")},
                     "rest_in_distribution": at_rest, "rest_hardest": hard_at_rest, "hardest": hardest})
    return pd.DataFrame(rows, columns=["task", "models", "diverged", "median", "min", "max", "learned", "converged",
                                       "collapsed", "eligible", "rest_in_distribution", "rest_hardest", "hardest"])


def training_outcome_markdown(records: list[dict]) -> list[str]:
    """The README section that shows, next to the verdicts, whether the models learned their task
    and reached equilibrium."""
    outcome = training_outcome(records)
    if outcome.empty:
        return []
    lines = ["## How well the models learned their training task, and whether they reached equilibrium", "",
             "In-distribution accuracy at the training budget of iterations, over the models of the "
             f"intervention grid; *converged*: the median relative residual at the largest test-time budget is at "
             f"most {CONVERGED_RESIDUAL:g} (the paper's claims are about equilibrium models); *collapsed*: accuracy "
             f"at the largest budget {COLLAPSE_DROP:g} or more below the training budget's. Claims 1, 2 and 4 are "
             "scored on the *eligible* models (learned, converged, not collapsed), claim 3 on all of them; where "
             "few are eligible, a verdict says little about the paper's trained networks. *At rest*: the "
             "median over the converged models of the first budget at which the median residual is at most "
             f"{CONVERGED_RESIDUAL:g}, in-distribution and on the hardest split; a hardest split that comes to "
             "rest no later asks for no more computation than training did (> n: not within the sweep's n).", "",
             f"| task | models | diverged | median | min | max | learned (≥ {LEARNED_ACCURACY:g}) | converged | "
             "collapsed | eligible | at rest: in-distribution → hardest |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.task} | {r.models} | {r.diverged} | {_fmt(r.median)} | {_fmt(r.min)} | {_fmt(r.max)} | "
              f"{r.learned} of {r.models - r.diverged} | {r.converged} of {r.models - r.diverged} | "
              f"{r.collapsed} | {r.eligible} | {_rest(r, max_iters(records, r.task))} |" for r in outcome.itertuples()]
    return lines


def max_iters(records: list[dict], task: str) -> int:
    return max((r["max_iters"] for r in records if r["task"] == task), default=0)


def _rest(r, sweep: int) -> str:
    """'17 → 32 (bits48)'; a median the sweep never reached is '> n'."""
    if r.hardest is None:
        return "n/a"
    at = [f"> {sweep}" if math.isinf(v) else f"{v:g}" for v in (r.rest_in_distribution, r.rest_hardest)]
    return f"{at[0]} → {at[1]} ({r.hardest})"


def _fmt(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.3f}"
