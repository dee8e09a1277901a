"""The scorecard's statistics on hand-made metrics whose answers are known. Each test is built so that
a plausible wrong implementation fails it: a sign flipped, a wrong iteration read, a filter dropped, a
wrong resampling unit, a 90% instead of a 95% interval, a verdict boundary moved."""

import json
import re

import numpy as np
import pytest
import yaml

from conftest import ROOT
from test_items import MAX, ORDER, TRAIN, make_record
from implicit_repro.papers import known, part
from implicit_repro.papers.anil2022 import claims
from implicit_repro.results.collect import load_records
from implicit_repro.results.reported import PROVENANCES
from implicit_repro.results.scorecard import (MIN_FOR_CORRELATION, MIN_PER_GROUP, TOO_FEW, VERDICTS, Evidence, judge,
                                              score)
from implicit_repro.results.stats import bootstrap_ci, point_biserial, spearman, verdict

HARD = ORDER[-1]
PAPERS = yaml.safe_load((ROOT / "config/papers.yaml").read_text())


def curve(at_train: float, at_max: float) -> list[float]:
    """An accuracy curve over 1..MAX iterations: `at_train` up to the training budget, then `at_max`."""
    return [at_train] * TRAIN + [at_max] * (MAX - TRAIN)


def rows_of(records, claim, facts=PAPERS):
    """The judged scorecard rows of one claim of anil2022."""
    card = score(claims.scorecard(records), facts)
    return card[card["claim"] == claim].to_dict("records")


# --- the verdict rule and the interval -----------------------------------------------------------

def test_a_ci_that_touches_zero_is_inconclusive():
    assert verdict(0.0, 0.4) == "inconclusive"  # `>=` instead of `>` would call this replicated
    assert verdict(-0.4, 0.0) == "inconclusive"
    assert verdict(0.0, 0.4, expected_sign=-1) == "inconclusive"
    assert verdict(1e-9, 0.4) == "replicated" and verdict(-0.4, -1e-9) == "not replicated"


def test_a_ci_below_the_smallest_effect_is_not_replicated_on_the_claimed_side():
    assert verdict(0.01, 0.04, smallest_effect=0.05) == "not replicated"  # real, but too small to matter
    assert verdict(0.01, 0.05, smallest_effect=0.05) == "replicated"  # touching it is not wholly below
    assert verdict(-0.02, 0.06, smallest_effect=0.05) == "inconclusive"
    # a claim that the statistic is negative: its claimed side is -high .. -low
    assert verdict(-0.04, -0.01, expected_sign=-1, smallest_effect=0.05) == "not replicated"
    assert verdict(-0.2, -0.1, expected_sign=-1, smallest_effect=0.05) == "replicated"
    assert verdict(0.1, 0.2, expected_sign=-1, smallest_effect=0.05) == "not replicated"  # reversed


def test_the_interval_is_95_percent():
    """The percentile CI of a mean of n normal draws is about mean ± 1.96 σ/√n (a 90% one: ± 1.645)."""
    sample = np.random.default_rng(1).normal(0.0, 1.0, 400)
    low, high = bootstrap_ci((sample,), np.mean)
    half = (high - low) / 2 / (sample.std() / np.sqrt(len(sample)))
    assert 1.85 < half < 2.07, half


def test_the_minimums_are_pinned_a_group_at_the_minimum_is_judged_one_below_is_not():
    """The numbers are written out, not read from the constants: lowering a minimum must fail here."""
    assert (MIN_PER_GROUP, MIN_FOR_CORRELATION) == (5, 10)
    group = np.linspace(0.5, 0.6, 5)
    assert judge(Evidence((group[:4],), np.mean), 0.05)["verdict"] == TOO_FEW
    assert judge(Evidence((group,), np.mean), 0.05)["verdict"] == "replicated"
    assert judge(Evidence((-group,), np.mean), 0.05)["verdict"] == "not replicated"
    two = (group, group - 0.3)
    assert judge(Evidence((two[0][:4], two[1]), lambda a, b: a.mean() - b.mean()), 0.05)["verdict"] == TOO_FEW
    rho = lambda p: spearman(p[:, 0], p[:, 1])  # noqa: E731
    pairs = np.column_stack([np.arange(10.0), np.arange(10.0) + 0.1 * np.sin(np.arange(10.0))])
    assert judge(Evidence((pairs,), rho, minimum=MIN_FOR_CORRELATION), 0.5)["verdict"] == "replicated"
    assert judge(Evidence((pairs[:9],), rho, minimum=MIN_FOR_CORRELATION), 0.5)["verdict"] == TOO_FEW
    assert set(VERDICTS) >= {"replicated", "not replicated", "inconclusive", TOO_FEW}


