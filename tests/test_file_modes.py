"""Every file the pipeline writes gets the mode the user's umask gives a plain open(): a team's shared
results folder (umask 002) stays group-writable, a private one (077) stays private. (The atomic
writes go through mkstemp, which alone would make every output 0600.)"""

import os
import stat

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from implicit_repro.io import save_torch, write_json, write_text
from implicit_repro.results.output import save_figure, write_table


@pytest.fixture(params=[0o002, 0o022, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_outputs_follow_the_umask(umask, tmp_path):
    write_text(tmp_path / "a.txt", "x")
    write_json(tmp_path / "m.json", {"status": "ok"})
    save_torch(tmp_path / "model.pt", {"w": 1})
    frame = pd.DataFrame({"a": [1]})
    write_table(frame, frame, tmp_path / "t", "caption")
    fig = plt.figure()
    save_figure(fig, tmp_path / "f")
    written = sorted(p for p in tmp_path.iterdir())
    assert len(written) == 8  # a.txt, m.json, model.pt, t.{csv,md,tex}, f.{png,pdf}: no temporary left behind
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name
