"""song2023's run grid and config checks: what each study asks for, deduplicated, and bad values
rejected before any job starts with a message naming the key."""

import pytest

from conftest import ROOT
from implicit_repro import config
from implicit_repro.errors import ConfigError
from implicit_repro.papers.song2023 import grid

CONFIG = ROOT / "config/config.yaml"
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def section(scale="smoke", overrides=None):
    return config.load(CONFIG, SCHEMA, {"scale": scale, "overrides": {"song2023": overrides or {}}})["song2023"]


def by_key(runs):
    return {r.key: r for r in runs}


def test_smoke_grid_counted_by_hand():
    s = section()
    runs = grid.runs(s)
    keys = [r.key for r in runs]
    assert len(keys) == len(set(keys))  # each run once
    vision = [r for r in runs if r.task == "digits"]
    # wt_vs_deq: wt, untied at L2 w4; 4 DEQs at L = deq.max_iter (6), wt at the DEQs' budget (L6)     -> 7
    # capacity: wt, untied x L1, L2 x w4 (L2 w4 shared with wt_vs_deq)                               -> +2
    # sparse_masks: dense wt L2 w4 (shared), 2 masked at d=0.5, matched wt and untied                  -> +2 + matched
    # design_guidelines: L2 w4 x d0.5 (masked distinct, shared), d1 (wt, shared)                       -> +0
    # memory_vs_depth: wt, deq_ift, untied x L1, L2, trained 1 epoch (their own runs)                  -> +6
    names = {r.run for r in vision}
    for name in ("wt/L2_w4_d1", "untied/L2_w4_d1", "deq_ift/L6_w4_d1", "deq_jr/L6_w4_d1", "deq_phantom/L6_w4_d1",
                 "deq_jfb/L6_w4_d1", "wt/L6_w4_d1", "wt/L1_w4_d1", "untied/L1_w4_d1", "wt_masked_distinct/L2_w4_d0.5",
                 "wt_masked_shared/L2_w4_d0.5", "wt/L1_w4_d1_e1", "deq_ift/L2_w4_d1_e1", "untied/L2_w4_d1_e1"):
        assert name in names, name
    matched = [r for r in vision if r.eval_spec["match_densities"]]
    assert {r.train_spec["model"]["variant"] for r in matched} == {"wt", "untied"}
    assert len(vision) == 7 + 2 + 2 + len({r.key for r in matched}) + 6
    sequence = [r for r in runs if r.task == "prefix_sums"]
    assert sorted(r.run for r in sequence) == ["deq_ift/L4_w4_d1", "wt/L4_w4_d1", "wt_masked_distinct/L4_w4_d0.5"]


def test_a_run_several_studies_need_is_trained_once_and_names_them_all():
    runs = by_key(grid.runs(section()))
    shared = runs["song2023/digits/wt/L2_w4_d1/seed0"]
    assert shared.eval_spec["studies"] == ["wt_vs_deq", "capacity", "sparse_masks", "design_guidelines"]
    assert "studies" not in shared.train_spec  # the studies do not change what is trained


def test_variants_map_to_their_gradient_solver_and_penalty():
    runs = by_key(grid.runs(section()))
    train = lambda v, name="L6_w4_d1": runs[f"song2023/digits/{v}/{name}/seed0"].train_spec["train"]  # noqa: E731
    assert train("wt", "L2_w4_d1")["gradient"] == "unrolled" and train("wt", "L2_w4_d1")["iters"] == 2
    assert train("deq_ift")["gradient"] == "ift" and train("deq_ift")["solver"] == "anderson"
    assert train("deq_jr")["gradient"] == "ift" and train("deq_jr")["jac_reg_weight"] > 0
    assert train("deq_ift")["jac_reg_weight"] == 0
    assert train("deq_phantom")["gradient"] == "phantom" and train("deq_jfb")["gradient"] == "jfb"
    assert all(runs[k].train_spec["train"]["measure"] for k in runs)