def test_anil2022_claim2_gets_a_verdict_from_ten_models_and_not_from_nine():
    records = [make_record(seed=s, aa={**dict.fromkeys(ORDER, 0.5), HARD: s / 10},
                           accuracy={**dict.fromkeys(ORDER, 0.9), HARD: curve(0.5, s / 10)}) for s in range(10)]
    assert rows_of(records, 2)[0]["verdict"] == "replicated"
    assert rows_of(records[:9], 2)[0]["verdict"] == TOO_FEW


def test_correlations_on_known_data():
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([10, 20, 30, 1000.0])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([4, 3, 2, 1.0])) == pytest.approx(-1.0)
    # AA 1 when correct, 0 when wrong: a perfect point-biserial correlation; reversed: -1
    pairs = np.array([[1, 1], [1, 1], [0, 0], [0, 0]], dtype=float)
    assert point_biserial(pairs) == pytest.approx(1.0)
    # scores 3, 1, 2, 0 with correctness 1, 1, 0, 0: covariance sum 1, variance sums 5 and 1
    graded = np.array([[3, 1], [1, 1], [2, 0], [0, 0]], dtype=float)
    assert point_biserial(graded) == pytest.approx(1 / np.sqrt(5))
    assert point_biserial(np.column_stack([1 - pairs[:, 0], pairs[:, 1]])) == pytest.approx(-1.0)


# --- claim 1: the gain from more test-time iterations --------------------------------------------

def test_claim1_is_the_gain_from_the_training_budget_to_the_largest():
    records = [make_record(seed=s, accuracy={**dict.fromkeys(ORDER, 0.9), HARD: curve(0.2, 0.5 + 0.01 * s)})
               for s in range(MIN_PER_GROUP)]
    (row,) = [r for r in rows_of(records, 1) if r["part"] == "baseline"]
    assert row["value"] == pytest.approx(0.32)  # mean of 0.30..0.34: a reversed sign gives -0.32
    assert row["verdict"] == "replicated" and row["n"] == MIN_PER_GROUP and HARD in row["statistic"]
    worse = [make_record(seed=s, accuracy={**dict.fromkeys(ORDER, 0.9), HARD: curve(0.5 + 0.01 * s, 0.2)})
             for s in range(MIN_PER_GROUP)]
    assert [r for r in rows_of(worse, 1) if r["part"] == "baseline"][0]["verdict"] == "not replicated"


# --- claim 2: AA against accuracy across models, at the largest budget ---------------------------

def test_claim2_reads_accuracy_at_the_largest_budget():
    """AA rises with accuracy at the largest budget and falls with accuracy at the training budget."""
    n = MIN_FOR_CORRELATION
    records = [make_record(seed=s, aa={**dict.fromkeys(ORDER, 0.5), HARD: s / n},
                           accuracy={**dict.fromkeys(ORDER, 0.9), HARD: curve(1 - s / n, s / n)})
               for s in range(n)]
    (row,) = rows_of(records, 2)
    assert row["value"] == pytest.approx(1.0)  # at the training budget it would be -1
    assert row["verdict"] == "replicated"
    assert rows_of(records[:-1], 2)[0]["verdict"] == TOO_FEW


# --- claim 3: interventions against the zero-init baseline ---------------------------------------

# The AA each arm's name promises (claim 3's manipulation check): the baseline in the middle.
ARM_AA = {"baseline": 0.7, "promotes": 1.0, "penalizes": 0.4}


def hard_accuracy(intervention, seed, acc):
    from implicit_repro.interventions import get_intervention

    return make_record(intervention=intervention, seed=seed, aa=ARM_AA[get_intervention(intervention).effect],
                       accuracy={**dict.fromkeys(ORDER, 0.9), HARD: acc + 0.005 * seed})


