"""song2023's items and claims on hand-made records whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from implicit_repro.papers.song2023.claims import song2023_scorecard
from implicit_repro.papers.song2023.grid import DEQ
from implicit_repro.papers.song2023.items import builder, design_frame, guideline_sentence
from implicit_repro.results.reported import load_papers
from implicit_repro.results.scorecard import score

PAPERS = load_papers(ROOT / "config/papers.yaml")

# The item ids and kinds, from the one data file that holds them.
ITEMS = {item: meta["kind"] for item, meta in load_papers(ROOT / "config/papers.yaml")["song2023"]["items"].items()}
MIB = 2 ** 20
SPLITS = ["in_distribution", "bits16", "bits24"]


def record(variant="wt", *, task="digits", studies=("wt_vs_deq",), depth=4, width=8, density=1.0, seed=0,
           acc=0.9, status="ok", match_density=None, params_total=1000, params_active=None, memory_bytes=MIB,
           seconds=1.0, step_seconds=0.01, n_epochs=3, curves=None, train_iters=None, val_acc=None,
           reached=None) -> dict:
    """One run's metrics record with every field the pipeline writes (JSON types only)."""
    deq = variant in DEQ
    epochs = [{"epoch": e, "status": "ok", "loss": 2.0 / (e + 1), "train_acc": 0.5 + 0.1 * e,
               "test_acc": 0.45 + 0.1 * e, "seconds": seconds, "fwd_nfe": 10.0 if deq else None,
               "bwd_nfe": 12.0 if deq else None, "residual": 1e-3 if deq else None} for e in range(n_epochs)]
    if status == "diverged":
        epochs[-1] = {"epoch": n_epochs - 1, "status": "diverged", "seconds": seconds}
    run = f"{variant}/L{depth}_w{width}_d{density:g}"
    return {
        "paper": "song2023", "task": task, "run": run, "variant": variant, "depth": depth, "width": width,
        "density": density, "seed": seed, "studies": list(studies),
        "match_densities": [] if match_density is None else [match_density],
        "status": status, "diverged_reason": "non-finite loss" if status == "diverged" else None,
        "params_total": params_total, "params_active": params_active if params_active is not None else params_total,
        "test_accuracy": acc if status == "ok" else None, "memory_bytes": memory_bytes,
        "val_accuracy": (acc if val_acc is None else val_acc) if status == "ok" else None,
        "solves_reaching_tol": (1.0 if reached is None else reached) if deq and status == "ok" else None,
        "memory_measure": "cpu_peak_live_bytes", "seconds_per_epoch": seconds, "step_seconds": step_seconds,
        "solver": {"fwd_nfe": 10.0, "bwd_nfe": 12.0, "residual": 1e-3} if deq else None, "epochs": epochs,
        "curves": curves if curves is not None and status == "ok" else {},
        "split_order": list(curves) if curves else ["test"],
        "train_iters": train_iters if train_iters is not None else depth,
    }


def curve(at_train: float, at_max: float, train_iters: int = 4, max_iters: int = 8) -> list[float]:
    """A curve whose value at index train_iters-1 is ``at_train`` and last is ``at_max``; the
    neighbours of the training budget differ from it, so a wrong index gives a wrong number."""
    c = [0.01 * i for i in range(max_iters)]
    c[train_iters - 1], c[-1] = at_train, at_max
    return c


