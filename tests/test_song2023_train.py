"""song2023 runs through the shared training loop and the paper's evaluation, on the specs its grid
writes: measurements recorded, masks fixed through a kill and resume, divergence recorded."""

import copy
import json
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from implicit_repro import config
from implicit_repro.checkpoint import load_checkpoint
from implicit_repro.data.store import save_dataset
from implicit_repro.evaluation import EvalJob, evaluate
from implicit_repro.papers.song2023 import data as song_data
from implicit_repro.papers.song2023 import grid
from implicit_repro.seeding import generator
from implicit_repro.train import KILL_AFTER_EPOCH_ENV, TrainJob, make_model, train

SMOKE = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml",
                    {"scale": "smoke"})["song2023"]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """The smoke datasets, written where a copy of each run's spec points."""
    folder = tmp_path_factory.mktemp("data")
    paths = {}
    for path, d in grid.datasets(SMOKE).items():
        paths[path] = folder / path
        save_dataset(paths[path], song_data.generate(d.task, d.params, generator("song2023", d.task, "data", d.split)),
                     {"task": d.task, "split": d.split})
    return paths


def run_spec(run_name, datasets, **train):
    run = {r.run: r for r in grid.runs(SMOKE) if r.seed == 0}[run_name]
    spec = copy.deepcopy(run.eval_spec)
    spec["train"].update(train)
    spec["splits"] = [[name, str(datasets[path])] for name, path in spec["splits"]]
    return spec, datasets[run.train_data]


def train_and_evaluate(spec, data, folder):
    train(TrainJob(spec, data, folder / "model.pt", folder / "train_log.jsonl"))
    evaluate(EvalJob(spec, folder / "model.pt", folder / "metrics.json", folder / "train_log.jsonl"))
    return json.loads((folder / "metrics.json").read_text())


def test_a_deq_run_records_solver_statistics_memory_and_parameters(datasets, tmp_path):
    spec, data = run_spec("deq_ift/L6_w4_d1", datasets, epochs=2)
    metrics = train_and_evaluate(spec, data, tmp_path)
    assert metrics["status"] == "ok" and 0 <= metrics["test_accuracy"] <= 1
    assert metrics["solver"]["fwd_nfe"] <= 6 and metrics["solver"]["bwd_nfe"] >= 1
    assert 0 <= metrics["solver"]["residual"]
    assert metrics["memory_measure"] == "cpu_peak_live_bytes" and metrics["memory_bytes"] > 0
    dense = grid.dense_parameters(4, 1, 10, weight_norm=spec["model"]["weight_norm"])
    assert metrics["params_total"] == metrics["params_active"] == dense
    assert [e["epoch"] for e in metrics["epochs"]] == [0, 1] and metrics["studies"] == ["wt_vs_deq"]
    # Deterministic: no wall-clock time in the metrics, and the same run gives the same bytes.
    assert "seconds" not in json.dumps(metrics)
    again = train_and_evaluate(spec, data, tmp_path / "again")
    assert again == metrics


def test_the_jacobian_penalty_is_trained_and_logged(datasets, tmp_path):
    spec, data = run_spec("deq_jr/L6_w4_d1", datasets)
    train(TrainJob(spec, data, tmp_path / "model.pt", tmp_path / "log.jsonl"))
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[0]["aux_loss"] > 0
    plain, _ = run_spec("deq_ift/L6_w4_d1", datasets)
    train(TrainJob(plain, data, tmp_path / "ift.pt", tmp_path / "ift.jsonl"))
    assert "aux_loss" not in json.loads((tmp_path / "ift.jsonl").read_text().splitlines()[0])


