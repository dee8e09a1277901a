"""Evaluation jobs of several trained models: the runs of one point of a paper's design space (same
paper, task and run; seeds apart) evaluated in one process, up to ``resources.evaluate.models_per_job``
at a time.

Why: each job pays a fresh start of Python and torch (about 1.7 CPU seconds on the machines this
project was measured on) and Snakemake's own bookkeeping; a `small` model's evaluation is a few CPU
seconds of work, so at one model per job the start-up was a third of the stage. A paper-scale model's
evaluation is GPU-minutes: there one model per job keeps the scheduler's choices and a killed job's
loss small. Batching changes which process computes a metrics file, never what it holds (each model
is evaluated exactly as alone: same spec, same seeded draws).

A job's name (its log and benchmark file) is its one run's stem for a batch of one, so a scale that
does not batch keeps the names it had; several runs are ``<paper>/<task>/<run>/seeds<first>-<last>-<id>``
with the identity of its members' stems, so another grouping gets another name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from implicit_repro.papers import Run, identity


@dataclass(frozen=True)
class EvalBatch:
    runs: tuple[Run, ...]  # one point of the design space, in seed order

    @property
    def stem(self) -> str:
        first, last = self.runs[0], self.runs[-1]
        if len(self.runs) == 1:
            return first.stem("evaluate")
        members = identity([r.stem("evaluate") for r in self.runs])
        return f"{first.paper}/{first.task}/{first.run}/seeds{first.seed}-{last.seed}-{members}"

    @property
    def rule_name(self) -> str:
        """The job's Snakemake rule (one per job: its outputs share no wildcard): ``evaluate_`` and its
        stem, each run of characters outside [A-Za-z0-9] an underscore."""
        return "evaluate_" + re.sub(r"[^A-Za-z0-9]+", "_", self.stem)


def eval_batches(runs: list[Run], models_per_job: int) -> list[EvalBatch]:
    """The evaluation jobs of ``runs``: per (paper, task, run), in order of first appearance, its runs
    in seed order, ``models_per_job`` at a time."""
    if models_per_job < 1:
        raise ValueError(f"models_per_job must be at least 1, not {models_per_job}")
    points: dict[tuple[str, str, str], list[Run]] = {}
    for r in runs:
        points.setdefault((r.paper, r.task, r.run), []).append(r)
    out = []
    for members in points.values():
        members = sorted(members, key=lambda r: r.seed)
        out += [EvalBatch(tuple(members[i:i + models_per_job])) for i in range(0, len(members), models_per_job)]
    return out