def test_matched_width_minimises_the_parameter_gap():
    target = grid.active_parameters(16, 0.25, 1, 10)
    w = grid.matched_width(target, 4, 1, 10)
    gaps = {c: abs(grid.dense_parameters(c, 1, 10) - target) for c in range(2, 64)}
    assert gaps[w] == min(gaps.values())
    assert grid.dense_parameters(w, 1, 10) < grid.dense_parameters(16, 1, 10)
    # Any width, not only multiples of the groups: the multiples of 4 miss this target by over 20%.
    assert abs(grid.dense_parameters(w, 1, 10) - target) / target <= grid.MATCH_TOLERANCE
    assert min(abs(grid.dense_parameters(c, 1, 10) - target) / target for c in (8, 12)) > 0.2


def test_group_count_keeps_two_channels_per_group():
    assert [grid.group_count(w, 4) for w in (2, 3, 4, 6, 8, 9, 10, 16)] == [1, 1, 2, 3, 4, 3, 2, 4]
    for w in range(2, 40):
        g = grid.group_count(w, 4)
        assert w % g == 0 and w >= 2 * g


def test_small_sparse_references_hit_their_targets_and_a_run_serves_several_densities():
    s = section("small")
    runs = grid.runs(s)
    st = s["studies"]["sparse_masks"]
    matched = [r for r in runs if r.eval_spec["match_densities"]]
    assert matched
    for r in matched:
        m = r.train_spec["model"]
        blocks = m["depth"] if m["variant"] == "untied" else 1
        count = grid.dense_parameters(m["width"], m["in_channels"], m["classes"], 2, blocks,
                                      m.get("weight_norm", False))
        assert m["width"] >= 2 * m["groups"] and m["width"] % m["groups"] == 0
        for d in r.eval_spec["match_densities"]:
            target = grid.active_parameters(st["width"], d, m["in_channels"], m["classes"],
                                            weight_norm=s["model"]["weight_norm"])
            assert abs(count - target) / target <= grid.MATCH_TOLERANCE, (r.key, d)
    # One dense reference can match two densities: it is asked once and serves both.
    both = section("smoke", {"studies": {"sparse_masks": {"densities": [0.5, 0.51]}}})
    served = [r.eval_spec["match_densities"] for r in grid.runs(both) if r.eval_spec["match_densities"]]
    assert [0.5, 0.51] in served


