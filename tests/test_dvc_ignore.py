"""DVC hashes the stage dependencies `src/implicit_repro` and `workflow`: bytecode caches must not
count, or a fresh clone (which has none, or other ones) sees every stage as changed."""

import subprocess

from conftest import ROOT, tool


def test_dvc_ignores_bytecode_caches():
    # Paths need not exist, and a clean clone has none: DVC can then only match file paths (a bare
    # directory name is not known to be a directory). A non-.pyc file shows the `__pycache__/` rule works.
    paths = ["src/implicit_repro/__pycache__/io.cpython-311.pyc", "src/implicit_repro/papers/__pycache__/x.lock",
             "workflow/rules/__pycache__/x.pyc"]
    proc = subprocess.run([tool("dvc"), "check-ignore", *paths], cwd=ROOT, capture_output=True,
                          text=True, env={"DVC_NO_ANALYTICS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == paths


def test_a_fresh_clone_sees_no_changed_dependency(tmp_path):
    """The committed dvc.lock hashes the committed sources and params: on a fresh clone `dvc status`
    may only miss the outputs nobody pulled, never see a changed dependency or parameter (which
    would make `dvc repro` rerun every stage; forgetting `dvc commit` after a source change does it)."""
    import json

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    proc = subprocess.run([tool("dvc"), "status", "--json"], cwd=clone, capture_output=True, text=True,
                          env={"DVC_NO_ANALYTICS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status, "a fresh clone has not pulled its outputs: dvc status should say so"
    # Dependencies that are other stages' outputs (data, checkpoints, results) are merely not pulled.
    changed = {(stage, kind, dep): what for stage, changes in status.items() for change in changes
               if isinstance(change, dict) for kind in ("changed deps", "changed params") if kind in change
               for dep, what in change[kind].items() if not (what == "deleted" and dep in STAGE_OUTPUTS)}
    assert not changed, changed


STAGE_OUTPUTS = {"data", "checkpoints", "results"}
