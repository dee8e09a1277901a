"""anil2022's claims read the right models and the right comparison (issue 14's design).

- claims 1, 2 and 4 read only models that learned, reached equilibrium in-distribution and did not
  collapse; each row says how many of how many;
- claim 1 has a row for the arms that promote path independence and one for the baseline, and an arm
  that penalizes it is in neither;
- claim 2 correlates AA and accuracy within interventions, so arms that differ on both cannot make
  the correlation.
Each test is built so that the simpler wrong version (pooled arms, no filter, a residual read at the
wrong budget) fails it."""

import numpy as np
import pytest

from test_items import MAX, ORDER, TRAIN, make_record
from implicit_repro.papers.anil2022 import claims
from implicit_repro.results.stats import spearman, within_group_spearman

HARD = ORDER[-1]


def gain_record(intervention, seed, gain, *, residual=1e-4, in_dist=0.95, aa=1.0):
    """A model that learned (unless ``in_dist`` says otherwise) whose hardest-split accuracy rises by ``gain``."""
    return make_record(intervention=intervention, seed=seed, aa=aa, residual=residual,
                       accuracy={**dict.fromkeys(ORDER, in_dist), HARD: [0.3] * TRAIN + [0.3 + gain] * (MAX - TRAIN)})


def rows(records, claim, part=None):
    out = [r for r in claims.scorecard(records) if r["claim"] == claim]
    return out if part is None else [r for r in out if r["part"] == part]


# --- the within-group correlation ----------------------------------------------------------------

def test_within_group_spearman_ignores_differences_between_groups():
    """Two arms: one high on both x and y, one low on both; inside each, y falls as x rises.
    Pooled, ρ is strongly positive; within the arms it is -1."""
    x = np.array([0.90, 0.92, 0.94, 0.96, 0.98, 0.10, 0.12, 0.14, 0.16, 0.18])
    y = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.05, 0.04, 0.03, 0.02, 0.01])
    arm = np.array([0] * 5 + [1] * 5)
    assert spearman(x, y) > 0.5
    assert within_group_spearman(x, y, arm) == pytest.approx(-1.0)
    assert within_group_spearman(x, -y, arm) == pytest.approx(1.0)
    assert np.isnan(within_group_spearman(x, y, np.arange(10)))  # every model its own group: nothing varies
    one_each = np.array([0, 0, 0, 1, 1, 1])  # one group varies only in x, the other only in y: no co-variation
    assert np.isnan(within_group_spearman(np.array([1.0, 2, 3, 5, 5, 5]), np.array([1.0, 1, 1, 1, 2, 3]), one_each))


def test_within_group_spearman_centres_the_ranks_taken_over_all_models():
    """Worked by hand: x ranks over all six models are [0, 4, 5 | 1, 2, 3], centred in their groups
    [-3, 1, 2 | -1, 0, 1]; y's [0, 1, 2 | 5, 4, 3] centred [-1, 0, 1 | 1, 0, -1]; their correlation
    is 3 / √(16 × 4) = 0.375. Ranking within each group gives 0; centring raw values gives another."""
    x = np.array([1.0, 50.0, 60.0, 2.0, 3.0, 4.0])
    y = np.array([1.0, 2.0, 3.0, 6.0, 5.0, 4.0])
    assert within_group_spearman(x, y, np.array([0, 0, 0, 1, 1, 1])) == pytest.approx(0.375)


def test_claim3_reads_every_model_of_the_arms_not_only_the_eligible_ones():
    """Claim 3 asks what an intervention does to the models it produces, learned or not."""
    records = [gain_record("baseline", k, 0.0, residual=0.5, aa=0.6) for k in range(5)]  # none converged
    records += [gain_record("mixed_init", k, 0.4) for k in range(5)]
    (row,) = score_rows(records, 3, "promote")
    assert row["n"] == 10 and row["value"] == pytest.approx(0.4)


