"""The scorecard engine: every paper's claim rows, judged by one rule.

A paper's ``claims.scorecard(records)`` returns rows built by ``row``: a statistic, its value and its
``Evidence`` (the groups of models it compares and the statistic as a function of them), or a fixed
verdict where there is nothing to test. ``score`` then judges every row of every paper the same way,
against the smallest effect of interest its claim pre-registers in ``config/papers.yaml``:

- a 95% bootstrap CI, models (runs) resampled within each group, and its half-width;
- the verdict (``stats.verdict``): *not replicated* when the whole CI lies below the smallest effect
  of interest on the claimed side, else *replicated* when it excludes 0, else *inconclusive*;
  *too few models* when a group is below the minimum that keeps a verdict stable across machines;
- for an inconclusive (or too-few) row, the models per group that would likely resolve it
  (``stats.models_needed``);
- fragility: the verdict recomputed leaving out each model in turn; a verdict that any single
  omission flips is *fragile* (the rows to expect to move on another CPU type)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from implicit_repro.errors import ReproError
from implicit_repro.results.stats import bootstrap_ci, models_needed, verdict

COLUMNS = ["paper", "claim", "task", "part", "statistic", "value", "expected_sign", "ci_low", "ci_high", "half_width",
           "smallest_effect", "n", "verdict", "models_needed", "fragile", "fragile_because"]
TOO_FEW = "too few models"
NOT_A_HYPOTHESIS = "not a hypothesis"
# The design gives the row nothing to test: no model of a compared arm at this scale, or enough models
# trained but too few of them are what the claim speaks of (learned the task, reached equilibrium), or a
# statistic the design fixes or leaves undefined (a harder split already at equilibrium within the
# training budget, so no gain is possible; a quantity equal for every model). More seeds of the same
# recipe would not help; the row's statistic says why.
CANNOT_SCORE = "cannot be scored"
JUDGED = ("replicated", "not replicated", "inconclusive")
VERDICTS = (*JUDGED, TOO_FEW, CANNOT_SCORE, NOT_A_HYPOTHESIS)

# The fewest models (runs) per group compared for which a claim gets a verdict. Across CPU types the
# kernels round differently and the trained models differ as with a change of seed: with 3 models per
# group, 3 of 21 small-scale verdicts flipped between two x86 CPUs. A bootstrap over 3 values has only
# 10 distinct resamples and understates their spread; below these sizes we report "too few models"
# rather than a verdict that is an accident of rounding.
MIN_PER_GROUP = 5
# A rank correlation across models needs more: 5 models have only 120 orderings.
MIN_FOR_CORRELATION = 10


@dataclass(frozen=True)
class Evidence:
    """What a row's verdict is computed from: ``groups`` of models (one value, or one row of paired
    values, per model), resampled independently, and ``statistic(*groups)``, claimed to be on the
    side ``expected_sign`` of 0. ``names`` (optional): per group, a name per model, for the
    fragility note ("without mixed_init seed 3")."""

    groups: tuple[np.ndarray, ...]
    statistic: Callable[..., float]
    expected_sign: int = 1
    minimum: int = MIN_PER_GROUP
    basic: bool = False  # the basic bootstrap interval (see stats.bootstrap_ci)
    names: tuple[tuple[str, ...], ...] | None = None

    @property
    def smallest_group(self) -> int:
        return min(len(g) for g in self.groups)

    def ci(self) -> tuple[float, float]:
        return bootstrap_ci(self.groups, self.statistic, basic=self.basic)

    def without(self, group: int, model: int) -> "Evidence":
        groups = tuple(np.delete(g, model, axis=0) if k == group else g for k, g in enumerate(self.groups))
        return Evidence(groups, self.statistic, self.expected_sign, self.minimum, self.basic)

    def model_name(self, group: int, model: int) -> str:
        if self.names is not None:
            return self.names[group][model]
        return f"model {model + 1} of group {group + 1}"


def row(paper: str, claim: int, task: str, statistic: str, value: float, evidence: Evidence | str, n: int,
        part: str = "") -> dict:
    """One scorecard row. ``evidence``: what the verdict is computed from, or the verdict itself where
    there is nothing to test (``NOT_A_HYPOTHESIS``, or ``CANNOT_SCORE`` with the reason in
    ``statistic``). ``part``: a short name for one of several rows of a claim on one task."""
    if isinstance(evidence, str) and evidence not in VERDICTS:
        raise ValueError(f"unknown verdict {evidence!r}; known: {', '.join(VERDICTS)}")
    return {"paper": paper, "claim": claim, "task": task, "part": part, "statistic": statistic, "value": value,
            "n": n, "evidence": evidence}


# ---------------------------------------------------------------- the smallest effects of interest

@dataclass(frozen=True)
class SmallestEffect:
    value: float  # on the claimed side of the statistic, in its units; > 0
    why: str


def smallest_effect(facts: dict, paper: str, claim: int, part: str = "") -> SmallestEffect:
    """The smallest effect of interest pre-registered for a row: ``claims.<n>.smallest_effect`` of the
    paper in config/papers.yaml, either one ``{value, why}`` for every row of the claim or one per
    part (the scorecard's ``part``)."""
    where = f"config/papers.yaml: {paper}.claims.{claim}.smallest_effect"
    entry = facts.get(paper, {}).get("claims", {}).get(claim, {})
    effect = entry.get("smallest_effect") if isinstance(entry, dict) else None
    if isinstance(effect, dict) and "value" not in effect:
        if part not in effect:
            raise ReproError(f"{where}: no entry for part {part!r} of the claim; add `{part}: {{value: ..., why: "
                             "...}` (the smallest effect of interest of that row, and the reason for its size).")
        effect, where = effect[part], f"{where}.{part}"
    if not isinstance(effect, dict) or "value" not in effect or not effect.get("why"):
        raise ReproError(f"{where}: missing; pre-register the claim's smallest effect of interest as `{{value: "
                         "..., why: ...}` (in the units of its scorecard statistic, with the reason for its size).")
    value = effect["value"]
    if not isinstance(value, (int, float)) or not value > 0:
        raise ReproError(f"{where}.value: {value!r} is not a number above 0; it is the effect, on the claimed "
                         "side of the statistic, below which the claim counts as not replicated.")
    return SmallestEffect(float(value), str(effect["why"]))


# ---------------------------------------------------------------- judging a row

def judge(evidence: Evidence, smallest: float, fragility: bool = True) -> dict:
    """The judged columns of one row: CI, half-width, verdict, models needed and (unless
    ``fragility`` is off, for simulations that need only the verdict) fragility."""
    out = {"ci_low": float("nan"), "ci_high": float("nan"), "half_width": float("nan"), "models_needed": float("nan"),
           "fragile": False, "fragile_because": ""}
    if evidence.smallest_group >= 2:
        out["ci_low"], out["ci_high"] = evidence.ci()
        out["half_width"] = (out["ci_high"] - out["ci_low"]) / 2
    if evidence.smallest_group < evidence.minimum:
        out["verdict"] = TOO_FEW
    else:
        out["verdict"] = verdict(out["ci_low"], out["ci_high"], evidence.expected_sign, smallest)
        flip = first_flip(evidence, smallest, out["verdict"]) if fragility else ""
        if flip:
            out["fragile"], out["fragile_because"] = True, flip
    if out["verdict"] in ("inconclusive", TOO_FEW):
        needed = float("nan")
        if evidence.smallest_group >= 2:
            estimate = evidence.expected_sign * evidence.statistic(*evidence.groups)
            needed = models_needed(evidence.smallest_group, out["half_width"], estimate, smallest)
        if np.isfinite(needed):
            out["models_needed"] = max(needed, evidence.minimum)
        elif out["verdict"] == TOO_FEW:
            out["models_needed"] = float(evidence.minimum)  # no spread to estimate from: at least the minimum
    return out


def first_flip(evidence: Evidence, smallest: float, full: str) -> str:
    """"without <model>: <verdict>" for the first single omission that changes the verdict, else "".
    Each omission is resampled from the same uniform draws (``stats.bootstrap_ci``), so the
    resamples differ by the omitted model, not by a new random stream; the minimum per group is not
    applied (a flip to "too few models" says nothing about the evidence). With n models, an omission
    also widens the interval by about √(n/(n−1)): a verdict near its boundary is fragile whichever
    model goes, which is what fragile means here (one model fewer would have told otherwise)."""
    for g, group in enumerate(evidence.groups):
        if len(group) < 3:
            continue  # one model left could not be resampled into a spread
        for m in range(len(group)):
            reduced = evidence.without(g, m)
            changed = verdict(*reduced.ci(), reduced.expected_sign, smallest)
            if changed != full:
                return f"without {evidence.model_name(g, m)}: {changed}"
    return ""


def score(rows: list[dict], facts: dict, fragility: bool = True) -> pd.DataFrame:
    """Every row judged against its claim's smallest effect of interest (``facts``: config/papers.yaml)."""
    judged = []
    for r in rows:
        evidence = r["evidence"]
        try:
            effect = smallest_effect(facts, r["paper"], r["claim"], r["part"]).value
        except ReproError:
            if not isinstance(evidence, str):
                raise
            effect = float("nan")  # a row with nothing to test (not a hypothesis) may have none
        out = {k: v for k, v in r.items() if k != "evidence"}
        out["smallest_effect"] = effect
        out["expected_sign"] = 1 if isinstance(evidence, str) else evidence.expected_sign
        if isinstance(evidence, str):
            out.update(ci_low=float("nan"), ci_high=float("nan"), half_width=float("nan"), verdict=evidence,
                       models_needed=float("nan"), fragile=False, fragile_because="")
        else:
            out.update(judge(evidence, effect, fragility))
        judged.append(out)
    return pd.DataFrame(judged, columns=COLUMNS)