def test_claim3_promoting_must_raise_and_penalizing_must_lower_accuracy():
    records = [hard_accuracy(i, s, acc) for i, acc in (("baseline", 0.5), ("mixed_init", 0.8),
                                                       ("anti_alignment", 0.2))
               for s in range(MIN_PER_GROUP)]
    promote, penalize = rows_of(records, 3)
    assert "promote" in promote["statistic"] and promote["value"] == pytest.approx(0.3)
    assert promote["verdict"] == "replicated"
    assert "penalize" in penalize["statistic"] and penalize["value"] == pytest.approx(-0.3)
    assert penalize["verdict"] == "replicated"  # lower than the baseline is what the claim says
    raised = [hard_accuracy(i, s, acc) for i, acc in (("baseline", 0.5), ("anti_alignment", 0.8))
              for s in range(MIN_PER_GROUP)]
    promote, penalize = rows_of(raised, 3)
    assert penalize["verdict"] == "not replicated"
    # no promoting arm: the part still has its row, saying why it cannot be scored
    assert promote["verdict"] == "cannot be scored" and "cannot be scored" in promote["statistic"]


# --- claim 4: per example, within models ---------------------------------------------------------

def model_examples(seed, aa_shift, learned=True, sign=1):
    """A model with 10 correct and 10 wrong harder examples whose AA is `aa_shift` plus +-0.05 by
    correctness (sign 1: higher AA when correct), and ~0 correlation structure otherwise."""
    correct = [True] * 10 + [False] * 10
    aa = [aa_shift + sign * (0.05 if c else -0.05) + 0.001 * k for k, c in enumerate(correct)]
    in_dist = curve(0.95, 0.95) if learned else curve(0.3, 0.95)  # not learned: good only past the budget
    return make_record(seed=seed, accuracy={**dict.fromkeys(ORDER, 0.5), "in_distribution": in_dist},
                       examples={**dict.fromkeys(ORDER, None), HARD: (aa, correct)})


def test_claim4_is_within_models_where_pooling_says_the_opposite():
    """Within every model, correct examples have the higher AA; but models with more correct answers
    have lower AA overall, so examples pooled across models correlate negatively."""
    records = []
    for s in range(6):
        rec = model_examples(s, aa_shift=1.0 - 0.15 * s)
        n_right = 4 + 2 * s  # more correct answers in the models with lower AA
        rec["splits"][HARD]["correct_at_aa_iters"] = [k < n_right for k in range(20)]
        aa = rec["splits"][HARD]["aa_per_example"]
        rec["splits"][HARD]["aa_per_example"] = [a - 0.05 + (0.1 if k < n_right else 0.0) for k, a in
                                                 enumerate(aa)]
        records.append(rec)
    (row,) = rows_of(records, 4)
    assert row["value"] > 0.5 and row["verdict"] == "replicated" and row["n"] == 6
    pooled = np.array([(a, c) for r in records for a, c in zip(r["splits"][HARD]["aa_per_example"],
                                                               r["splits"][HARD]["correct_at_aa_iters"])], float)
    assert point_biserial(pooled) < 0  # what the old, pooled statistic would have scored


def test_claim4_uses_only_the_models_that_learned_the_task():
    learned = [model_examples(s, 0.5, learned=True) for s in range(MIN_PER_GROUP)]
    contrary = [model_examples(10 + s, 0.5, learned=False, sign=-1) for s in range(3 * MIN_PER_GROUP)]
    (row,) = rows_of(learned + contrary, 4)
    assert row["verdict"] == "replicated" and row["n"] == MIN_PER_GROUP
    assert f"{MIN_PER_GROUP} of {MIN_PER_GROUP}" in row["statistic"]
    # enough models trained, too few of them learned: more seeds of this recipe would not help
    assert rows_of(learned[:-1] + contrary, 4)[0]["verdict"] == "cannot be scored"
    assert rows_of(learned[:-1], 4)[0]["verdict"] == TOO_FEW  # four models trained in all: seeds would