def test_claim2_is_the_correlation_within_interventions_and_shows_the_pooled_one():
    records = []
    # mixed_init: AA near 1 and accurate; random_budget: AA near 0.2 and failing. Both promote path
    # independence: grouped by that effect rather than by intervention, the two would pool.
    for k in range(5):
        records.append(make_record(intervention="mixed_init", seed=k, residual=1e-4,
                                   aa={**dict.fromkeys(ORDER, 0.9), HARD: 0.90 + 0.02 * k},
                                   accuracy={**dict.fromkeys(ORDER, 0.95), HARD: 0.99 - 0.01 * k}))
        records.append(make_record(intervention="random_budget", seed=k, residual=1e-4,
                                   aa={**dict.fromkeys(ORDER, 0.2), HARD: 0.10 + 0.02 * k},
                                   accuracy={**dict.fromkeys(ORDER, 0.95), HARD: 0.05 - 0.01 * k}))
    (row,) = rows(records, 2)
    assert row["value"] == pytest.approx(-1.0)  # pooled it would be about +0.5
    assert "pooled ρ = 0.4" in row["statistic"] or "pooled ρ = 0.5" in row["statistic"]
    assert ": 10 (of 10: 10 learned, 10 converged, 0 collapsed" in row["statistic"]


# --- who is scored -------------------------------------------------------------------------------

def test_claim1_has_a_row_per_arm_and_a_penalizing_arm_is_in_neither():
    records = ([gain_record("mixed_init", k, 0.40) for k in range(3)]
               + [gain_record("random_budget", k, 0.30) for k in range(3)]
               + [gain_record("baseline", k, 0.05) for k in range(5)]
               + [gain_record("anti_alignment", k, -0.5) for k in range(5)])
    promote, = rows(records, 1, "promote")
    baseline, = rows(records, 1, "baseline")
    assert promote["value"] == pytest.approx(0.35) and promote["n"] == 6
    assert baseline["value"] == pytest.approx(0.05) and baseline["n"] == 5
    assert ": 6 (of 6: 6 learned, 6 converged, 0 collapsed)" in promote["statistic"]


def test_claims_read_only_models_that_learned_converged_and_did_not_collapse():
    eligible = [gain_record("baseline", k, 0.3) for k in range(5)]
    not_learned = gain_record("baseline", 5, -0.3, in_dist=0.5)
    moving = gain_record("baseline", 6, -0.3, residual=10 * claims.CONVERGED_RESIDUAL)
    overflowed = gain_record("baseline", 7, -0.3, residual=float("nan"))
    # in-distribution 0.95 at the training budget, 0.5 at the largest: more iterations undo it
    collapsed = make_record(intervention="baseline", seed=8, residual=1e-4,
                            accuracy={**dict.fromkeys(ORDER, [0.95] * TRAIN + [0.5] * (MAX - TRAIN)),
                                      HARD: [0.3] * TRAIN + [0.0] * (MAX - TRAIN)})
    records = [*eligible, not_learned, moving, overflowed, collapsed]
    (row,) = rows(records, 1, "baseline")
    assert row["value"] == pytest.approx(0.3) and row["n"] == 5
    assert ": 5 (of 9: 8 learned, 7 converged, 1 collapsed)" in row["statistic"]
    # just below the tolerance counts as converged: the residual is read at the largest budget
    edge = gain_record("baseline", 6, 0.3, residual=0.9 * claims.CONVERGED_RESIDUAL)
    assert rows([*eligible, edge], 1, "baseline")[0]["n"] == 6


def test_the_residual_is_read_at_the_largest_budget_not_the_training_one():
    record = gain_record("baseline", 0, 0.3)
    record["splits"]["in_distribution"]["residual_median"] = [0.5] * (MAX - 1) + [1e-5]  # settles at the end
    late = gain_record("baseline", 1, 0.3)
    late["splits"]["in_distribution"]["residual_median"] = [1e-5] * (MAX - 1) + [0.5]  # moves again at the end
    from implicit_repro.results.collect import summary_frame

    outcomes = claims.model_outcomes(summary_frame([record, late])).set_index("seed")
    assert outcomes.loc[0, "converged"] and not outcomes.loc[1, "converged"]


