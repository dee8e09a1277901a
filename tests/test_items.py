"""The items of anil2022, each built from small synthetic metrics records with known numbers."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from implicit_repro.cli import main
from implicit_repro.papers.anil2022 import claims
from implicit_repro.papers.anil2022 import correlation as anil2022_correlation
from implicit_repro.papers.anil2022 import generalization as anil2022
from implicit_repro.papers.anil2022 import stress as anil2022_stress
from implicit_repro.papers.anil2022.items import builder
from implicit_repro.results.build import build_item as build_any_item
from implicit_repro.results.reported import load_papers

PAPERS = load_papers(ROOT / "config/papers.yaml")
REPORTED = PAPERS["anil2022"]["reported"]
TRAIN, MAX = 4, 16
ORDER = ("in_distribution", "harder1", "harder2")


def curve(early: float, late: float, switch: int = 2 * TRAIN) -> list[float]:
    """An accuracy curve over MAX iterations: ``early`` before iteration ``switch``, ``late`` from it."""
    return [early if i + 1 < switch else late for i in range(MAX)]


def make_record(task="prefix_sums", intervention="baseline", seed=0, *, gradient="unrolled", status="ok",
                aa=1.0, accuracy=0.5, residual=1e-4, attack=None, examples=None, dynamics=None,
                traces=None, order=ORDER):
    """One metrics.json record. ``aa``, ``accuracy`` (a number or a curve), ``residual`` and
    ``examples`` ((per-example AA, correct) lists) may be given per split as a dict."""
    def at(value, split):
        return value[split] if isinstance(value, dict) else value

    record = {"paper": "anil2022", "task": task, "intervention": intervention, "gradient": gradient, "seed": seed,
              "status": status, "train_iters": TRAIN, "max_iters": MAX, "aa_iters": MAX,
              "split_order": list(order), "splits": {}}
    if status != "ok":
        return record
    for split in order:
        acc = at(accuracy, split)
        aa_examples, correct = at(examples, split) or ([at(aa, split)] * 4, [True, False, True, False])
        record["splits"][split] = {
            "n_examples": 100, "accuracy": acc if isinstance(acc, list) else [acc] * MAX,
            "residual_median": [at(residual, split)] * MAX, "aa": at(aa, split), "aa_all_pairs": at(aa, split),
            "aa_per_example": aa_examples, "correct_at_aa_iters": correct,
            "dynamics": dynamics or {"fixed_point": 3, "cycle": 1, "moving": 0},
            "cycle_periods": [2] if (dynamics or {"cycle": 1})["cycle"] else [],
            "residual_traces": traces if traces is not None else [[10.0 ** -i for i in range(MAX)]] * 2,
        }
    if attack is not None:
        record["splits"]["in_distribution"]["attack"] = {"n_examples": 8, **attack}
    return record


def attack(aa_before, aa_after, acc_zero=1.0, acc_before=0.9, acc_after=0.1):
    return {"aa_before": aa_before, "aa_after": aa_after, "accuracy_zero": acc_zero,
            "accuracy_before": acc_before, "accuracy_after": acc_after}


def cell(frame, **keys):
    match = pd.Series(True, index=frame.index)
    for key, value in keys.items():
        match &= frame[key] == value
    assert match.sum() == 1, (keys, match.sum())
    return frame[match].iloc[0]


def written(stem, kind="table"):
    suffixes = ("csv", "md", "tex") if kind == "table" else ("png", "pdf")
    return all(stem.with_suffix(f".{s}").stat().st_size > 0 for s in suffixes)


# --- registry and workflow ---------------------------------------------------------------------

def test_every_item_of_papers_yaml_has_a_builder_named_after_it():
    # The ids live once, in config/papers.yaml; each paper's items module has a function per id.
    for paper, spec in PAPERS.items():
        for item, meta in spec["items"].items():
            assert item.startswith("table" if meta["kind"] == "table" else "fig_"), item
    assert all(callable(builder(item)) for item in ANIL2022)
    assert builder("not_an_item") is None and builder("split_orders") is None


ANIL2022 = {item: meta["kind"] for item, meta in PAPERS["anil2022"]["items"].items()}


def build_item(item, records, papers, scale, stem):
    return build_any_item("anil2022", item, records, papers, scale, stem)


def test_cli_dispatches_through_the_registry(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(make_record(gradient="ift")))
    main(["report", "--paper", "anil2022", "table2_phantom_vs_ift", "--metrics", str(path), "--papers", str(ROOT / "config/papers.yaml"),
          "--scale", "smoke", "--out-stem", str(tmp_path / "t2")])
    assert written(tmp_path / "t2")
    # A scale with no gradient study hands table2 no metrics file at all.
    main(["report", "--paper", "anil2022", "table2_phantom_vs_ift", "--metrics", "--papers", str(ROOT / "config/papers.yaml"),
          "--scale", "small", "--out-stem", str(tmp_path / "empty")])
    assert "No gradient study was configured" in (tmp_path / "empty.md").read_text()
    with pytest.raises(SystemExit) as exc:
        main(["report", "--paper", "anil2022", "table_nonsense", "--metrics", str(path), "--scale", "smoke",
              "--out-stem", str(tmp_path / "x")])
    assert exc.value.code == 2


# --- table1_adversarial_init -------------------------------------------------------------------

def test_table1_groups_models_by_effect_and_attaches_reported_cells(tmp_path):
    records = [
        make_record("prefix_sums", "baseline", 0, attack=attack(0.5, 0.2)),
        make_record("prefix_sums", "baseline", 1, attack=attack(0.7, 0.4)),
        make_record("prefix_sums", "anti_alignment", 0, attack=attack(0.1, 0.0)),
        make_record("prefix_sums", "mixed_init", 0, attack=attack(0.99, 0.98, acc_after=1.0)),
        make_record("prefix_sums", "random_budget", 0, status="diverged"),
        make_record("digits", "baseline", 0),  # evaluated without the attack
    ]
    frame = anil2022_stress.table1_adversarial_init(records, REPORTED["table1_adversarial_init"], "smoke",
                                                    tmp_path / "t1")
    assert written(tmp_path / "t1")
    non_pi = cell(frame, task="prefix_sums", model="not_path_independent", metric="aa", when="before_attack")
    assert non_pi["reproduced"] == pytest.approx((0.5 + 0.7 + 0.1) / 3)
    assert non_pi["interventions"] == "anti_alignment, baseline" and non_pi["n_attacked"] == 3
    assert (non_pi["reported"], non_pi["reported_provenance"]) == (0.62, "second-hand")
    after = cell(frame, task="prefix_sums", model="not_path_independent", metric="aa", when="after_attack")
    assert after["reproduced"] == pytest.approx(0.2) and after["reported"] == 0.18
    pi = cell(frame, task="prefix_sums", model="path_independent", metric="accuracy", when="after_attack")
    assert pi["reproduced"] == 1.0 and np.isnan(pi["reproduced_std"])  # one attacked model: no std
    assert (pi["n_models"], pi["n_diverged"], pi["n_attacked"]) == (2, 1, 1)
    assert pi["reported"] == 1.0
    zero = cell(frame, task="prefix_sums", model="path_independent", metric="accuracy", when="zero_init")
    assert zero["reproduced"] == 1.0 and np.isnan(zero["reported"]) and zero["reported_provenance"] == "unknown"
    # mazes has no results of ours but reported numbers: its rows show them beside an empty value
    mazes = cell(frame, task="mazes", model="not_path_independent", metric="accuracy", when="before_attack")
    assert np.isnan(mazes["reproduced"]) and mazes["reported"] == 0.8712
    assert "digits" not in set(frame["task"])
    md = (tmp_path / "t1.md").read_text()
    assert "No attack results" in md and "digits" in md and "promotes path independence" in md
    assert "(paper 0.62)" in md


# --- table2_phantom_vs_ift ---------------------------------------------------------------------

def test_table2_reads_the_training_budget_residual_and_the_hardest_split(tmp_path):
    records = [
        make_record(gradient="phantom", seed=0, residual={"in_distribution": 0.2, "harder1": 9, "harder2": 9},
                    aa={"in_distribution": 0.9, "harder1": 0.0, "harder2": 0.8},
                    accuracy={"in_distribution": curve(0.0, 1.0), "harder1": 0.0, "harder2": curve(0.2, 0.6)}),
        make_record(gradient="phantom", seed=1, residual=0.4, aa=0.7, accuracy=0.8),
        make_record(gradient="ift", seed=0, residual=0.05, aa=1.0, accuracy=1.0),
    ]
    records[0]["splits"]["in_distribution"]["residual_median"][TRAIN - 1] = 0.3  # the value at the training budget
    frame = anil2022_stress.table2_phantom_vs_ift(records, REPORTED["table2_phantom_vs_ift"], "smoke", tmp_path / "t2")
    residual = cell(frame, gradient="phantom", metric="residual", split="in_distribution")
    assert residual["reproduced"] == pytest.approx((0.3 + 0.4) / 2)
    assert (residual["reported"], residual["reported_provenance"]) == (11.83, "second-hand")
    hard_acc = cell(frame, gradient="phantom", metric="accuracy", split="harder")
    assert hard_acc["reproduced"] == pytest.approx((0.6 + 0.8) / 2) and hard_acc["reported"] == 0.9988
    assert hard_acc["harder_split"] == "harder2"
    assert cell(frame, gradient="phantom", metric="aa", split="harder")["reproduced"] == pytest.approx(0.75)
    ift = cell(frame, gradient="ift", metric="aa", split="in_distribution")
    assert ift["reproduced"] == 1.0 and np.isnan(ift["reproduced_std"]) and ift["reported"] == 0.99
    md = (tmp_path / "t2.md").read_text()
    assert "RELATIVE residual" in md and "not comparable" in md and "harder2" in md


def test_table2_without_a_gradient_study_still_shows_the_papers_numbers(tmp_path):
    frame = anil2022_stress.table2_phantom_vs_ift([], REPORTED["table2_phantom_vs_ift"], "small", tmp_path / "t2")
    assert written(tmp_path / "t2")
    assert set(frame["gradient"]) == {"phantom", "ift"} and frame["reproduced"].isna().all()
    assert (frame["reported_provenance"] == "second-hand").all() and (frame["n_models"] == 0).all()
    assert "No gradient study was configured" in (tmp_path / "t2.md").read_text()


# --- AA vs accuracy across models --------------------------------------------------------------

def correlation_records():
    """Five models: AA orders accuracy at the largest budget perfectly (rho = 1) and reversely at the
    training budget (rho = -1); at 2x the budget two models swap (rho = 0.9)."""
    aa = [0.2, 0.4, 0.6, 0.8, 1.0]
    at_train = [0.5, 0.4, 0.3, 0.2, 0.1]
    at_2x = [0.1, 0.3, 0.2, 0.4, 0.5]
    at_max = [0.2, 0.4, 0.6, 0.8, 1.0]
    records = []
    for k in range(5):
        acc = [at_train[k]] * (2 * TRAIN - 1) + [at_2x[k]] * (4 * TRAIN - 2 * TRAIN) + [at_max[k]]
        interventions = ("baseline", "mixed_init")
        records.append(make_record(intervention=interventions[k % 2], seed=k // 2, aa={**dict.fromkeys(ORDER, 0.5),
                                   "harder2": aa[k]}, accuracy={**dict.fromkeys(ORDER, 0.5), "harder2": acc}))
    return records


def test_correlation_table_gives_spearman_per_depth(tmp_path):
    records = correlation_records() + [make_record(seed=9, status="diverged")]
    frame = anil2022_correlation.table_aa_accuracy_correlation(records, [], "smoke", tmp_path / "corr")
    assert written(tmp_path / "corr")
    by_depth = frame.set_index("depth")
    # depths: 1x train (4), 2x train (8), 4x train = max (16)
    assert list(by_depth.index) == [TRAIN, 2 * TRAIN, MAX]
    assert by_depth.loc[MAX, "depth_label"] == "4x train = max"
    assert by_depth.loc[TRAIN, "spearman"] == pytest.approx(-1.0)
    assert by_depth.loc[2 * TRAIN, "spearman"] == pytest.approx(0.9)
    assert by_depth.loc[MAX, "spearman"] == pytest.approx(1.0)
    assert (by_depth.loc[MAX, "ci_low"], by_depth.loc[MAX, "ci_high"]) == pytest.approx((1.0, 1.0))
    assert (frame["n_models"] == 5).all() and (frame["split"] == "harder2").all()
    assert (frame["reported_provenance"] == "unknown").all()
    fig = anil2022_correlation.fig_aa_vs_accuracy(records, "smoke", tmp_path / "fig")
    assert written(tmp_path / "fig", "figure") and len(fig) == 15


def test_depths_clip_to_the_largest_budget():
    assert anil2022_correlation.depths(6, 12) == {6: "1x train", 12: "2x train = 4x train = max"}
    assert anil2022_correlation.depths(4, 100) == {4: "1x train", 8: "2x train", 16: "4x train", 100: "max"}


# --- per-example AA ----------------------------------------------------------------------------

def test_per_example_table_uses_eligible_models_only(tmp_path):
    """Claim 4's models: learned at the training budget, converged and not collapsed. Each excluded
    model below carries examples that would reverse the correlation if it were read."""
    good = ([0.9] * 12 + [0.2] * 12, [True] * 12 + [False] * 12)
    contrary = ([0.1] * 12 + [0.95] * 12, [True] * 12 + [False] * 12)
    few = ([0.9, 0.8, 0.3], [True, True, False])
    records = [
        make_record("prefix_sums", "baseline", 0, accuracy={**dict.fromkeys(ORDER, 0.2), "in_distribution": 0.95},
                    examples={**dict.fromkeys(ORDER, few), "harder2": good}),
        # not learned: in-distribution accuracy reaches LEARNED_ACCURACY only past the training budget
        make_record("prefix_sums", "mixed_init", 0,
                    accuracy={**dict.fromkeys(ORDER, 0.2), "in_distribution": [0.5] * TRAIN + [1.0] * (MAX - TRAIN)},
                    examples=contrary),
        # learned, but still moving at the largest budget (in-distribution residual above the tolerance)
        make_record("prefix_sums", "mixed_init", 1, accuracy={**dict.fromkeys(ORDER, 0.2), "in_distribution": 0.95},
                    residual={**dict.fromkeys(ORDER, 1e-4), "in_distribution": 10 * claims.CONVERGED_RESIDUAL},
                    examples=contrary),
        # learned at the training budget, collapsed at the largest
        make_record("prefix_sums", "mixed_init", 2,
                    accuracy={**dict.fromkeys(ORDER, 0.2), "in_distribution": [0.95] * TRAIN + [0.5] * (MAX - TRAIN)},
                    examples=contrary),
        make_record("mazes", "baseline", 0, accuracy=1.0, examples=few),
        make_record("digits", "baseline", 0, status="diverged"),
    ]
    frame = anil2022_correlation.table_per_example_aa(records, [], "smoke", tmp_path / "pe").set_index("task")
    assert written(tmp_path / "pe")
    ps = frame.loc["prefix_sums"]
    assert (ps["n_models"], ps["n_eligible_models"], ps["n_models_used"], ps["n_correct"], ps["n_wrong"]) == \
        (4, 1, 1, 12, 12)
    assert (ps["mean_aa_correct"], ps["mean_aa_wrong"]) == pytest.approx((0.9, 0.2))
    assert ps["within_model_r"] == pytest.approx(1.0)
    assert np.isnan(ps["ci_low"]) and "verdict" not in ps  # one model: no interval; verdicts are the scorecard's
    mazes = frame.loc["mazes"]
    assert (mazes["n_correct"], mazes["n_wrong"], mazes["n_models_used"]) == (2, 1, 0)  # below MIN_PER_CLASS
    assert np.isnan(mazes["within_model_r"])
    assert frame.loc["digits", "n_models"] == 0 and np.isnan(frame.loc["digits", "within_model_r"])
    anil2022_correlation.fig_per_example_aa(records, "smoke", tmp_path / "fig")
    assert written(tmp_path / "fig", "figure")


# --- interventions figure, convergence traces --------------------------------------------------

def test_fig_interventions_plots_the_numbers_of_table_interventions(tmp_path):
    records = [make_record(intervention="baseline", seed=s, aa=a, accuracy=c)
               for s, (a, c) in enumerate([(0.5, 0.2), (0.7, 0.4)])]
    records += [make_record(intervention="mixed_init", seed=0, aa=0.9, accuracy=0.8),
                make_record(intervention="anti_alignment", seed=0, status="diverged")]
    frame = anil2022.fig_interventions(records, "smoke", tmp_path / "fig")
    assert written(tmp_path / "fig", "figure")
    table = anil2022.table_interventions(records, [], "smoke", tmp_path / "table")
    shared = table.merge(frame, on=["task", "intervention", "split", "metric"], suffixes=("", "_fig"))
    assert len(shared) == len(frame) == 3 * 2  # 3 interventions x (AA, accuracy) on the hardest split
    assert np.allclose(shared["reproduced"], shared["reproduced_fig"], equal_nan=True)
    assert cell(frame, intervention="baseline", metric="aa")["reproduced"] == pytest.approx(0.6)
    assert np.isnan(cell(frame, intervention="mixed_init", metric="aa")["reproduced_std"])
    assert re.search(r"\| 0\.900 +\|", (tmp_path / "table.md").read_text())  # a single seed: no "± 0"


def test_convergence_traces_count_dynamics_and_survive_odd_traces(tmp_path):
    records = [
        make_record(intervention="baseline", seed=0, dynamics={"fixed_point": 5, "cycle": 0, "moving": 3}),
        make_record(intervention="baseline", seed=1, dynamics={"fixed_point": 2, "cycle": 6, "moving": 0}),
        make_record(intervention="mixed_init", seed=0, traces=[[1.0, 0.0, None, 1e-3] * 4]),
    ]
    frame = anil2022_stress.fig_convergence_traces(records, "smoke", tmp_path / "fig")
    assert written(tmp_path / "fig", "figure")
    base = frame[frame["intervention"] == "baseline"]
    assert (base["fixed_point"].sum(), base["cycle"].sum(), base["moving"].sum()) == (7, 6, 3)
    assert set(frame["split"]) == {"harder2"}


# --- edge cases --------------------------------------------------------------------------------

@pytest.mark.parametrize("item", sorted(ANIL2022))
def test_every_item_is_written_when_every_run_diverged(item, tmp_path):
    records = [make_record(task, i, s, status="diverged")
               for task in ("prefix_sums", "mazes") for i in ("baseline", "mixed_init") for s in (0, 1)]
    build_item(item, records, PAPERS, "smoke", str(tmp_path / item))
    assert written(tmp_path / item, ANIL2022[item])


@pytest.mark.parametrize("item", sorted(ANIL2022))
def test_every_item_is_written_for_a_single_seed(item, tmp_path):
    records = [make_record("prefix_sums", i, 0, attack=attack(0.9, 0.5)) for i in ("baseline", "mixed_init")]
    records = [{**r, "gradient": "ift"} for r in records] if item == "table2_phantom_vs_ift" else records
    build_item(item, records, PAPERS, "smoke", str(tmp_path / item))
    assert written(tmp_path / item, ANIL2022[item])


def test_scorecard_says_too_few_models_below_the_minimum_per_group():
    from implicit_repro.papers.anil2022.claims import scorecard
    from implicit_repro.results.reported import load_papers
    from implicit_repro.results.scorecard import MIN_PER_GROUP, score

    facts = load_papers(ROOT / "config/papers.yaml")

    def claim3(n_seeds):
        records = [make_record(intervention=i, seed=s, aa=aa, accuracy={**{split: 0.9 for split in ORDER},
                                                                      ORDER[-1]: acc})
                   for i, acc, aa in (("baseline", 0.1, 0.5), ("mixed_init", 0.8, 1.0)) for s in range(n_seeds)]
        # jitter so the bootstrap has variance to resample
        for k, r in enumerate(records):
            r["splits"][ORDER[-1]]["accuracy"] = [a + 0.01 * k for a in r["splits"][ORDER[-1]]["accuracy"]]
        return next(r for r in score(scorecard(records), facts).to_dict("records") if r["claim"] == 3)

    assert MIN_PER_GROUP == 5
    assert claim3(4)["verdict"] == "too few models" and claim3(4)["models_needed"] >= 5
    assert claim3(5)["verdict"] == "replicated"


def test_table2_shows_one_row_per_gradient_when_one_diverged(tmp_path):
    from implicit_repro.papers.anil2022.stress import table2_phantom_vs_ift

    records = [make_record(intervention="baseline", gradient="phantom"),
               make_record(intervention="baseline", gradient="ift", status="diverged")]
    table2_phantom_vs_ift(records, [], "small", tmp_path / "t2")
    md = (tmp_path / "t2.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| prefix_sums")]
    assert len(rows) == 2, md
    cells = {r.split("|")[2].strip(): [c.strip() for c in r.split("|")[3:5]] for r in rows}
    assert cells == {"phantom": ["1", "0"], "ift": ["1", "1"]}


def test_readme_training_outcome_counts_learned_and_diverged_models_per_task():
    from implicit_repro.papers.anil2022 import claims
    from implicit_repro.results import readme

    records = [
        make_record("mazes", seed=0, accuracy={"in_distribution": 0.95, "harder1": 0.1, "harder2": 0.0}),
        make_record("mazes", seed=1, accuracy={"in_distribution": 0.20, "harder1": 0.0, "harder2": 0.0}),
        make_record("mazes", seed=2, status="diverged"),
        make_record("prefix_sums", seed=0, accuracy={"in_distribution": curve(0.5, 1.0), "harder1": 1.0,
                                                      "harder2": 1.0}),
    ]
    frame = claims.training_outcome(records)
    outcome = frame.set_index("task")
    mazes = outcome.loc["mazes"]
    assert (mazes["models"], mazes["diverged"], mazes["learned"]) == (3, 1, 1)
    assert mazes["median"] == pytest.approx(0.575) and (mazes["min"], mazes["max"]) == (0.20, 0.95)
    # at the training budget (0.5), not after the extra test-time iterations (1.0)
    assert outcome.loc["prefix_sums", "learned"] == 0 and outcome.loc["prefix_sums", "max"] == 0.5
    from implicit_repro.results.scorecard import COLUMNS

    text = readme.render(PAPERS, set(), pd.DataFrame(columns=COLUMNS), "small", "",
                         {"anil2022": claims.training_outcome_markdown(records)})
    assert "| mazes | 3 | 1 | 0.575 | 0.200 | 0.950 | 1 of 2 |" in text