def test_wt_memory_grows_with_depth_while_ift_grows_only_by_solver_bookkeeping(datasets, tmp_path):
    """Backprop through one more WT step keeps that step's activations; IFT with 8 more solver
    evaluations (Anderson's history already full at m = 6) keeps only their residual trace."""
    memory = {}
    for name, iters in (("wt/L1_w4_d1_e1", 1), ("wt/L2_w4_d1_e1", 2),
                        ("deq_ift/L1_w4_d1_e1", 8), ("deq_ift/L1_w4_d1_e1", 16)):
        spec, data = run_spec(name, datasets, iters=iters, tol=0.0)
        memory[name, iters] = train_and_evaluate(spec, data, tmp_path / f"{name.replace('/', '_')}_{iters}")["memory_bytes"]
    wt_step = memory["wt/L2_w4_d1_e1", 2] - memory["wt/L1_w4_d1_e1", 1]
    deq_eight = memory["deq_ift/L1_w4_d1_e1", 16] - memory["deq_ift/L1_w4_d1_e1", 8]
    assert wt_step > 0 and 0 <= deq_eight < wt_step / 4


def test_a_forced_divergence_is_recorded_not_raised(datasets, tmp_path):
    spec, data = run_spec("wt/L2_w4_d1", datasets, blowup_loss=1e-9)
    metrics = train_and_evaluate(spec, data, tmp_path)
    assert metrics["status"] == "diverged" and metrics["test_accuracy"] is None
    assert "blowup_loss" in metrics["diverged_reason"]


@pytest.mark.parametrize("name", ["wt_masked_distinct/L2_w4_d0.5", "deq_jr/L6_w4_d1"])
def test_kill_and_resume_ends_bit_identical(name, datasets, tmp_path):
    # Masks are buffers (fixed through training and resume); the Jacobian penalty's probes come from
    # a generator saved with each epoch, so a resumed DEQ-JR run draws the probes it would have drawn.
    spec, data = run_spec(name, datasets, epochs=3)
    reference = tmp_path / "reference"
    train(TrainJob(spec, data, reference / "model.pt", reference / "log.jsonl"))
    killed = tmp_path / "killed"
    script = (
        "import json, sys, torch; from pathlib import Path; from implicit_repro.train import TrainJob, train; "
        f"torch.set_num_threads({torch.get_num_threads()}); d = Path(sys.argv[3]); "
        "train(TrainJob(json.loads(sys.argv[1]), Path(sys.argv[2]), d / 'model.pt', d / 'log.jsonl'))"
    )
    args = [sys.executable, "-c", script, json.dumps(spec), str(data), str(killed)]
    proc = subprocess.run(args, env={"PYTHONPATH": str(ROOT / "src"), KILL_AFTER_EPOCH_ENV: "1"},
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    proc = subprocess.run(args, env={"PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True)
    assert proc.returncode == 0 and "resuming" in proc.stderr, proc.stderr
    resumed, uninterrupted = load_checkpoint(killed / "model.pt")["model"], load_checkpoint(reference / "model.pt")["model"]
    for key, tensor in uninterrupted.items():
        assert torch.equal(resumed[key], tensor), key
    if name.startswith("wt_masked"):
        assert {"masks1", "masks2"} <= set(uninterrupted)
        assert torch.equal(make_model(spec).state_dict()["masks1"], uninterrupted["masks1"])  # never trained


def test_a_deqs_unrolled_warm_up_trains_as_wt_then_solves(datasets, tmp_path):
    spec, data = run_spec("deq_ift/L6_w4_d1", datasets, epochs=2, pretrain_epochs=1, pretrain_iters=2)
    metrics = train_and_evaluate(spec, data, tmp_path)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    warm, deq = log
    assert warm["pretrain"] is True and warm["mean_iters"] == 2 and warm["residual"] is None
    assert "pretrain" not in deq and deq["residual"] is not None and deq["bwd_nfe"] >= 1
    # The DEQ's own costs are its solver epochs': the warm-up's memory and solver statistics are not.
    assert metrics["memory_bytes"] == deq["memory_bytes"] and metrics["solver"]["fwd_nfe"] == deq["fwd_nfe"]
    assert 0 <= metrics["solves_reaching_tol"] <= 1 and metrics["val_accuracy"] is not None


def test_images_train_on_the_training_part_without_its_validation_tail():
    for run in grid.runs(SMOKE):
        if run.task == "digits":
            assert run.train_spec["data"]["train_fraction"] == 1 - SMOKE["data"]["validation_fraction"]
            assert [name for name, _ in run.eval_spec["splits"]] == ["validation", "test"]
            assert dict(run.eval_spec["splits"])["validation"] == run.train_data