def grid_records(all_diverged: str | None = "deq_jr") -> list[dict]:
    """A small grid with every study; every run of ``all_diverged`` diverged."""
    recs = []
    for seed in range(3):
        for i, v in enumerate(["wt", "untied", *DEQ]):
            recs.append(record(v, seed=seed, acc=0.9 - 0.05 * i + 0.01 * seed,
                               status="diverged" if v == all_diverged else "ok", memory_bytes=(i + 1) * MIB))
        for v in ("wt", "untied"):
            for depth in (1, 2, 4):
                for width in (4, 8):
                    recs.append(record(v, studies=["capacity"], depth=depth, width=width, seed=seed,
                                       acc=0.5 + 0.05 * depth + 0.01 * width))
        recs.append(record("wt", studies=["sparse_masks"], width=16, seed=seed, acc=0.95, params_total=4000))
        for d in (0.25, 0.5):
            for v in ("wt_masked_distinct", "wt_masked_shared"):
                recs.append(record(v, studies=["sparse_masks"], width=16, density=d, seed=seed, params_total=4000,
                                   params_active=int(4000 * d), acc=0.8 + 0.1 * d))
            recs.append(record("wt", studies=["sparse_masks"], width=int(16 * d), seed=seed, match_density=d,
                               params_total=int(4000 * d), acc=0.7))
            recs.append(record("untied", studies=["sparse_masks"], width=4, seed=seed, match_density=d,
                               params_total=int(4000 * d), acc=0.75))
        for depth in (2, 4):
            for width in (4, 8):
                for d in (0.5, 1.0):
                    v = "wt" if d == 1 else "wt_masked_distinct"
                    recs.append(record(v, studies=["design_guidelines"], depth=depth, width=width, density=d,
                                       seed=seed, params_active=int(width * width * 10 * d), acc=0.6 + 0.01 * depth))
        for v in ("wt", "wt_masked_distinct", "deq_ift"):
            curves = {s: curve(0.9 - 0.2 * k, 0.95 - 0.2 * k) for k, s in enumerate(SPLITS)}
            recs.append(record(v, task="prefix_sums", studies=["other_paradigm"], seed=seed, curves=curves,
                               density=0.5 if "masked" in v else 1.0))
        for v in ("wt", "deq_ift", "untied"):
            for depth in (1, 2, 4):
                recs.append(record(v, studies=["memory_vs_depth"], depth=depth, seed=seed, memory_bytes=depth * MIB))
    return recs


def build(item: str, records: list[dict], stem) -> object:
    kind, fn = ITEMS[item], builder(item)
    return fn(records, [], "smoke", str(stem)) if kind == "table" else fn(records, "smoke", str(stem))


def assert_written(item: str, stem) -> None:
    suffixes = ("csv", "md", "tex") if ITEMS[item] == "table" else ("png", "pdf")
    for s in suffixes:
        path = stem.parent / f"{stem.name}.{s}"
        assert path.exists() and path.stat().st_size > 0, path


def metrics_only(records: list[dict]) -> list[dict]:
    """Records as the metrics files alone give them: no wall-clock time, no per-epoch test accuracy, no
    memory where a run diverged in its first epoch."""
    out = []
    for r in records:
        r = {k: v for k, v in r.items() if k not in ("seconds_per_epoch", "step_seconds")}
        r["epochs"] = [{k: v for k, v in e.items() if k not in ("test_acc", "seconds")} for e in r["epochs"]]
        if r["status"] != "ok":
            r["memory_bytes"] = r["memory_measure"] = None
        out.append(r)
    return out


@pytest.mark.parametrize("case", ["grid", "all_wt_diverged", "metrics_only", "empty"])
def test_every_item_writes_its_files(tmp_path, case):
    records = {"grid": grid_records(), "all_wt_diverged": grid_records(all_diverged="wt"),
               "metrics_only": metrics_only(grid_records()), "empty": []}[case]
    for item in ITEMS:
        stem = tmp_path / item
        build(item, records, stem)
        assert_written(item, stem)
        assert callable(builder(item))
        if ITEMS[item] == "table":
            md = (tmp_path / f"{item}.md").read_text()
            assert "no number of the paper is known" in md and "smoke" in md
            frame = pd.read_csv(tmp_path / f"{item}.csv")
            assert {"reported", "reported_provenance", "scale"} <= set(frame.columns)
            assert (frame["reported_provenance"] == "unknown").all() and frame["reported"].isna().all()
    if case == "empty":
        assert "no run of study wt_vs_deq" in (tmp_path / "table_wt_vs_deq.md").read_text()
    rows = song2023_scorecard(records)
    assert sorted({r["claim"] for r in rows}) == [1, 2, 3, 4, 5]