def test_learned_means_in_distribution_accuracy_at_the_training_budget():
    records = [model_examples(0, 0.5, learned=True), model_examples(1, 0.5, learned=False)]
    from implicit_repro.results.collect import summary_frame

    learned = claims.learned_models(summary_frame(records))
    assert learned["seed"].tolist() == [0]
    outcome = claims.training_outcome(records).iloc[0]
    assert outcome["learned"] == 1 and outcome["models"] == 2


# --- from the metrics files to the verdict -------------------------------------------------------

def test_a_changed_metrics_file_changes_the_verdict(tmp_path):
    records = [hard_accuracy(i, s, acc) for i, acc in (("baseline", 0.5), ("mixed_init", 0.8))
               for s in range(MIN_PER_GROUP)]
    paths = []
    for k, r in enumerate(records):
        paths.append(tmp_path / f"m{k}.json")
        paths[-1].write_text(json.dumps(r))

    def claim3_verdict():
        return rows_of(load_records([str(p) for p in paths]), 3)[0]["verdict"]

    assert claim3_verdict() == "replicated"
    for p in paths[MIN_PER_GROUP:]:  # the mixed_init models now do worse than the baseline
        r = json.loads(p.read_text())
        r["splits"][HARD]["accuracy"] = [0.1] * MAX
        p.write_text(json.dumps(r))
    assert claim3_verdict() == "not replicated"


# --- coverage and provenance ---------------------------------------------------------------------

@pytest.mark.parametrize("paper", known())
def test_every_claim_gets_a_scorecard_line_even_with_no_run(paper):
    """song2023 scores each claim as "study not run"; anil2022 scores per task, so with no task
    evaluated it has no rows and the README says "not yet computed" for each claim."""
    from implicit_repro.results import readme

    card = score(part(paper, "claims").scorecard([]), PAPERS)
    rows = card.to_dict("records")
    assert all(r["verdict"] in VERDICTS for r in rows)
    if rows:
        assert {r["claim"] for r in rows} == set(PAPERS[paper]["claims"])
    text = readme.render({paper: PAPERS[paper]}, set(), card, "smoke", "")
    for claim, entry in PAPERS[paper]["claims"].items():
        assert f"| {claim}. {entry['text']} |" in text
    if paper == "anil2022":
        assert rows == [] and text.count("not yet computed") == len(PAPERS[paper]["claims"])


def test_the_committed_scorecard_scores_every_claim_of_both_papers():
    import pandas as pd

    card = pd.read_csv(ROOT / "paper_results/scorecard.csv")
    for paper in known():
        assert set(card.loc[card["paper"] == paper, "claim"]) == set(PAPERS[paper]["claims"]), paper
    assert set(card["verdict"]) <= set(VERDICTS)


def test_every_paper_fact_has_a_provenance():
    for paper, facts in PAPERS.items():
        cells = [c for item in facts.get("reported", {}).values() for c in item]
        cells += [f for task in facts.get("setup", {}).values() for f in task.values()]
        for cell in cells:
            assert cell.get("provenance") in PROVENANCES, (paper, cell)
            assert "value" in cell
        for task in facts.get("setup", {}).values():
            assert all(f.get("source") for f in task.values()), (paper, task)


# --- the top-level README's summary --------------------------------------------------------------

def test_the_readme_summary_is_the_one_the_pipeline_generated_from_the_committed_scorecard():
    import pandas as pd

    from implicit_repro.results.readme import SUMMARY_END, SUMMARY_START, splice_summary, summary_markdown

    committed = (ROOT / "paper_results/scorecard_summary.md").read_text()
    card = pd.read_csv(ROOT / "paper_results/scorecard.csv", keep_default_na=False, na_values=[""])
    scale = re.search(r"Scale \*\*(\w+)\*\*", committed).group(1)
    assert summary_markdown(PAPERS, card, scale) == committed
    readme = (ROOT / "README.md").read_text()
    assert splice_summary(readme, committed) == readme  # README.md holds exactly that summary
    with pytest.raises(Exception, match="README.md"):
        splice_summary(readme.replace(SUMMARY_END, ""), committed)
    assert readme.index(SUMMARY_START) < readme.index(SUMMARY_END)
