"""The papers' claims, items and reported numbers, read from config/papers.yaml."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from implicit_repro.errors import ReproError

PROVENANCES = ("primary", "second-hand", "unknown")


def load_papers(path: str | Path) -> dict:
    """The papers' facts; a missing or unreadable file is an error naming it."""
    try:
        with open(path) as fh:
            papers = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise ReproError(f"{path}: cannot read the papers' facts ({type(exc).__name__}: {exc}). Pass the "
                         "project's file with `--papers config/papers.yaml` (run from the project's root).") from None
    if not isinstance(papers, dict):
        raise ReproError(f"{path}: expected a mapping of paper id -> facts; see config/papers.yaml.")
    return papers


def attach_reported(frame: pd.DataFrame, cells: list[dict], keys: list[str]) -> pd.DataFrame:
    """Add ``reported`` and ``reported_provenance`` columns, matching cells on ``keys``.

    A cell the paper gives no number for gets an empty value and provenance ``unknown``."""
    out = frame.copy()
    out["reported"] = float("nan")
    out["reported_provenance"] = "unknown"
    for cell in cells:
        if cell["provenance"] not in PROVENANCES:
            raise ValueError(f"config/papers.yaml: provenance {cell['provenance']!r} not in {PROVENANCES}")
        match = pd.Series(True, index=out.index)
        for key in keys:
            match &= out[key] == cell[key]
        out.loc[match, "reported"] = cell["value"]
        out.loc[match, "reported_provenance"] = cell["provenance"]
    return out