def test_small_and_paper_grids_build():
    assert len(grid.runs(section("small"))) > len(grid.runs(section("smoke")))
    paper = section("paper")
    assert [d.path for d in grid.downloads(paper)] == ["data/raw/cifar/cifar-10-binary.tar.gz"]
    [train] = [d for d in grid.datasets(paper).values() if (d.task, d.split) == ("cifar10", "train")]
    assert train.raw == ("data/raw/cifar/cifar-10-binary.tar.gz",)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"studies": {"wt_vs_deq": {"variants": ["wt", "telepathy"]}}}, "song2023.studies.wt_vs_deq.variants.1"),
        ({"studies": {"sparse_masks": {"densities": [0.0]}}}, "song2023.studies.sparse_masks.densities.0"),
        ({"studies": {"sparse_masks": {"densities": [1.5]}}}, "song2023.studies.sparse_masks.densities.0"),
        ({"studies": {"capacity": {"depths": [0, 2]}}}, "song2023.studies.capacity.depths.0"),
        ({"studies": {"wt_vs_deq": {"depth": 0}}}, "song2023.studies.wt_vs_deq.depth"),
        ({"studies": {"capacity": {"widths": [5]}}}, "song2023.studies.capacity.widths"),
        ({"model": {"groups": 4}}, "song2023.studies.wt_vs_deq.width` has width 4, below 2 x the GroupNorm groups"),
        ({"studies": {"wt_vs_deq": {"variants": ["wt", "wt_masked_distinct"]}}},
         "song2023.studies.wt_vs_deq.variants"),
        ({"studies": {"sparse_masks": {"variants": ["wt"]}}}, "song2023.studies.sparse_masks.variants"),
        ({"data": {"dataset": "imagenet"}}, "song2023.data.dataset"),
        ({"train": {"lr_milestones": [50]}}, "song2023.train.lr_milestones"),
        ({"studies": {"other_paradigm": {"eval": {"max_iters": 2}}}}, "song2023.studies.other_paradigm.eval.max_iters"),
        ({"studies": {"other_paradigm": {"data": {"harder_bits": [6]}}}},
         "song2023.studies.other_paradigm.data.harder_bits"),
    ],
)
def test_bad_song2023_values_are_rejected_naming_the_key(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        section("smoke", overrides)
    assert fragment in str(err.value)


@pytest.mark.parametrize("weight_norm", [False, True])
@pytest.mark.parametrize("variant, depth, width, density, dims, classes",
                         [("wt", 4, 8, 1.0, 2, 10), ("untied", 3, 8, 1.0, 2, 10),
                          ("wt_masked_distinct", 4, 16, 0.25, 2, 100), ("wt", 4, 8, 1.0, 1, 2)])
def test_the_grids_parameter_counts_are_the_models(variant, depth, width, density, dims, classes, weight_norm):
    # The Snakefile cannot import torch, so the grid counts parameters from the block's layout
    # to choose matched widths; the count must be the model's own.
    from implicit_repro.papers.song2023.models import build_model, count_parameters

    in_channels = 3 if dims == 2 else 1
    counts = count_parameters(build_model(variant, depth=depth, width=width, in_channels=in_channels,
                                          classes=classes, dims=dims, density=density, groups=4,
                                          weight_norm=weight_norm))
    blocks = depth if variant == "untied" else 1
    assert counts["total"] == grid.dense_parameters(width, in_channels, classes, dims, blocks, weight_norm)
    if variant.startswith("wt_masked"):
        assert counts["active"] == grid.active_parameters(width, density, in_channels, classes, dims, weight_norm)


def test_the_variant_tables_agree():
    # grid.py cannot import torch: its variant -> gradient table, the model's registry and the
    # schema's enum must list the same variants with the same gradients.
    import yaml

    from implicit_repro.papers.song2023.models import VARIANTS

    schema = yaml.safe_load((ROOT / "src/implicit_repro/papers/song2023/schema.yaml").read_text())
    assert set(schema["$defs"]["song_variant"]["enum"]) == set(VARIANTS) == set(grid.GRADIENTS)
    assert {v: VARIANTS[v].gradient for v in VARIANTS} == grid.GRADIENTS
    assert set(grid.MASKED) == {v for v in VARIANTS if VARIANTS[v].masks != "none"}
    assert set(grid.DEQ) == {v for v in VARIANTS if VARIANTS[v].gradient != "unrolled"}
    assert {v for v in VARIANTS if VARIANTS[v].jacobian_reg} == {"deq_jr"}


@pytest.mark.parametrize("overrides, fragment", [
    ({"studies": {"design_guidelines": {"variant": "wt"}}}, "song2023.studies.design_guidelines.variant"),
    ({"studies": {"capacity": {"variants": ["wt", "deq_ift"]}}}, "song2023.studies.capacity.variants"),
])
def test_a_density_or_depth_the_variant_would_ignore_is_rejected(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        section("smoke", overrides)
    assert fragment in str(err.value)


def test_learning_rate_per_variant_and_the_deqs_warm_up_reach_their_runs():
    s = section("smoke", {"train": {"lr_by_variant": {"deq_ift": 0.02}}, "deq": {"pretrain_epochs": 0}})
    runs = by_key(grid.runs(s))
    train = lambda name: runs[f"song2023/digits/{name}/seed0"].train_spec["train"]  # noqa: E731
    assert train("deq_ift/L6_w4_d1")["lr"] == 0.02 and train("wt/L2_w4_d1")["lr"] == s["train"]["lr"]
    assert train("deq_ift/L6_w4_d1")["pretrain_epochs"] == 0
    warm = by_key(grid.runs(section("smoke", {"train": {"epochs": 3}, "deq": {"pretrain_epochs": 2}})))
    assert warm["song2023/digits/deq_ift/L6_w4_d1/seed0"].train_spec["train"]["pretrain_epochs"] == 2
    assert "pretrain_epochs" not in warm["song2023/digits/wt/L2_w4_d1/seed0"].train_spec["train"]
    # A memory measurement run measures the DEQ itself, never its warm-up.
    assert "pretrain_epochs" not in warm["song2023/digits/deq_ift/L2_w4_d1_e1/seed0"].train_spec["train"]
    with pytest.raises(ConfigError, match="song2023.deq.pretrain_epochs"):
        section("smoke", {"deq": {"pretrain_epochs": 1}})  # smoke trains 1 epoch: never a DEQ
