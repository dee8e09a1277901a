"""The papers the pipeline replicates: one package per paper, found by its id (``anil2022``, ...).

The generic rules and the shared machinery take the paper as data and ask its package for the
functions that ``contract.PARTS`` lists, one row each (module, signature, what it returns, who calls
it): ``grid`` (imported by the Snakefile, so it imports no torch: datasets, downloads, runs, item_runs,
check, work), ``data``, ``models``, ``evaluate``, ``items``, ``claims`` (scorecard and
training_outcome_markdown) and ``choices``; and a ``schema.yaml``, the JSON schema of its config
section. The workflow checks every package against the contract when it starts
(``contract.check_papers``), so a missing or misshaped piece is named before any job runs. A paper's
id is lower-case letters and a four-digit year (``contract.PAPER_ID``).

A grid's ``Dataset`` and ``Run`` name their files by their identity (``identity``): what the config
gives the job, hashed, so a changed value names new files and an unchanged job keeps its own.

The ids of a paper's items, its claims and its reported numbers live in ``config/papers.yaml``;
adding a paper adds its facts there, its section to the config and its package here, and edits no
generic rule and no shared schema (README, "Adding a paper"; tests/example_paper is a whole one).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from types import ModuleType

from implicit_repro.errors import ReproError


def known() -> list[str]:
    """The ids of the papers that have a package here."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)


def folder(paper: str) -> Path:
    """The folder of ``paper``'s package."""
    return Path(__file__).parent / paper


def schema_file(paper: str) -> Path:
    """The JSON schema of ``paper``'s config section (composed in by ``config.load_schema``)."""
    return folder(paper) / "schema.yaml"


def part(paper: str, name: str) -> ModuleType:
    """The module ``name`` (grid, data, models, evaluate, items, claims, choices) of ``paper``."""
    try:
        return importlib.import_module(f"implicit_repro.papers.{paper}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(f"implicit_repro.papers.{paper}"):
            raise ReproError(f"no paper {paper!r} (a package with a {name!r} module under src/implicit_repro/papers/); "
                             f"known: {', '.join(known())}") from None
        raise


ID_DIGITS = 8  # hex digits of an output's identity: 2^32 names, for some thousands of jobs a config makes


def identity(*parts) -> str:
    """The identity of an output: a short hash of what its content depends on in the config
    (canonical JSON, so the order of keys does not matter). It is part of the output's path, so a
    changed config names new files instead of hiding behind old ones: after `dvc pull`, which restores
    files without Snakemake's records of how they were made, a changed value still reruns exactly the
    jobs it reaches. Outside it: the code, the CPU type and the thread count (README, "Where results
    land")."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:ID_DIGITS]


def in_mode(path: str, numerics: str) -> str:
    """The name of a generated file made in numerics ``mode`` (numerics.py): the native name, its
    identity hashed again with any other mode (a portable job rounds differently)."""
    if numerics == "native":
        return path
    stem, suffix = path.rsplit(".", 1)
    base, native = stem.rsplit("-", 1)
    return f"{base}-{identity(native, numerics)}.{suffix}"


@dataclass(frozen=True)
class Dataset:
    """One dataset file: the task and split it holds, its generator parameters and the downloaded
    files it is generated from. Its path carries the identity of the parameters, the inputs and
    the numerics mode: ``data/<paper>/<task>/<split>-<id>.pt``."""

    paper: str
    task: str
    split: str
    params: dict = field(hash=False)
    raw: tuple[str, ...] = ()
    numerics: str = "native"

    @property
    def path(self) -> str:
        native = f"data/{self.paper}/{self.task}/{self.split}-{identity(self.params, list(self.raw))}.pt"
        return in_mode(native, self.numerics)

    def configured(self, numerics: str) -> "Dataset":
        return replace(self, numerics=numerics)


@dataclass(frozen=True)
class Download:
    """One downloaded file, kept only if its SHA-256 is ``sha256``."""

    path: str
    url: str
    sha256: str


@dataclass(frozen=True)
class Run:
    """One training job and its evaluation. ``run`` names the point of the paper's design space
    (it may hold a slash, as anil2022's ``<intervention>/<gradient>`` does); the spec dicts are
    everything the jobs depend on besides their input files, so a change to them re-runs exactly
    those jobs. A paper's grid makes native CPU runs; ``configured`` puts the config's numerics mode
    and device (of training and evaluation) in: both change results, so both are part of the
    identity, except the defaults (native, cpu), which keep the specs as they were before either
    existed."""

    paper: str
    task: str
    run: str
    seed: int
    train_spec: dict = field(hash=False, compare=False)
    eval_spec: dict = field(hash=False, compare=False)
    train_data: str = ""
    eval_data: tuple[str, ...] = ()
    numerics: str = "native"
    device: str = "cpu"

    @property
    def key(self) -> str:
        """The point of the design space: ``<paper>/<task>/<run>/seed<k>``."""
        return f"{self.paper}/{self.task}/{self.run}/seed{self.seed}"

    def configured(self, numerics: str, device: str) -> "Run":
        """This run in numerics mode ``numerics``, trained on ``device``; its datasets are the ones
        generated in that mode."""
        data = lambda path: in_mode(path, numerics)  # noqa: E731
        eval_spec = self.eval_spec
        if "splits" in eval_spec:
            eval_spec = {**eval_spec, "splits": [[name, data(path)] for name, path in eval_spec["splits"]]}
        return replace(self, eval_spec=eval_spec, train_data=data(self.train_data),
                       eval_data=tuple(map(data, self.eval_data)), numerics=numerics, device=device)

    @cached_property
    def train_job(self) -> dict:
        """The training job's spec, as the train rule passes it."""
        return self._configured(self.train_spec)

    @cached_property
    def eval_job(self) -> dict:
        """The evaluation job's spec, as the evaluate rule passes it."""
        return self._configured(self.eval_spec)

    def _configured(self, spec: dict) -> dict:
        mode = {} if self.numerics == "native" else {"numerics": self.numerics}
        device = {} if self.device == "cpu" else {"device": self.device}
        return {**spec, **mode, **device}

    @cached_property
    def train_id(self) -> str:
        """The checkpoint's identity: its spec and its training data (whose path carries its own)."""
        return identity(self.train_job, self.train_data)

    @cached_property
    def eval_id(self) -> str:
        """The metrics' identity: the evaluation spec (its splits name their files) and the checkpoint's."""
        return identity(self.eval_job, self.train_id)

    def stem(self, rule: str) -> str:
        """``<key>-<id>``: the name of the train job's outputs and logs (``rule`` train) or the evaluate
        job's, each with its own identity."""
        return f"{self.key}-{self.eval_id if rule == 'evaluate' else self.train_id}"

    def path(self, stage: str, name: str) -> str:
        """``checkpoints/<key>-<train id>/model.pt``, ``results/<key>-<eval id>/metrics.json``, ..."""
        return f"{stage}/{self.stem('evaluate' if stage == 'results' else 'train')}/{name}"


def unique_runs(runs: list[Run]) -> list[Run]:
    """The runs in order, each key once (a run several items need is trained once)."""
    first: dict[str, Run] = {}
    for r in runs:
        first.setdefault(r.key, r)
    return list(first.values())
