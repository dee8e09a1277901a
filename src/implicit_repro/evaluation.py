"""An evaluation job, whatever the paper: which model, which training log, where its metrics go.

The metrics a job writes are the paper's own (``papers/<paper>/evaluate.py``); this module
dispatches to it and writes them, with what decided their numerics (``numerics.record``) at training
and at evaluation, so the command line and the rule are the same for every paper."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path


@dataclass
class EvalJob:
    spec: dict  # the training spec plus what the paper's evaluation reads (eval settings, splits)
    model_path: Path
    out_path: Path
    log_path: Path | None = None  # the training log (train_log.jsonl) of the same run
    device: str = "cpu"  # where the model runs; every random draw stays on a seeded CPU generator

    @cached_property
    def checkpoint(self) -> dict:
        """The trained model's checkpoint, loaded once for the paper's evaluation and the record."""
        from implicit_repro.checkpoint import load_checkpoint

        return load_checkpoint(self.model_path)  # onto the CPU; the paper's evaluation moves the model


def evaluate(job: EvalJob) -> dict:
    """Write the metrics file of ``job`` with the evaluation of ``job.spec['paper']``."""
    from implicit_repro import cpu, numerics
    from implicit_repro.io import finite_or_none, write_json
    from implicit_repro.papers import part

    evaluation = part(job.spec["paper"], "evaluate")
    job.checkpoint  # loaded before the work is counted: loading is part of a job's fixed cost
    with cpu.work():
        result = evaluation.evaluate(job)
    # (A checkpoint written before the record existed has none: null, not a guess.)
    trained = job.checkpoint.get("numerics")
    result = finite_or_none({**result, "numerics": {"train": trained, "evaluate": numerics.record(job.device)}})
    write_json(job.out_path, result)
    return result
