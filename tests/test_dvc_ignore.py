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
