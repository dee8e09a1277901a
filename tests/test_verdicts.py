"""The verdict engine on hand-made metrics: smallest effects of interest, power and fragility.

Each test is built so that a wrong engine fails it: a null that can never be "not replicated", a
smallest effect read with the wrong sign or from the wrong claim, a power estimate in the wrong unit,
a one-model verdict not flagged."""

import copy
import math

import numpy as np
import pytest
import yaml

from conftest import ROOT
from test_items import MAX, ORDER, TRAIN, make_record
from implicit_repro.errors import ReproError
from implicit_repro.papers.anil2022 import claims
from implicit_repro.results.scorecard import Evidence, judge, score, smallest_effect
from implicit_repro.results.stats import models_needed

PAPERS = yaml.safe_load((ROOT / "config/papers.yaml").read_text())
HARD = ORDER[-1]


def gains(values):
    """anil2022 models whose accuracy on the hardest split rises by ``values[k]`` past the training budget."""
    return [make_record(seed=k, accuracy={**dict.fromkeys(ORDER, 0.9), HARD: [0.3] * TRAIN + [0.3 + g] * (MAX - TRAIN)})
            for k, g in enumerate(values)]


def arm(intervention, seed, hard):
    """A model of ``intervention`` with the AA its name promises (claim 3's manipulation check) and
    accuracy ``hard`` on the hardest split."""
    aa = {"baseline": 0.7, "mixed_init": 1.0, "anti_alignment": 0.4}[intervention]
    return make_record(intervention=intervention, seed=seed, aa=aa, accuracy={**dict.fromkeys(ORDER, 0.9), HARD: hard})


def claim_row(records, claim, facts=PAPERS, part=""):
    card = score(claims.scorecard(records), facts)
    return card[(card["claim"] == claim) & (card["part"] == part)].iloc[0]


def mean(x):
    return float(np.mean(x))


# --- the three verdicts ------------------------------------------------------------------------

def test_a_true_null_with_many_models_is_not_replicated():
    rng = np.random.default_rng(0)
    row = claim_row(gains(rng.normal(0.0, 0.02, 40)), 1, part="baseline")
    assert row["verdict"] == "not replicated"  # CI about ±0.006 around 0, wholly below 0.05
    assert row["smallest_effect"] == 0.05 and row["half_width"] < 0.01


def test_a_null_with_few_models_is_inconclusive_and_says_how_many_would_do():
    rng = np.random.default_rng(1)
    row = claim_row(gains(rng.normal(0.0, 0.1, 5)), 1, part="baseline")
    assert row["verdict"] == "inconclusive"
    assert row["models_needed"] > 5 and row["half_width"] > 0.05


def test_a_reversed_effect_is_not_replicated():
    row = claim_row(gains(np.linspace(-0.3, -0.2, 6)), 1, part="baseline")
    assert row["verdict"] == "not replicated" and row["value"] < 0


def test_a_real_but_negligible_effect_is_not_replicated_and_a_large_one_is():
    assert claim_row(gains(np.linspace(0.01, 0.02, 8)), 1, part="baseline")["verdict"] == "not replicated"
    assert claim_row(gains(np.linspace(0.2, 0.3, 8)), 1, part="baseline")["verdict"] == "replicated"


def test_the_smallest_effect_is_read_on_the_claimed_side():
    """Penalizing must lower accuracy: a drop of 0.2 replicates. Comparing the raw CI (about
    [-0.21, -0.19]) with +0.05 would call it 'not replicated'."""
    records = [arm(i, s, acc + 0.004 * s) for i, acc in (("baseline", 0.5), ("anti_alignment", 0.3)) for s in range(6)]
    row = claim_row(records, 3, part="penalize")
    assert row["value"] == pytest.approx(-0.2) and row["expected_sign"] == -1
    assert row["verdict"] == "replicated"
    slight = [arm(i, s, acc + 0.001 * s) for i, acc in (("baseline", 0.5), ("anti_alignment", 0.49)) for s in range(6)]
    assert claim_row(slight, 3, part="penalize")["verdict"] == "not replicated"  # 0.01 < 0.05: too small


def test_the_smallest_effect_is_read_from_the_row_s_own_claim_and_part():
    facts = copy.deepcopy(PAPERS)
    facts["anil2022"]["claims"][1]["smallest_effect"]["value"] = 0.5
    facts["anil2022"]["claims"][3]["smallest_effect"]["promote"]["value"] = 0.5
    records = gains(np.linspace(0.2, 0.3, 8))
    assert claim_row(records, 1, part="baseline")["verdict"] == "replicated"
    assert claim_row(records, 1, facts, part="baseline")["verdict"] == "not replicated"  # 0.25 is below claim 1's new 0.5
    assert smallest_effect(facts, "anil2022", 3, "promote").value == 0.5
    assert smallest_effect(facts, "anil2022", 3, "penalize").value == 0.05
    assert smallest_effect(facts, "anil2022", 2).value == 0.5 and smallest_effect(facts, "anil2022", 4).value == 0.5


def test_every_tested_row_of_both_papers_has_a_pre_registered_smallest_effect_with_a_reason():
    import pandas as pd

    card = pd.read_csv(ROOT / "paper_results/scorecard.csv", keep_default_na=False, na_values=[""])
    tested = card[card["verdict"] != "not a hypothesis"]
    assert len(tested) > 20
    for r in tested.itertuples():
        effect = smallest_effect(PAPERS, r.paper, r.claim, r.part if isinstance(r.part, str) else "")
        assert effect.value == pytest.approx(r.smallest_effect) and len(effect.why) > 20, r


