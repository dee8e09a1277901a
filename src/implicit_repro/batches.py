"""Jobs of several models: the runs of one point of a paper's design space (same paper, task and run;
seeds apart) trained, or evaluated, in one process, up to ``resources.<stage>.models_per_job`` at a time.

Why: each job pays a fresh start of Python and torch (about 1.8 CPU seconds on the machines this
project was measured on) and Snakemake's own bookkeeping; a `small` model's training or evaluation is
a few CPU seconds of work (song2023's 215 models train in 7 CPU seconds each on average), so at one
model per job the start-up was a third of those stages. A paper-scale model is GPU-hours: there one
model per job keeps the scheduler's choices and a killed job's loss small. Batching changes which
process computes a checkpoint or a metrics file, never what it holds (each model is trained and
evaluated exactly as alone: same spec, same seeded generators; tests/test_batches.py).

A job's name (its log and benchmark file) is its one run's stem for a batch of one, so a scale that
does not batch keeps the names it had; several runs are ``<paper>/<task>/<run>/seeds<first>-<last>-<id>``
with the identity of its members' stems, so another grouping gets another name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from implicit_repro.papers import Run, identity

STAGES = ("train", "evaluate")


@dataclass(frozen=True)
class Batch:
    stage: str  # train or evaluate: its members' stems (and so the batch's name) are that stage's
    runs: tuple[Run, ...]  # one point of the design space, in seed order

    @property
    def stem(self) -> str:
        first, last = self.runs[0], self.runs[-1]
        if len(self.runs) == 1:
            return first.stem(self.stage)
        members = identity([r.stem(self.stage) for r in self.runs])
        return f"{first.paper}/{first.task}/{first.run}/seeds{first.seed}-{last.seed}-{members}"

    @property
    def rule_name(self) -> str:
        """The job's Snakemake rule (one per job: its outputs share no wildcard): the stage, ``_`` and
        its stem, each run of characters outside [A-Za-z0-9] an underscore."""
        return f"{self.stage}_" + re.sub(r"[^A-Za-z0-9]+", "_", self.stem)


def batches(runs: list[Run], stage: str, models_per_job: int) -> list[Batch]:
    """The ``stage`` jobs of ``runs``: per (paper, task, run), in order of first appearance, its runs
    in seed order, ``models_per_job`` at a time."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    if models_per_job < 1:
        raise ValueError(f"models_per_job must be at least 1, not {models_per_job}")
    points: dict[tuple[str, str, str], list[Run]] = {}
    for r in runs:
        points.setdefault((r.paper, r.task, r.run), []).append(r)
    out = []
    for members in points.values():
        members = sorted(members, key=lambda r: r.seed)
        out += [Batch(stage, tuple(members[i:i + models_per_job])) for i in range(0, len(members), models_per_job)]
    return out
