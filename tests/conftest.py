import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

os.environ["DVC_NO_ANALYTICS"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
# One thread per test process: the tests start subprocesses (snakemake jobs, killed trainings)
# that would otherwise fight the test process for the same cores.
torch.set_num_threads(1)


def tool(name: str) -> str:
    """An executable of this environment (snakemake, dvc), whatever PATH says."""
    return str(BIN / name) if (BIN / name).exists() else name


def project_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True,
        capture_output=True, text=True,
    ).stdout.split()
    return [f for f in out if (ROOT / f).exists()]


def copy_project(dest: Path, skip_generated: bool = True) -> Path:
    """A working copy of the project without any generated output, as on a fresh clone."""
    for rel in project_files():
        if skip_generated and rel.split("/")[0] in ("paper_results", "figures"):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    return dest


def run(cmd: list[str], cwd: Path, timeout: int = 600, check: bool = True, env: dict | None = None):
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture
def project(tmp_path) -> Path:
    return copy_project(tmp_path / "project")


SMOKE = ["--cores", "2", "--config", "scale=smoke"]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One complete local smoke-scale run, shared by the tests that inspect its outputs
    (tests/test_workflow.py) or compare another run with it (tests/test_slurm.py)."""
    project = copy_project(tmp_path_factory.mktemp("smoke") / "project")
    run([tool("snakemake"), *SMOKE], cwd=project)
    return project