def test_every_claim_part_of_anil2022_gets_a_row_even_when_nothing_converged():
    """A task whose every run diverged still scores claim 3 per part (its smallest effects are per part)."""
    records = [make_record(seed=s, status="diverged") for s in range(3)]
    card = score(claims.scorecard(records), PAPERS)
    assert sorted(zip(card["claim"], card["part"])) == [(1, "baseline"), (1, "promote"), (2, ""), (3, "penalize"),
                                                         (3, "promote"), (4, "")]
    assert (card["verdict"] == "cannot be scored").all()


def test_a_missing_or_bad_smallest_effect_is_an_error_naming_the_key():
    facts = copy.deepcopy(PAPERS)
    del facts["anil2022"]["claims"][1]["smallest_effect"]
    with pytest.raises(ReproError, match=r"anil2022\.claims\.1\.smallest_effect: missing"):
        smallest_effect(facts, "anil2022", 1)
    with pytest.raises(ReproError, match="no entry for part 'mixed'"):
        smallest_effect(PAPERS, "anil2022", 3, "mixed")
    facts["anil2022"]["claims"][2]["smallest_effect"]["value"] = -0.5
    with pytest.raises(ReproError, match=r"claims\.2\.smallest_effect\.value: -0\.5 is not a number above 0"):
        smallest_effect(facts, "anil2022", 2)


# --- power -------------------------------------------------------------------------------------

def exact_sample(mu: float, sd: float, n: int) -> np.ndarray:
    """n values with sample mean ``mu`` and sample standard deviation (ddof 1) ``sd`` exactly."""
    z = np.linspace(-1, 1, n)
    z = (z - z.mean()) / z.std(ddof=1)
    return mu + sd * z


@pytest.mark.parametrize("delta, sd, n", [(0.1, 0.1, 6), (0.05, 0.1, 12), (0.3, 0.5, 8)])
def test_models_needed_matches_the_two_sample_power_formula(delta, sd, n):
    """Two groups whose true difference is delta and spread sd: 80% power to exclude 0 at 95% needs
    2 sd² (z_.975 + z_.8)² / delta² models per group (delta is above the smallest effect here)."""
    a, b = exact_sample(delta, sd, n), exact_sample(0.0, sd, n)
    evidence = Evidence((a, b), lambda x, y: mean(x) - mean(y))
    low, high = evidence.ci()
    estimate = models_needed(n, (high - low) / 2, delta, smallest_effect=0.01)
    analytic = 2 * sd**2 * (1.959964 + 0.841621) ** 2 / delta**2
    assert estimate == pytest.approx(analytic, rel=0.2), (estimate, analytic)
    # per group, not in all: the total (2n) would double the answer
    assert estimate < 1.5 * analytic


def test_models_needed_aims_at_the_nearer_boundary():
    """An estimate near 0 resolves by clearing the smallest effect from below: aiming at 0 instead
    would ask for far more models."""
    assert models_needed(10, 0.1, 0.0, 0.05) == pytest.approx(math.ceil(10 * (0.1 / 1.959964 * math.sqrt(10 / 9)
                                                                           * 2.801585 / 0.05) ** 2))
    # 0.04 is 0.04 from 0 and 0.01 from 0.05: it aims at 0, as 0.01 aims at 0.05; the midpoint is hardest
    assert models_needed(10, 0.1, 0.04, 0.05) == models_needed(10, 0.1, 0.01, 0.05) < models_needed(10, 0.1, 0.025, 0.05)


def test_an_inconclusive_row_shows_its_half_width_and_models_needed_and_a_decided_one_does_not():
    rng = np.random.default_rng(1)
    open_row = claim_row(gains(exact_sample(0.03, 0.1, 6)), 1, part="baseline")
    assert open_row["verdict"] == "inconclusive" and open_row["models_needed"] >= 6
    decided = claim_row(gains(np.linspace(0.2, 0.3, 8)), 1, part="baseline")
    assert decided["verdict"] == "replicated" and math.isnan(decided["models_needed"])
    assert decided["half_width"] == pytest.approx((decided["ci_high"] - decided["ci_low"]) / 2)


# --- fragility ---------------------------------------------------------------------------------

def test_a_verdict_one_model_drives_is_fragile_and_names_it():
    driven = claim_row(gains([0.01, 0.012, 0.011, 0.013, 0.014, 0.6]), 1, part="baseline")
    assert driven["verdict"] == "replicated" and driven["fragile"]
    assert driven["fragile_because"] == "without baseline seed 5: not replicated"
    robust = claim_row(gains(np.linspace(0.2, 0.3, 8)), 1, part="baseline")
    assert robust["verdict"] == "replicated" and not robust["fragile"] and robust["fragile_because"] == ""


def test_fragility_leaves_out_models_of_every_group():
    """In a two-group comparison the decisive model may sit in the second group (the baseline)."""
    base = [0.5, 0.5, 0.502, 0.501, 0.503, 0.2]
    records = [arm("baseline", s, a) for s, a in enumerate(base)]
    records += [arm("mixed_init", s, 0.52 + 0.001 * s) for s in range(6)]
    row = claim_row(records, 3, part="promote")
    assert row["fragile"] and "baseline seed 5" in row["fragile_because"]


def test_judge_skips_fragility_below_the_minimum():
    out = judge(Evidence((np.array([0.1, 0.2, 0.9]),), mean), 0.05)
    assert out["verdict"] == "too few models" and not out["fragile"] and out["models_needed"] >= 5
