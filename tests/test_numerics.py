"""Every checkpoint and metrics file records what decided its numerics; `numerics: portable` pins the
CPU code paths through the environment the rules export before python starts."""

import json
import os
import subprocess
import sys

import torch

from conftest import ROOT
from test_bad_input import spec
from implicit_repro import numerics
from implicit_repro.data import prefix_sums
from implicit_repro.data.store import save_dataset
from implicit_repro.seeding import generator


def test_shell_exports_pin_the_cpu_code_paths_only_in_portable_mode():
    native, portable = numerics.shell_exports("native"), numerics.shell_exports("portable")
    assert f"{numerics.MODE_ENV}=native" in native and "ATEN_CPU_CAPABILITY" not in native
    for key, value in numerics.PORTABLE_ENV.items():
        assert f"{key}={value}" in portable


def test_record_names_torch_the_cpu_path_the_device_and_the_threads():
    rec = numerics.record("cpu")
    assert rec["torch"] == torch.__version__ and rec["device"] == "cpu"
    assert rec["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert rec["threads"] == torch.get_num_threads()


def job(tmp_path, env, *args):
    full = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **env}
    subprocess.run([sys.executable, "-m", "implicit_repro", *args], cwd=tmp_path, env=full, check=True,
                   capture_output=True)


def test_metrics_record_the_numerics_of_training_and_of_evaluation(tmp_path):
    save_dataset(tmp_path / "bits6.pt", prefix_sums.generate(6, 32, generator("numerics", 6)), {"bits": 6})
    s = json.dumps(spec())
    portable = dict(line.split("=", 1) for line in numerics.shell_exports("portable")[7:-2].split())
    job(tmp_path, portable, "train", "--spec", s, "--data", "bits6.pt", "--model-out", "model.pt",
        "--log-out", "log.jsonl", "--threads", "1")
    job(tmp_path, {}, "evaluate", "--spec", s, "--model", "model.pt", "--out", "metrics.json", "--threads", "2")
    record = json.loads((tmp_path / "metrics.json").read_text())["numerics"]
    assert record["train"]["mode"] == "portable" and record["train"]["cpu_capability"] == "DEFAULT"
    assert record["train"]["pinned"] == numerics.PORTABLE_ENV and record["train"]["threads"] == 1
    assert record["evaluate"]["mode"] == "native" and record["evaluate"]["threads"] == 2
    assert record["evaluate"]["torch"] == torch.__version__
