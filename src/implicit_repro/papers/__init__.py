"""The papers the pipeline replicates: one package per paper, found by its id (``anil2022``, ...).

The generic rules and the shared machinery take the paper as data and ask its package:

- ``grid`` (imported by the Snakefile, so it imports no torch): ``datasets(section)``,
  ``downloads(section)``, ``runs(section)``, ``item_runs(section, item)`` and ``check(section, where)``;
- ``data``: ``generate(task, params, g)``, the tensors of one dataset split;
- ``models``: ``build(spec)``, the seeded model of a training job;
- ``evaluate``: ``evaluate(spec, model_path, train_log_path, out_path)``, one job's metrics file;
- ``items``: ``builder(item)``, the function that renders one item of the paper's spec;
- ``claims``: ``scorecard(records)``, the rows of the replication scorecard;
- ``choices``: ``choices_markdown(config, facts)``, what the project chose where the paper is silent, beside
  what its `config/papers.yaml` entry (``facts``) knows of the paper's setup.

The ids of a paper's items, its claims and its reported numbers live in ``config/papers.yaml``;
adding a paper adds its facts there, its section to the config and its package here, and edits no
generic rule.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from types import ModuleType

from implicit_repro.errors import ReproError


def known() -> list[str]:
    """The ids of the papers that have a package here."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)


def part(paper: str, name: str) -> ModuleType:
    """The module ``name`` (grid, data, models, evaluate, items, claims, choices) of ``paper``."""
    try:
        return importlib.import_module(f"implicit_repro.papers.{paper}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(f"implicit_repro.papers.{paper}"):
            raise ReproError(f"no paper {paper!r} (a package with a {name!r} module under src/implicit_repro/papers/); "
                             f"known: {', '.join(known())}") from None
        raise


@dataclass(frozen=True)
class Dataset:
    """One dataset file: the task and split it holds, its generator parameters and the downloaded
    files it is generated from."""

    task: str
    split: str
    params: dict = field(hash=False)
    raw: tuple[str, ...] = ()


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
    everything the jobs depend on, so a change to them re-runs exactly those jobs."""

    paper: str
    task: str
    run: str
    seed: int
    train_spec: dict = field(hash=False, compare=False)
    eval_spec: dict = field(hash=False, compare=False)
    train_data: str = ""
    eval_data: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.paper}/{self.task}/{self.run}/seed{self.seed}"

    def path(self, stage: str, name: str) -> str:
        """``checkpoints/<key>/model.pt``, ``results/<key>/metrics.json``, ..."""
        return f"{stage}/{self.key}/{name}"


def unique_runs(runs: list[Run]) -> list[Run]:
    """The runs in order, each key once (a run several items need is trained once)."""
    first: dict[str, Run] = {}
    for r in runs:
        first.setdefault(r.key, r)
    return list(first.values())