def test_training_outcome_counts_converged_collapsed_and_eligible_models():
    records = [gain_record("baseline", 0, 0.1), gain_record("baseline", 1, 0.1, residual=0.2),
               gain_record("baseline", 2, 0.1, in_dist=0.3),
               make_record(intervention="baseline", seed=3, residual=1e-4,
                           accuracy={**dict.fromkeys(ORDER, [0.95] * TRAIN + [0.2] * (MAX - TRAIN))}),
               make_record(intervention="baseline", seed=4, status="diverged")]
    out = claims.training_outcome(records).iloc[0]
    assert (out["models"], out["diverged"], out["learned"], out["converged"], out["collapsed"], out["eligible"]) \
        == (5, 1, 3, 3, 1, 1)
    text = "\n".join(claims.training_outcome_markdown(records))
    assert "| 3 of 4 | 3 of 4 | 1 | 1 |" in text


def test_an_arm_whose_models_are_not_equilibrium_models_cannot_be_scored_and_says_why():
    """Six baseline models learned but none converged: more seeds of the recipe would not help, so
    the row is "cannot be scored", not "too few models"; four trained models are too few."""
    stuck = [gain_record("baseline", k, 0.3, residual=0.2) for k in range(6)]
    (row,) = score_rows(stuck, 1, "baseline")
    assert row["verdict"] == "cannot be scored" and "of 6: 6 learned, 0 converged" in row["statistic"]
    (few,) = score_rows([gain_record("baseline", k, 0.3) for k in range(4)], 1, "baseline")
    assert few["verdict"] == "too few models"
    (claim2,) = score_rows(stuck + [gain_record("mixed_init", k, 0.3) for k in range(6)], 2)
    assert claim2["verdict"] == "cannot be scored" and claim2["n"] == 6


def score_rows(records, claim, part=None):
    import yaml
    from conftest import ROOT
    from implicit_repro.results.scorecard import score

    card = score(claims.scorecard(records), yaml.safe_load((ROOT / "config/papers.yaml").read_text()))
    card = card[card["claim"] == claim]
    return (card if part is None else card[card["part"] == part]).to_dict("records")


def test_claim3_penalize_moves_to_the_hardest_split_where_the_baseline_is_off_the_floor():
    """The baseline solves 30% of harder1 and nothing of harder2: a penalizing arm can only show on
    harder1. Read on harder2, the difference would be pinned at 0 and never decided."""
    def model(intervention, seed, harder1):
        aa = {"baseline": 0.8, "anti_alignment": 0.5}.get(intervention, 1.0)  # each arm moved AA its way
        return make_record(intervention=intervention, seed=seed, residual=1e-4, aa=aa,
                           accuracy={"in_distribution": 0.95, "harder1": harder1 + 0.002 * seed, "harder2": 0.0})
    records = [model("baseline", k, 0.3) for k in range(5)] + [model("anti_alignment", k, 0.1) for k in range(5)]
    (row,) = score_rows(records, 3, "penalize")
    assert row["value"] == pytest.approx(-0.2) and row["verdict"] == "replicated"
    assert "on harder1, the hardest split whose baseline mean accuracy is at least 0.05" in row["statistic"]
    floor = [model("baseline", k, 0.0) for k in range(5)] + [model("anti_alignment", k, 0.0) for k in range(5)]
    (row,) = score_rows(floor, 3, "penalize")
    assert row["verdict"] == "cannot be scored" and "at the floor on every harder split" in row["statistic"]
    (promote,) = score_rows(floor + [model("mixed_init", k, 0.5) for k in range(5)], 3, "promote")
    assert HARD in promote["statistic"] and promote["verdict"] == "not replicated"  # harder2 stays 0 for all


