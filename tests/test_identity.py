"""Outputs are named by their identity (papers/__init__.py): a config change must rename exactly the
outputs whose content it changes, and nothing else. A pulled clone has no other record of how its
files were made, so a missed dependency here is a stale result served as current."""

import pytest

from conftest import ROOT
from implicit_repro import config
from implicit_repro.papers import Run, identity
from implicit_repro.papers.anil2022 import grid as anil2022
from implicit_repro.papers.song2023 import grid as song2023


def section(paper, scale="smoke", **overrides):
    cfg = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml",
                      {"scale": scale, "overrides": {paper: overrides} if overrides else {}})
    return cfg[paper]


def by_key(runs):
    return {r.key: r for r in runs}


def test_identity_is_canonical_and_sees_every_value():
    assert identity({"a": 1, "b": [1, 2]}) == identity({"b": [1, 2], "a": 1})
    assert identity({"a": 1, "b": [1, 2]}) != identity({"a": 1, "b": [2, 1]})
    assert identity({"a": 1}) != identity({"a": 1.5}) != identity({"a": "1"})
    assert identity({"a": 1}, "x") != identity({"a": 1}, "y")
    assert len(identity({})) == 8 and int(identity({}), 16) >= 0


def test_a_run_is_named_by_its_spec_its_data_and_its_numerics():
    run = Run("p", "t", "r", 0, {"lr": 1}, {"lr": 1, "eval": 2}, "data/p/t/a-00000000.pt")
    assert run.path("checkpoints", "model.pt") == f"checkpoints/p/t/r/seed0-{run.train_id}/model.pt"
    assert run.path("results", "metrics.json") == f"results/p/t/r/seed0-{run.eval_id}/metrics.json"
    other_train = Run("p", "t", "r", 0, {"lr": 2}, {"lr": 1, "eval": 2}, run.train_data)
    other_data = Run("p", "t", "r", 0, {"lr": 1}, {"lr": 1, "eval": 2}, "data/p/t/a-11111111.pt")
    other_eval = Run("p", "t", "r", 0, {"lr": 1}, {"lr": 1, "eval": 3}, run.train_data)
    assert other_train.train_id != run.train_id and other_train.eval_id != run.eval_id  # a new model is re-evaluated
    assert other_data.train_id != run.train_id and other_data.eval_id != run.eval_id
    assert other_eval.train_id == run.train_id and other_eval.eval_id != run.eval_id  # re-evaluated, not retrained
    assert run.configured("native", "cpu").stem("train") == run.stem("train")
    portable = run.configured("portable", "cpu")
    assert portable.train_job == {"lr": 1, "numerics": "portable"}
    assert portable.train_id != run.train_id and portable.eval_id != run.eval_id
    assert portable.train_data != run.train_data  # generated in portable mode too


def test_a_dataset_is_named_by_its_generator_parameters():
    base, more = section("anil2022"), section("anil2022", prefix_sums={"data": {"harder_count": 200}})
    changed = set(anil2022.datasets(more)) - set(anil2022.datasets(base))
    assert changed and all("/prefix_sums/bits" in p and "/bits8-" not in p for p in changed)  # harder splits only
    assert len(changed) == len(set(anil2022.datasets(base)) - set(anil2022.datasets(more)))


def test_one_tasks_epochs_rename_exactly_that_tasks_runs():
    base = by_key(anil2022.runs(section("anil2022")))
    more = by_key(anil2022.runs(section("anil2022", mazes={"train": {"epochs": 3}})))
    assert base.keys() == more.keys()
    for key, run in base.items():
        renamed = key.startswith("anil2022/mazes/")
        assert (more[key].train_id != run.train_id) == renamed, key
        assert (more[key].eval_id != run.eval_id) == renamed, key


def test_a_harder_split_re_evaluates_its_tasks_runs_without_retraining_them():
    base = by_key(anil2022.runs(section("anil2022")))
    more = by_key(anil2022.runs(section("anil2022", prefix_sums={"data": {"harder_count": 200}})))
    for key, run in base.items():
        prefix = key.startswith("anil2022/prefix_sums/")
        assert more[key].train_id == run.train_id, key
        assert (more[key].eval_id != run.eval_id) == prefix, key


