"""The paper contract: what a paper's package provides, written down once and checked.

A paper is a folder, ``src/implicit_repro/papers/<paper>/``: its id, a ``schema.yaml`` for its config
section, and the modules and functions of ``PARTS`` (the generic rules and the shared machinery call
nothing else of it). ``check_papers`` runs when the workflow starts (``workflow/rules/common.smk``)
and in the tests, and names every missing or misshaped piece before any job runs.

It imports nothing of the paper: the Snakefile must start in about a second and must not import torch,
which the models, evaluation and items of a paper do. Each module's source is parsed instead (``ast``)
and each function looked up by name at the module's top level: a ``def`` (its positional parameters
are counted against the contract's), an alias of one (``scorecard = song2023_scorecard``) or a name
imported from elsewhere (``from implicit_repro.data.registry import generate``; present, its
signature taken on trust). What a function returns is documented here, and exercised by the tests'
example paper (``tests/example_paper``), which runs through every generic rule at smoke.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from implicit_repro.errors import ConfigError

# A paper id: lower-case letters, then a four-digit year (the first author's surname and the year of
# the paper, like anil2022). It is a wildcard of every generated file's path (workflow/rules/common.smk).
PAPER_ID = r"[a-z]+[0-9]{4}"
PAPER_ID_TEXT = "lower-case letters and a four-digit year, like anil2022 (the first author and the year)"
# An item id: a table's starts with "table", a figure's with "fig_" (the report rules' wildcards), then
# lower-case letters, digits and underscores; the paper's items module has a builder of that name.
ITEM_ID = {"table": r"table[a-z0-9_]*", "figure": r"fig_[a-z0-9_]+"}
SCHEMA = "schema.yaml"


@dataclass(frozen=True)
class Function:
    """One function a paper's package provides: where, its positional parameters, what it returns
    and who calls it."""

    module: str
    name: str
    params: tuple[str, ...]
    returns: str
    called_by: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}({', '.join(self.params)})"


PARTS = (
    # grid: imported by the Snakefile, so it imports no torch
    Function("grid", "datasets", ("section",), "dict: path -> papers.Dataset, every data file the section needs",
             "the data rules (common.smk)"),
    Function("grid", "downloads", ("section",), "list of papers.Download: the raw files to fetch, each with its "
             "SHA-256 ([] for none)", "the download rule"),
    Function("grid", "runs", ("section",), "list of papers.Run: every training job, each key once "
             "(papers.unique_runs)", "the train and evaluate rules"),
    Function("grid", "item_runs", ("section", "item"), "list of papers.Run: the runs an item (None: the "
             "scorecard and the README) is built from", "the report rules"),
    Function("grid", "check", ("section", "where"), "None; raises errors.ConfigError naming the key "
             "(`<where>: key `<paper>.<key>` ...`) for what the schema cannot say", "config.resolve"),
    Function("grid", "work", ("section", "run"), "dict with `train`, `evaluate` (work.py's units) and "
             "`activations`: how much a run's jobs do", "the compute plan (plan.py)"),
    Function("data", "generate", ("task", "params", "g"), "dict of tensors (`inputs`, `targets`) of one "
             "dataset split, drawn from the seeded generator g", "`implicit_repro generate`"),
    Function("models", "build", ("spec",), "the seeded model of a training job: models.EquilibriumModel "
             "(state_shape, step, readout, forward(x, iters, z0))", "train.py and the paper's evaluate"),
    Function("evaluate", "evaluate", ("job",), "dict: the metrics of one evaluation.EvalJob, holding at least "
             "`paper` (the id) and `status` (the checkpoint's: ok or diverged)", "evaluation.py"),
    Function("items", "builder", ("item",), "the function that renders an item of config/papers.yaml: a table's "
             "is called (records, reported, scale, stem), a figure's (records, scale, stem); None if none",
             "results/build.py"),
    Function("claims", "scorecard", ("records",), "list of scorecard rows (results.scorecard.row), every claim "
             "of config/papers.yaml given a row", "`report readme`"),
    Function("claims", "training_outcome_markdown", ("records",), "list of Markdown lines for the README: how "
             "the models learned their task ([] for none)", "`report readme`"),
    Function("choices", "choices_markdown", ("config", "facts"), "str: Markdown of the choices made where the "
             "paper is silent, beside what its config/papers.yaml entry (facts) knows", "`report readme`"),
)


def _defined(tree: ast.Module) -> dict[str, ast.AST]:
    """Top-level name -> the node that binds it (def, assignment or import)."""
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = node
    return names


def _shape(fn: Function, node: ast.AST | None, names: dict[str, ast.AST]) -> str | None:
    """What is wrong with the binding of ``fn`` (None: nothing we can see)."""
    seen = set()
    while isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id not in seen:
        seen.add(node.value.id)
        node = names.get(node.value.id)  # an alias: follow it to its def
    if node is None:
        return f"no function `{fn.name}`"
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return f"`{fn.name}` is not a function"
    args = node.args
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    required = len(positional) - len(args.defaults)
    if required <= len(fn.params) and (len(positional) >= len(fn.params) or args.vararg):
        return None
    alias = f" (as `{fn.name}`)" if node.name != fn.name else ""
    return (f"`{node.name}({', '.join(positional)})`{alias} takes {required} required argument(s); it is called "
            f"with {len(fn.params)}")


def problems(paper: str, where: Path, facts: dict | None = None) -> list[str]:
    """What ``paper``'s package at ``where`` lacks or has misshaped, each as one phrase; [] when it
    meets the contract. With ``facts`` (its entry of config/papers.yaml), its item ids too."""
    out = []
    if not re.fullmatch(PAPER_ID, paper):
        out.append(f"the id `{paper}` is not a paper id: {PAPER_ID_TEXT} (pattern {PAPER_ID}); rename the folder "
                   "and the config section")
    if not (where / "__init__.py").exists():
        out.append("no __init__.py (a docstring saying which paper it is)")
    if not (where / SCHEMA).exists():
        out.append(f"no {SCHEMA} (the JSON schema of its config section; copy the shape of anil2022's)")
    parsed: dict[str, dict[str, ast.AST] | str] = {}
    for fn in PARTS:
        if fn.module not in parsed:
            path = where / f"{fn.module}.py"
            try:
                parsed[fn.module] = _defined(ast.parse(path.read_text(encoding="utf-8"), str(path)))
            except FileNotFoundError:
                parsed[fn.module] = f"no module {fn.module}.py"
            except SyntaxError as exc:
                parsed[fn.module] = f"{fn.module}.py line {exc.lineno}: {exc.msg}"
        names = parsed[fn.module]
        if isinstance(names, str):
            continue
        wrong = _shape(fn, names.get(fn.name), names)
        if wrong:
            out.append(f"{fn.module}.py: {wrong}; the contract is {fn} -> {fn.returns}")
    for module, names in parsed.items():
        if isinstance(names, str):
            needs = ", ".join(f"{f.name}({', '.join(f.params)})" for f in PARTS if f.module == module)
            out.append(f"{names} (it provides {needs})")
    for item, meta in ((facts or {}).get("items") or {}).items():
        kind = meta.get("kind") if isinstance(meta, dict) else None
        if kind not in ITEM_ID:
            out.append(f"config/papers.yaml: item `{item}` has kind {kind!r}; use table or figure")
        elif not re.fullmatch(ITEM_ID[kind], item):
            out.append(f"config/papers.yaml: item `{item}` is a {kind}, whose id must match {ITEM_ID[kind]} (the "
                       "report rules' file names); rename it and its builder")
    return out


def check_papers(papers: list[str], facts: dict) -> None:
    """Raise a ConfigError naming every piece the packages of ``papers`` lack or have misshaped
    (``facts``: the content of config/papers.yaml)."""
    from implicit_repro.papers import folder

    messages = []
    for paper in papers:
        found = problems(paper, folder(paper), facts.get(paper))
        if found:
            messages.append(f"src/implicit_repro/papers/{paper}/: " + "; ".join(found))
    if messages:
        raise ConfigError(" | ".join(messages) + ". The paper contract is src/implicit_repro/papers/contract.py "
                          "(README, \"Adding a paper\").")


def check_facts(configured: list[str], facts: dict) -> None:
    """A paper with a config section needs its entry in config/papers.yaml (else it would not run)."""
    missing = [paper for paper in configured if paper not in facts]
    if missing:
        raise ConfigError(f"config/papers.yaml: no entry for {', '.join(missing)}, which the config has a section "
                          "for. Add its title, citation, claims and items (README, \"Adding a paper\").")
