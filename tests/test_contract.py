"""A third paper is a folder: the paper contract (papers/contract.py), each paper's own schema, a
training spec that holds only what its paper uses, and the example paper of tests/example_paper run
through the generic rules."""

import json
import re
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import ROOT, copy_project, run, tool
from implicit_repro import config
from implicit_repro.data import prefix_sums
from implicit_repro.data.store import save_dataset
from implicit_repro.errors import ConfigError, ReproError
from implicit_repro.papers import contract, folder, known
from implicit_repro.seeding import generator
from implicit_repro.specs import DEFAULTS, require_train
from implicit_repro.train import TrainJob, train

EXAMPLE = ROOT / "tests/example_paper"
FACTS = yaml.safe_load((ROOT / "config/papers.yaml").read_text())
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def example_facts():
    return yaml.safe_load((EXAMPLE / "papers.yaml").read_text())


# ---------------------------------------------------------------- the contract, checked

def test_every_paper_and_the_example_meet_the_contract():
    contract.check_papers(known(), FACTS)
    assert contract.problems("toy2024", EXAMPLE / "toy2024", example_facts()) == []


def test_the_contract_check_imports_no_paper_module_and_no_torch():
    code = ("import sys, yaml; from implicit_repro.papers import contract, known; "
            "contract.check_papers(known(), yaml.safe_load(open('config/papers.yaml'))); "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('implicit_repro.papers.anil2022', "
            "'implicit_repro.papers.song2023'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={"PYTHONPATH": str(ROOT / "src")})


def _drop_function(path, name):
    text = path.read_text()
    start = text.index(f"def {name}(")
    end = text.find("\ndef ", start + 1)
    path.write_text(text[:start] + (text[end + 1:] if end > 0 else ""))


MUTANTS = {
    # what is broken -> (how, a fragment of the message)
    "no training_outcome_markdown": (lambda p: _drop_function(p / "claims.py", "training_outcome_markdown"),
                                     "claims.py: no function `training_outcome_markdown`"),
    "no grid.work": (lambda p: _drop_function(p / "grid.py", "work"), "grid.py: no function `work`"),
    "a misshaped signature": (lambda p: (p / "grid.py").write_text((p / "grid.py").read_text().replace(
        "def item_runs(section: dict, item: str | None)", "def item_runs(section, item, scale)")),
        "`item_runs(section, item, scale)` takes 3 required argument(s); it is called with 2"),
    "no schema": (lambda p: (p / "schema.yaml").unlink(), "no schema.yaml"),
    "no models module": (lambda p: (p / "models.py").unlink(), "no module models.py (it provides build(spec))"),
    "an alias of nothing": (lambda p: (p / "claims.py").write_text((p / "claims.py").read_text().replace(
        "def scorecard(", "def _scorecard(") + "\nscorecard = _missing\n"), "no function `scorecard`"),
}


@pytest.mark.parametrize("mutant", MUTANTS)
def test_a_missing_or_misshaped_piece_is_named(tmp_path, mutant):
    paper = shutil.copytree(EXAMPLE / "toy2024", tmp_path / "toy2024")
    breaks, message = MUTANTS[mutant]
    breaks(paper)
    found = contract.problems("toy2024", paper, example_facts())
    assert any(message in p for p in found), found


def test_an_alias_of_a_function_is_followed_to_its_signature(tmp_path):
    paper = shutil.copytree(EXAMPLE / "toy2024", tmp_path / "toy2024")
    (paper / "claims.py").write_text((paper / "claims.py").read_text().replace(
        "def scorecard(records: list[dict])", "def toy_scorecard(records, scale)") + "\nscorecard = toy_scorecard\n")
    assert any("`toy_scorecard(records, scale)` (as `scorecard`) takes 2" in p for p in contract.problems("toy2024", paper))


def test_paper_and_item_ids_follow_their_documented_patterns(tmp_path):
    paper = shutil.copytree(EXAMPLE / "toy2024", tmp_path / "toy_paper")
    facts = example_facts()
    facts["items"]["accuracy_table"] = {"kind": "table", "claims": [1], "what": "x"}
    facts["items"]["figure_one"] = {"kind": "figure", "claims": [1], "what": "x"}
    found = " ".join(contract.problems("toy_paper", paper, facts))
    assert "the id `toy_paper` is not a paper id: lower-case letters and a four-digit year" in found
    assert "item `accuracy_table` is a table, whose id must match table[a-z0-9_]*" in found
    assert "item `figure_one` is a figure, whose id must match fig_[a-z0-9_]+" in found


def test_a_configured_paper_needs_its_facts():
    with pytest.raises(ConfigError, match="config/papers.yaml: no entry for toy2024"):
        contract.check_facts(["anil2022", "toy2024"], FACTS)


# ---------------------------------------------------------------- each paper brings its schema

@pytest.fixture
def with_example(monkeypatch, tmp_path):
    """implicit_repro.papers with the example paper in it, for this test only."""
    import implicit_repro.papers as papers

    shutil.copytree(EXAMPLE / "toy2024", tmp_path / "toy2024")
    monkeypatch.setattr(papers, "__path__", [*papers.__path__, str(tmp_path)])
    monkeypatch.setattr(papers, "folder", lambda p: tmp_path / p if p == "toy2024" else ROOT / "src/implicit_repro/papers" / p)
    yield
    for name in [m for m in sys.modules if m.startswith("implicit_repro.papers.toy2024")]:
        del sys.modules[name]


def test_a_new_papers_section_is_checked_by_its_own_schema(with_example):
    section = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    raw = {**yaml.safe_load((ROOT / "config/config.yaml").read_text()), "scale": "smoke"}
    raw["defaults"] = {**raw["defaults"], "toy2024": section}
    cfg = config.resolve(raw, config.load_schema(SCHEMA))
    assert cfg["toy2024"]["train"]["epochs"] == 2
    raw["overrides"] = {"toy2024": {"train": {"gradient": "ift"}}}
    with pytest.raises(ConfigError, match=r"unknown key `toy2024.train.gradient`; allowed here: batch_size, epochs"):
        config.resolve(raw, config.load_schema(SCHEMA))
    raw["overrides"] = {"toy2024": {"eval": {"n_in_distribution": 60}}}
    with pytest.raises(ConfigError, match=r"key `toy2024.eval.n_in_distribution` \(60\) exceeds the 52"):
        config.resolve(raw, config.load_schema(SCHEMA))


def test_an_unknown_section_says_how_to_add_a_paper():
    with pytest.raises(ConfigError) as err:
        config.load(ROOT / "config/config.yaml", SCHEMA, {"overrides": {"toy2025": {"seeds": [0]}}})
    message = str(err.value)
    assert "unknown key `toy2025`" in message and "src/implicit_repro/papers/toy2025/" in message
    assert "schema.yaml" in message and "Adding a paper" in message and "four-digit year" in message


def test_a_fragment_may_not_refer_to_a_definition_nobody_has(with_example, tmp_path):
    schema = tmp_path / "toy2024/schema.yaml"
    schema.write_text(schema.read_text().replace('{$ref: "#/$defs/model"}', '{$ref: "#/$defs/modell"}'))
    with pytest.raises(ConfigError, match=r"`\$ref: #/\$defs/modell` names no definition"):
        config.load_schema(SCHEMA)


def test_papers_definitions_are_namespaced_so_they_cannot_collide():
    defs = config.load_schema(SCHEMA)["$defs"]
    assert "anil2022.train" in defs and "song2023.song_train" in defs and "train" not in defs
    assert defs["experiment"]["properties"]["song2023"] == {"$ref": "#/$defs/song2023.song2023"}


# ---------------------------------------------------------------- the training spec holds what its paper uses

@pytest.fixture
def data(tmp_path):
    path = tmp_path / "bits8.pt"
    save_dataset(path, prefix_sums.generate(8, 128, generator("test", 8)), {"bits": 8})
    return path


def minimal_spec():
    return {"paper": "anil2022", "task": "prefix_sums", "seed": 1, "model": {"width": 4, "blocks": 1},
            "train": {"epochs": 2, "batch_size": 32, "lr": 0.003, "iters": 3}}


def neutral_spec():
    """The minimal spec with every optional part written out, by hand, as "do nothing": what
    specs.DEFAULTS documents for each."""
    spec = minimal_spec()
    spec.update(intervention="baseline", intervention_params={}, task_params={}, data={"train_fraction": 1.0})
    spec["train"].update(gradient="unrolled", blowup_loss=1e300, weight_decay=0.0, warmup_epochs=0, lr_milestones=[],
                         lr_gamma=0.1, grad_clip=1e300,  # a clip that never clips scales the gradients by 1.0
                         pretrain_epochs=0)
    return spec


def test_a_spec_without_the_optional_parts_trains_as_their_documented_defaults_say(data, tmp_path):
    assert {d.key for d in DEFAULTS} == {"intervention", "intervention_params", "task_params", "data.train_fraction",
                                         "train.gradient", "train.blowup_loss", "train.weight_decay",
                                         "train.warmup_epochs", "train.lr_milestones", "train.lr_gamma",
                                         "train.grad_clip", "train.pretrain_epochs"}
    results = []
    for name, spec in (("minimal", minimal_spec()), ("neutral", neutral_spec())):
        out = tmp_path / name
        result = train(TrainJob(spec, data, out / "model.pt", out / "log.jsonl"))
        state = torch.load(out / "model.pt", weights_only=True)
        assert state["spec"] == spec  # the checkpoint keeps the spec as given
        results.append((state["model"], [{k: v for k, v in h.items() if k != "seconds"} for h in result["history"]]))
    (model_a, history_a), (model_b, history_b) = results
    assert history_a == history_b
    assert all(torch.equal(model_a[k], model_b[k]) for k in model_a)


def test_a_deq_gradient_needs_its_solver_settings():
    spec = minimal_spec()
    assert require_train(spec, "--spec") is spec  # nothing optional is required
    spec["train"]["gradient"] = "ift"
    with pytest.raises(ReproError, match="the spec has no key `train.solver`"):
        require_train(spec, "--spec")


# ---------------------------------------------------------------- the example paper, through the rules

def add_example(project, only=False):
    """The example paper in a copy of the project: its folder, its config section, its facts. With
    ``only``, the other papers' sections and facts are taken out (a run of the example alone)."""
    shutil.copytree(EXAMPLE / "toy2024", project / "src/implicit_repro/papers/toy2024")
    cfg = yaml.safe_load((project / "config/config.yaml").read_text())
    facts = yaml.safe_load((project / "config/papers.yaml").read_text())
    if only:
        for paper in ("anil2022", "song2023"):
            for layer in (cfg["defaults"], *cfg["presets"].values()):
                (layer or {}).pop(paper, None)
            facts.pop(paper)
    cfg["defaults"]["toy2024"] = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    facts["toy2024"] = example_facts()
    (project / "config/config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (project / "config/papers.yaml").write_text(yaml.safe_dump(facts, sort_keys=False))
    return project


@pytest.mark.slow
def test_a_broken_paper_stops_the_workflow_before_any_job(tmp_path):
    project = add_example(copy_project(tmp_path / "project"))
    _drop_function(project / "src/implicit_repro/papers/toy2024/claims.py", "training_outcome_markdown")
    proc = run([tool("snakemake"), "-n", "--cores", "1"], cwd=project, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "src/implicit_repro/papers/toy2024/: claims.py: no function `training_outcome_markdown`" in proc.stderr


@pytest.mark.slow
def test_the_example_paper_runs_from_data_to_its_scorecard_row(tmp_path):
    # Beside the two papers, a dry run plans its two runs and its table.
    project = add_example(copy_project(tmp_path / "beside"))
    proc = run([tool("snakemake"), "-n", "--cores", "2", "--config", "scale=smoke"], cwd=project)
    assert re.search(r"paper_results/toy2024/table_accuracy\.csv", proc.stdout)
    # Alone, at smoke: data, training, evaluation, its table and its row of the scorecard.
    project = add_example(copy_project(tmp_path / "alone"), only=True)
    run([tool("snakemake"), "--cores", "2", "--config", "scale=smoke"], cwd=project)
    table = (project / "scales/smoke/paper_results/toy2024/table_accuracy.csv").read_text()
    assert table.startswith("split,at_train_budget,reproduced,reported,reported_provenance,scale")
    scorecard = (project / "scales/smoke/paper_results/scorecard.csv").read_text().splitlines()
    assert len(scorecard) == 2 and scorecard[1].startswith("toy2024,1,prefix_sums,")
    readme = (project / "scales/smoke/paper_results/README.md").read_text()
    assert "## toy2024: how well the models learned their task" in readme and "### toy2024" in readme
    [model] = (project / "checkpoints/toy2024/prefix_sums/tied").glob("seed0-*/model.pt")
    spec = torch.load(model, weights_only=True)["spec"]
    assert set(spec) == {"paper", "task", "seed", "model", "data", "train"}  # nothing it does not use
    assert set(spec["train"]) == {"epochs", "batch_size", "lr", "iters"}
    [metrics] = (project / "results/toy2024/prefix_sums/tied").glob("seed1-*/metrics.json")
    assert json.loads(metrics.read_text())["paper"] == "toy2024"


# ---------------------------------------------------------------- evaluation counts per split

@pytest.mark.parametrize("paper", ["anil2022", "song2023"])
def test_the_in_distribution_split_reads_its_own_count(paper):
    """eval.n_in_distribution counts the held-out part of the training file; n_examples every other split."""
    if paper == "anil2022":
        from implicit_repro.papers.anil2022.evaluate import split_examples as examples
    else:
        from implicit_repro.papers.song2023.evaluate import _examples as examples
    data = prefix_sums.generate(8, 100, generator("test", 8))
    spec = {**minimal_spec(), "data": {"train_fraction": 0.8}, "eval": {"n_examples": 30, "n_in_distribution": 7}}
    assert len(examples(spec, "in_distribution", data)[0]) == 7
    assert len(examples(spec, "bits8", data)[0]) == 30
    spec["eval"].pop("n_in_distribution")
    assert len(examples(spec, "in_distribution", data)[0]) == 20  # all 20 held out, as many as n_examples allows