def test_claim3_cannot_be_scored_where_the_intervention_did_not_move_path_independence():
    """The manipulation check: an arm whose AA sits where the baseline's does (or moved the wrong way)
    did not promote or penalize path independence, so its accuracy says nothing about the claim, however
    large the difference. The same accuracies with AA moved the named way give a verdict."""
    def arms(arm, arm_aa, base_aa, arm_acc):
        return ([gain_record("baseline", k, 0.0, aa=base_aa) for k in range(5)]
                + [gain_record(arm, k, arm_acc - 0.3 + 0.01 * k, aa=arm_aa) for k in range(5)])

    for kind, arm, acc, moved, unmoved, backwards in (("promote", "mixed_init", 0.7, (0.9, 0.8), (0.82, 0.8),
                                                        (0.6, 0.8)),
                                                       ("penalize", "anti_alignment", 0.1, (0.7, 0.8), (0.78, 0.8),
                                                        (0.95, 0.8))):
        (row,) = score_rows(arms(arm, *moved, acc), 3, kind)
        assert row["verdict"] == "replicated", row
        assert f"mean AA {moved[0]:.3f} against the baseline's {moved[1]:.3f}" in row["statistic"]
        for arm_aa, base_aa in (unmoved, backwards):
            (row,) = score_rows(arms(arm, arm_aa, base_aa, acc), 3, kind)
            assert row["verdict"] == "cannot be scored", row
            assert "did not move path independence" in row["statistic"]
            assert f"mean AA {arm_aa:.3f} against the baseline's {base_aa:.3f}" in row["statistic"]
            assert row["value"] == pytest.approx(acc + 0.02 - 0.3, abs=1e-9)  # still shown, not judged


def test_claim3_manipulation_check_says_how_many_models_have_an_aa():
    """A model whose state overflowed has no AA: the arm's mean rests on the others, and the row says so."""
    records = [gain_record("baseline", k, 0.0, aa=0.8) for k in range(5)]
    records += [gain_record("anti_alignment", k, -0.2 - 0.01 * k, aa=0.5 if k < 2 else float("nan")) for k in range(5)]
    (row,) = score_rows(records, 3, "penalize")
    assert "mean AA 0.500 (2 of 5 models with an AA) against the baseline's 0.800" in row["statistic"]
    assert row["verdict"] == "replicated"


def test_claim3_manipulation_check_reads_aa_on_the_row_s_split():
    """The arm moved AA in-distribution but not on the harder split the row compares: not a test there."""
    def aa(moved_where):
        return {**dict.fromkeys(ORDER, 0.8), moved_where: 1.0}

    records = [gain_record("baseline", k, 0.0, aa=0.8) for k in range(5)]
    records += [gain_record("mixed_init", k, 0.4 + 0.01 * k, aa=aa("in_distribution")) for k in range(5)]
    (row,) = score_rows(records, 3, "promote")
    assert row["verdict"] == "cannot be scored" and f"mean AA 0.800 against the baseline's 0.800 on {HARD}" in \
        row["statistic"]
    records[5:] = [gain_record("mixed_init", k, 0.4 + 0.01 * k, aa=aa(HARD)) for k in range(5)]
    assert score_rows(records, 3, "promote")[0]["verdict"] == "replicated"


def test_aa_moved_needs_the_named_direction_by_the_margin():
    assert claims.aa_moved("promote", 0.85, 0.8) and not claims.aa_moved("promote", 0.84, 0.8)
    assert claims.aa_moved("penalize", 0.75, 0.8) and not claims.aa_moved("penalize", 0.85, 0.8)
    assert not claims.aa_moved("promote", float("nan"), 0.1)


# --- rows whose statistic the design fixes --------------------------------------------------------

