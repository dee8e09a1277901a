"""The inputs record of an item: the metrics files and training logs (and, for the README, the items
and the config) it was built from, at which scale.

The record is an output of the item's rule, named ``<item>-<identity>.json`` by the identity of what it
lists (``papers.identity``). A config whose runs differ from those of the last build asks for another
name, so the item is rebuilt even where Snakemake has no record of that build (a fresh clone, a
`dvc pull`): removing a seed, or going back to an earlier config whose metrics are still on disk,
changes no metrics file's name, only this one. Writing a record removes the item's records of
earlier builds, so the folder holds exactly the ones that describe the items beside it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from implicit_repro.io import write_text
from implicit_repro.papers import ID_DIGITS


def write(path: str | Path, record: dict) -> None:
    path = Path(path)
    name = path.name.rsplit("-", 1)[0]
    write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
    earlier = re.compile(rf"{re.escape(name)}-[0-9a-f]{{{ID_DIGITS}}}\.json")
    for old in path.parent.glob(f"{name}-*.json"):
        if old != path and earlier.fullmatch(old.name):
            old.unlink()