def test_an_evaluation_setting_re_evaluates_without_retraining():
    base = by_key(song2023.runs(section("song2023")))
    more = by_key(song2023.runs(section("song2023", eval={"batch_size": 7})))
    assert all(more[k].train_id == r.train_id and more[k].eval_id != r.eval_id for k, r in base.items())


@pytest.mark.parametrize("paper, grid", [("anil2022", anil2022), ("song2023", song2023)])
@pytest.mark.parametrize("numerics", ["native", "portable"])
def test_every_run_reads_datasets_of_its_own_config(paper, grid, numerics):
    for scale in ("smoke", "small", "paper"):
        sec = section(paper, scale)
        datasets = {d.configured(numerics).path for d in grid.datasets(sec).values()}
        for run in (r.configured(numerics, "cpu") for r in grid.runs(sec)):
            assert run.train_data in datasets and set(run.eval_data) <= datasets, (scale, run.key)
            assert {p for _, p in run.eval_job["splits"]} == set(run.eval_data)


def test_two_scales_share_a_name_exactly_where_their_jobs_agree():
    """Where smoke and small ask for the same dataset (song2023's 8x8 digits), they share its file;
    every other file has a name of its own."""
    for paper, grid in (("anil2022", anil2022), ("song2023", song2023)):
        smoke, small = grid.datasets(section(paper, "smoke")), grid.datasets(section(paper, "small"))
        for path in set(smoke) & set(small):
            assert smoke[path].params == small[path].params and smoke[path].raw == small[path].raw
        assert set(smoke) != set(small)
        smoke_runs = {r.stem("train"): r for r in grid.runs(section(paper, "smoke"))}
        small_runs = {r.stem("train"): r for r in grid.runs(section(paper, "small"))}
        for stem in set(smoke_runs) & set(small_runs):
            assert smoke_runs[stem].train_spec == small_runs[stem].train_spec
        assert set(smoke_runs) != set(small_runs)


def test_portable_numerics_and_a_gpu_rename_what_they_change():
    sec = section("anil2022")
    native = by_key(r.configured("native", "cpu") for r in anil2022.runs(sec))
    portable = by_key(r.configured("portable", "cpu") for r in anil2022.runs(sec))
    cuda = by_key(r.configured("native", "cuda") for r in anil2022.runs(sec))
    for key, run in native.items():
        assert run.stem("train") == by_key(anil2022.runs(sec))[key].stem("train")  # the defaults rename nothing
        assert portable[key].train_data != run.train_data  # its data are made in portable mode too
        assert portable[key].train_id != run.train_id and portable[key].eval_id != run.eval_id
        assert portable[key].train_job["numerics"] == "portable" == portable[key].eval_job["numerics"]
        assert cuda[key].train_data == run.train_data and cuda[key].train_job["device"] == "cuda"
        assert cuda[key].train_id != run.train_id and cuda[key].eval_id != run.eval_id


def test_an_inputs_record_replaces_only_its_own_items_earlier_records(tmp_path):
    """A table's record is rebuilt under a new name when its runs change; the old one must go (else
    going back to the old config would find it and keep the table of the new one), and nothing else."""
    import json

    from implicit_repro.results import inputs

    folder = tmp_path / "paper_results/inputs/anil2022"
    folder.mkdir(parents=True)
    keep = ["table_x_more-0123abcd.json", "table_y-0123abcd.json", "table_x-notes.json", "fig_x-0123abcd.json"]
    for name in [*keep, "table_x-0123abcd.json", "table_x-fedcba98.json"]:
        (folder / name).write_text("{}")
    inputs.write(folder / "table_x-11111111.json", {"scale": "smoke", "metrics": ["results/a/metrics.json"]})
    assert sorted(p.name for p in folder.iterdir()) == sorted([*keep, "table_x-11111111.json"])
    assert json.loads((folder / "table_x-11111111.json").read_text())["metrics"] == ["results/a/metrics.json"]