def test_items_are_byte_reproducible(tmp_path):
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        build("fig_sparse_masks", grid_records(), tmp_path / run / "fig")
        build("table_design_guidelines", grid_records(), tmp_path / run / "table")
    for name in ("fig.png", "fig.pdf", "table.csv", "table.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_table_wt_vs_deq_mean_std_diverged_and_memory(tmp_path):
    records = [record("wt", seed=s, acc=a, memory_bytes=3 * MIB) for s, a in enumerate([0.8, 0.9, 1.0])]
    records.append(record("wt", seed=3, status="diverged", memory_bytes=3 * MIB))
    records += [record("deq_ift", seed=s, acc=0.5, memory_bytes=MIB // 2) for s in range(2)]
    frame = build("table_wt_vs_deq", records, tmp_path / "t").set_index("variant")
    assert frame.loc["wt", "accuracy_mean"] == pytest.approx(0.9)
    assert frame.loc["wt", "accuracy_std"] == pytest.approx(0.1)
    assert (frame.loc["wt", "n_diverged"], frame.loc["wt", "n_runs"]) == (1, 4)
    assert frame.loc["wt", "memory_mib"] == pytest.approx(3.0)
    assert frame.loc["deq_ift", "memory_mib"] == pytest.approx(0.5)
    assert list(frame.index) == ["wt", "deq_ift"]  # the fixed variant order
    md = (tmp_path / "t.md").read_text()
    assert "0.900 ± 0.100" in md and "1/4" in md and "cpu_peak_live_bytes" in md


def test_table_other_paradigm_reads_the_training_budget(tmp_path):
    curves = {"in_distribution": curve(0.7, 0.9), "bits16": curve(0.4, 0.2)}
    records = [record(v, task="prefix_sums", studies=["other_paradigm"], seed=s, curves=curves)
               for v in ("wt", "deq_ift") for s in range(2)]
    frame = build("table_other_paradigm", records, tmp_path / "t")
    wt = frame[frame["variant"] == "wt"].set_index("split")
    assert list(wt.index) == ["in_distribution", "bits16"]  # easiest first
    assert wt.loc["in_distribution", "acc_train_mean"] == pytest.approx(0.7)  # curve[train_iters - 1]
    assert wt.loc["in_distribution", "acc_max_mean"] == pytest.approx(0.9)
    assert wt.loc["in_distribution", "gain_mean"] == pytest.approx(0.2)
    assert wt.loc["bits16", "gain_mean"] == pytest.approx(-0.2)


def _claims(records: list[dict], fragility: bool = True) -> dict[int, list[dict]]:
    """The judged scorecard rows of song2023, per claim."""
    rows = score(song2023_scorecard(records), PAPERS, fragility=fragility).to_dict("records")
    assert all(r["paper"] == "song2023" for r in rows)
    return {c: [r for r in rows if r["claim"] == c] for c in range(1, 6)}


def wt_vs_deq(wt_acc, ift_acc, diverged_deq=0):
    recs = [record("wt", seed=s, acc=a) for s, a in enumerate(wt_acc)]
    recs += [record("deq_ift", seed=s, acc=a) for s, a in enumerate(ift_acc)]
    for i, v in enumerate(["deq_jr", "deq_phantom", "deq_jfb"]):  # worse on validation than deq_ift
        recs += [record(v, seed=s, val_acc=0.1, status="diverged" if i * 3 + s < diverged_deq else "ok")
                 for s in range(3)]
    return recs


def test_claim2_compares_wt_with_the_deq_best_on_validation_not_on_test():
    recs = [record("wt", seed=s, acc=a) for s, a in enumerate(FIVE_WT)]
    recs += [record("deq_ift", depth=20, seed=s, acc=a, val_acc=0.7) for s, a in enumerate(FIVE_DEQ)]
    recs += [record("deq_phantom", depth=20, seed=s, acc=0.99, val_acc=0.6) for s in range(5)]  # best on test only
    recs += [record("wt", depth=20, seed=s, acc=a + 0.05) for s, a in enumerate(FIVE_WT)]  # WT at the DEQ budget
    a, equal = _claims(recs)[2][:2]
    assert "deq_ift, the DEQ variant of highest mean validation accuracy (deq_ift 0.700, deq_phantom 0.600)" \
        in a["statistic"]
    assert a["value"] == pytest.approx(0.1) and "wt (L = 4)" in a["statistic"]
    assert equal["part"] == "(a) effectiveness, equal forward evaluations"
    assert equal["value"] == pytest.approx(0.15) and "(L = 20)" in equal["statistic"]


def test_claim1_is_a_benchmark_and_absent_studies_are_inconclusive():
    claims = _claims(wt_vs_deq([0.9] * 3, [0.8] * 3, diverged_deq=2))
    (one,) = claims[1]
    assert one["verdict"] == "not a hypothesis" and "not a hypothesis" in one["statistic"]
    assert one["value"] == 13 and one["n"] == 15  # converged runs of wt_vs_deq, of all
    for c in (3, 4, 5):
        assert claims[c] and all(math.isnan(r["value"]) and r["verdict"] == "inconclusive"
                                 and r["statistic"].endswith("(study not run at this scale)") for r in claims[c])


FIVE_WT, FIVE_DEQ = [0.9, 0.92, 0.94, 0.91, 0.93], [0.8, 0.82, 0.84, 0.81, 0.83]


def test_claim2a_value_and_sign():
    a = _claims(wt_vs_deq(FIVE_WT, FIVE_DEQ))[2][0]
    assert a["statistic"].startswith("(a)") and a["value"] == pytest.approx(0.1)
    assert a["verdict"] == "replicated" and a["ci_low"] > 0
    flipped = _claims(wt_vs_deq(FIVE_DEQ, FIVE_WT))[2][0]
    assert flipped["value"] == pytest.approx(-0.1) and flipped["verdict"] == "not replicated"


def test_claim2b_compares_the_seed_spread_and_counts_divergences():
    steady, wild = [0.90, 0.91, 0.92, 0.90, 0.91], [0.5, 0.9, 0.7, 0.6, 0.8]
    b = _claims(wt_vs_deq(steady, wild, diverged_deq=3))[2][2]
    assert b["statistic"].startswith("(b)") and b["part"] == "(b) stability"
    assert b["value"] == pytest.approx(math.log(np.std(wild, ddof=1) / np.std(steady, ddof=1)))
    assert b["verdict"] == "replicated"
    assert "diverged runs deq_ift 0/5, wt 0/5" in b["statistic"]
    flipped = _claims(wt_vs_deq(wild, steady))[2][2]
    assert flipped["value"] == pytest.approx(-b["value"]) and flipped["verdict"] == "not replicated"


def test_claim2_efficiency_ratios():
    recs = [record("wt", seed=s, seconds=1.0, memory_bytes=MIB) for s in range(3)]
    recs += [record("deq_ift", seed=s, seconds=2.0, memory_bytes=4 * MIB) for s in range(3)]
    c, d = _claims(recs)[2][3:5]
    assert c["value"] == pytest.approx(math.log(2)) and d["value"] == pytest.approx(math.log(4))
    assert "fig_memory_vs_depth" in d["statistic"]


def test_fewer_runs_than_the_minimum_give_too_few_models():
    a = _claims(wt_vs_deq(FIVE_WT, FIVE_DEQ[:4]))[2][0]  # 4 DEQ runs: one short of the minimum, 5
    assert a["value"] == pytest.approx(0.92 - 0.8175)
    assert a["verdict"] == "too few models" and a["models_needed"] >= 5
    assert a["ci_low"] < a["value"] < a["ci_high"]  # the interval is shown, the verdict withheld


def design_grid(seeds: int, effects=(0.0, 0.0, 0.0), noise: float = 0.01, rng=None) -> list[dict]:
    """The design grid depth (2, 4) × width (8, 16) × density (0.5, 1): accuracy 0.6 plus each
    factor's effect at its high level, plus seed noise (fixed offsets, or normal with ``rng``)."""
    recs = []
    for depth in (2, 4):
        for width in (8, 16):
            for d in (0.5, 1.0):
                for s in range(seeds):
                    jitter = noise * (s - (seeds - 1) / 2) if rng is None else noise * rng.standard_normal()
                    acc = 0.6 + effects[0] * (depth == 4) + effects[1] * (width == 16) + effects[2] * (d == 1) + jitter
                    recs.append(record("wt" if d == 1 else "wt_masked_distinct", studies=["design_guidelines"],
                                       depth=depth, width=width, density=d, seed=s, acc=float(acc),
                                       params_active=int(width * width * 10 * d)))
    return recs


def test_claim4_scores_each_factors_main_effect():
    rows = {r["part"]: r for r in _claims(design_grid(5, effects=(0.1, 0.0, -0.05)))[4]}
    assert set(rows) == {"depth", "width", "density"}
    assert rows["depth"]["value"] == pytest.approx(0.1) and rows["depth"]["verdict"] == "replicated"
    assert "depth 2 → 4, 4 pairs of cells" in rows["depth"]["statistic"]
    # No width effect, measured tightly: the whole CI lies below the smallest effect of interest.
    assert rows["width"]["value"] == pytest.approx(0.0, abs=1e-12) and rows["width"]["verdict"] == "not replicated"
    assert rows["width"]["ci_high"] < 0.01
    assert rows["density"]["value"] == pytest.approx(-0.05) and rows["density"]["verdict"] == "not replicated"


def test_claim4_minimum_per_cell_is_the_engines_five():
    """Written out: four seeds per cell must not give a verdict."""
    assert _claims(design_grid(5, effects=(0.1, 0, 0)))[4][0]["verdict"] == "replicated"
    assert _claims(design_grid(4, effects=(0.1, 0, 0)))[4][0]["verdict"] == "too few models"


def test_claim4_rarely_replicates_when_no_design_choice_matters():
    rng = np.random.default_rng(1)
    false = 0
    for trial in range(20):
        rows = _claims(design_grid(5, noise=0.03, rng=rng), fragility=False)[4]
        false += sum(r["verdict"] == "replicated" for r in rows)
    assert false <= 4  # of 60 rows: a 95% interval excludes 0 in about 1 in 20 (one-sided: 1 in 40)


def sparse_records(matched_params: int = 1000) -> list[dict]:
    recs = []
    for s in range(5):
        recs.append(record("wt", studies=["sparse_masks"], width=16, seed=s, acc=0.95))  # equal total parameters
        for d, distinct, shared, matched in ((0.25, 0.9, 0.85, 0.7), (0.5, 0.5, 0.6, 0.6)):
            recs.append(record("wt_masked_distinct", studies=["sparse_masks"], width=16, density=d, seed=s,
                               acc=distinct + 0.01 * s, params_total=4000, params_active=1000))
            recs.append(record("wt_masked_shared", studies=["sparse_masks"], width=16, density=d, seed=s, acc=shared))
            recs.append(record("wt", studies=["sparse_masks"], width=int(16 * d), match_density=d, seed=s,
                               acc=matched, params_total=matched_params))
    return recs


def test_claim3_compares_distinct_masks_with_matched_equal_total_and_shared():
    rows = {r["part"]: r for r in _claims(sparse_records())[3]}
    matched = rows["distinct masks vs matched dense"]
    assert matched["value"] == pytest.approx(0.92 - 0.7)  # d = 0.25, against the width-4 WT
    assert "d = 0.25" in matched["statistic"] and "0.0% off" in matched["statistic"]
    assert matched["verdict"] == "replicated"
    total = rows["distinct masks vs equal total parameters"]
    assert total["value"] == pytest.approx(0.92 - 0.95) and "width 16" in total["statistic"]
    assert rows["distinct vs shared masks"]["value"] == pytest.approx(0.92 - 0.85)
    assert rows["capacity limit"]["verdict"] == "inconclusive"  # no capacity study in these records


def test_claim3_refuses_a_reference_that_misses_its_parameter_target():
    rows = {r["part"]: r for r in _claims(sparse_records(matched_params=1200))[3]}
    matched = rows["distinct masks vs matched dense"]
    assert matched["verdict"] == "cannot be scored" and "20.0% off" in matched["statistic"]
    assert rows["distinct vs shared masks"]["verdict"] == "replicated"


def test_claim3_capacity_limit_is_the_untied_gain_over_wts():
    recs = []
    accs = {("wt", 2): 0.80, ("wt", 4): 0.85, ("wt", 8): 0.86, ("untied", 2): 0.80, ("untied", 4): 0.86,
            ("untied", 8): 0.92}
    for (v, depth), acc in accs.items():
        for width in (8, 16):
            for s in range(5):
                recs.append(record(v, studies=["capacity"], depth=depth, width=width, seed=s,
                                   acc=acc + 0.001 * s - (0.3 if width == 8 else 0)))
    (row,) = [r for r in _claims(recs)[3] if r["part"] == "capacity limit"]
    assert row["value"] == pytest.approx((0.92 - 0.86) - (0.86 - 0.85))  # L 4 -> 8, not 2 -> 8
    assert "L 4 → 8, width 16" in row["statistic"] and row["verdict"] == "replicated"


def test_the_design_table_names_the_best_cell(tmp_path):
    recs = []
    means = {(2, 8, 1.0): 0.70, (4, 8, 0.5): 0.90, (2, 16, 1.0): 0.60, (4, 4, 1.0): 0.80}
    for (depth, width, d), m in means.items():
        for s, noise in enumerate((-0.01, 0.0, 0.01)):
            recs.append(record("wt" if d == 1 else "wt_masked_distinct", studies=["design_guidelines"], depth=depth,
                               width=width, density=d, seed=s, acc=m + noise,
                               params_active=int(width * width * 10 * d)))
    frame = build("table_design_guidelines", recs, tmp_path / "t")
    sentence = frame["guideline"].iloc[0]
    assert sentence.startswith("Best cell overall: L=4, width 8, density 0.5 (accuracy 0.900")
    assert sentence in (tmp_path / "t.md").read_text()
    # 320 active parameters (L=4, w=8, d=0.5) shares a budget with 160 (L=4, w=4) and 640 (L=2, w=8) does
    # not; the best of that budget is the L=4, w=8 cell.
    best = frame[frame["best_in_budget"]]
    assert (4, 8, 0.5) in set(zip(best["depth"], best["width"], best["density"]))


def test_guideline_sentence_follows_the_numbers():
    cells = pd.DataFrame({"depth": [2, 8], "width": [16, 8], "density": [1.0, 1.0], "params_active": [100, 110],
                          "accuracy_mean": [0.5, 0.4], "budget_bin": [0, 0]})
    text = guideline_sentence(cells)
    assert text.startswith("Best cell overall: L=2, width 16, density 1")
    assert "less depth" in text and "more width" in text
    cells["accuracy_mean"] = [0.4, 0.5]
    text = guideline_sentence(cells)
    assert text.startswith("Best cell overall: L=8, width 8") and "more depth" in text


def test_claim5_uses_the_hardest_split_and_the_last_iteration():
    recs = []
    for s in range(5):
        for v, hard_max in (("wt", 0.6), ("deq_ift", 0.3)):
            curves = {"in_distribution": curve(0.9, 0.1), "bits16": curve(0.5, 0.5),
                      "bits24": curve(0.99, hard_max)}
            recs.append(record(v, task="prefix_sums", studies=["other_paradigm"], seed=s, curves=curves))
    (row,) = _claims(recs)[5]
    assert row["value"] == pytest.approx(0.3) and "bits24" in row["statistic"]
    assert row["verdict"] == "replicated" and row["task"] == "prefix_sums"


@pytest.mark.parametrize("wt, deq, bound", [(1.0, 0.97, "ceiling"), (0.0, 0.04, "floor")])
def test_claim5_at_the_ceiling_or_floor_cannot_be_scored(wt, deq, bound):
    recs = []
    for s in range(5):
        for v, hard_max in (("wt", wt), ("deq_ift", deq)):
            curves = {"in_distribution": curve(0.9, 0.9), "bits24": curve(0.5, hard_max)}
            recs.append(record(v, task="prefix_sums", studies=["other_paradigm"], seed=s, curves=curves))
    (row,) = _claims(recs)[5]
    assert row["verdict"] == "cannot be scored" and f"both groups at the {bound}" in row["statistic"]


def test_design_frame_empty_and_all_diverged():
    assert design_frame([], [], "smoke").empty
    recs = [record("wt", studies=["design_guidelines"], seed=s, status="diverged") for s in range(2)]
    frame = design_frame(recs, [], "smoke")
    assert frame["n_diverged"].tolist() == [2] and np.isnan(frame["accuracy_mean"]).all()
    assert "no guideline" in frame["guideline"].iloc[0]