def test_claim1_on_a_split_already_at_rest_at_the_training_budget_cannot_be_scored():
    """Every model at its fixed point on the harder split by the training budget gains exactly 0: the
    split asks for no more computation, so the row says so instead of "not replicated". Models that
    gain nothing while still moving there are evidence against the claim and keep their verdict."""
    at_rest = [gain_record("baseline", k, 0.0) for k in range(6)]  # residual 1e-4 from the first iteration
    (row,) = score_rows(at_rest, 1, "baseline")
    assert row["verdict"] == "cannot be scored" and "already at its fixed point on " + HARD in row["statistic"]
    moving = [gain_record("baseline", k, 0.0) for k in range(6)]
    for record in moving:  # in-distribution converged by the largest budget; the harder split moving at training's
        record["splits"][HARD]["residual_median"] = [0.1] * TRAIN + [1e-4] * (MAX - TRAIN)
    (row,) = score_rows(moving, 1, "baseline")
    assert row["verdict"] == "not replicated" and row["value"] == 0
    gaining = [gain_record("baseline", k, 0.2) for k in range(6)]  # at rest by the median, yet gaining: judged
    assert score_rows(gaining, 1, "baseline")[0]["verdict"] == "replicated"


def test_claim2_with_the_same_aa_for_every_model_cannot_be_scored_and_says_why():
    same = [make_record(intervention=arm, seed=k, residual=1e-4, aa=1.0,
                        accuracy={**dict.fromkeys(ORDER, 0.95), HARD: 0.5 + 0.04 * k})
            for arm in ("baseline", "mixed_init") for k in range(5)]
    (row,) = score_rows(same, 2)
    assert row["verdict"] == "cannot be scored" and "AA is 1.000 for every one of these models" in row["statistic"]
    # the same models with AA varying inside the arms are judged
    varied = [make_record(intervention=arm, seed=k, residual=1e-4, aa={**dict.fromkeys(ORDER, 1.0), HARD: 0.5 + 0.1 * k},
                          accuracy={**dict.fromkeys(ORDER, 0.95), HARD: 0.5 + 0.04 * k})
              for arm in ("baseline", "mixed_init") for k in range(5)]
    assert score_rows(varied, 2)[0]["verdict"] == "replicated"


# --- is the harder split harder in computation? ----------------------------------------------------

def settling(at: int, tail: float = 1e-5) -> list[float]:
    """A residual curve above the tolerance before budget ``at`` (1-based), at ``tail`` from it on."""
    return [0.5] * (at - 1) + [tail] * (MAX - at + 1)


def test_iterations_to_rest_is_the_first_budget_at_the_tolerance():
    assert claims.iterations_to_rest(settling(5)) == 5
    assert claims.iterations_to_rest(settling(1)) == 1
    assert claims.iterations_to_rest([0.5] * MAX) == float("inf")
    assert claims.iterations_to_rest([float("nan")] * MAX) == float("inf")  # an overflowed state never rests
    at_tol = [0.5, claims.CONVERGED_RESIDUAL, 0.5] + [1e-5] * (MAX - 3)
    assert claims.iterations_to_rest(at_tol) == 2  # "at most" the tolerance; later wiggles do not matter


def test_computation_needed_reads_converged_models_on_the_hardest_split():
    """Two converged models come to rest at 3 and 5 in-distribution and 6 and 8 on the hardest
    split; a model that never converges in-distribution (resting late on the hardest split) is left
    out; the middle split is not the one read."""
    def model(seed, ind, mid, hard):
        record = make_record(intervention="mixed_init", seed=seed)
        for split, curve in zip(ORDER, (ind, mid, hard)):
            record["splits"][split]["residual_median"] = curve
        return record
    records = [model(0, settling(3), settling(2), settling(6)), model(1, settling(5), settling(2), settling(8)),
               model(2, [0.5] * MAX, settling(2), settling(MAX))]
    assert len(ORDER) == 3
    assert claims.computation_needed(records) == {"prefix_sums": (4.0, 7.0, HARD)}
    text = "\n".join(claims.training_outcome_markdown(records))
    assert f"| 4 → 7 ({HARD}) |" in text
    never = [model(0, settling(3), settling(2), [0.5] * MAX), model(1, settling(5), settling(2), [0.5] * MAX)]
    assert f"| 4 → > {MAX} ({HARD}) |" in "\n".join(claims.training_outcome_markdown(never))
