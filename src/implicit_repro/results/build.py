"""Build one item of any paper: its kind and id come from config/papers.yaml, its builder from the
paper's ``items`` module (a function named after the item)."""

from __future__ import annotations

from types import ModuleType
from typing import Callable

from implicit_repro.errors import ReproError
from implicit_repro.papers import part

ITEM_PREFIXES = ("table", "fig_")


def named_builder(item: str, *modules: ModuleType) -> Callable | None:
    """The function called ``item`` in the first of ``modules`` that defines one (item ids start
    with "table" or "fig_", so no helper is mistaken for a builder), else None."""
    if not item.startswith(ITEM_PREFIXES):
        return None
    for module in modules:
        fn = getattr(module, item, None)
        if callable(fn):
            return fn
    return None


def build_item(paper: str, item: str, records: list[dict], papers: dict, scale: str, stem: str):
    """Write ``stem`` + the item's suffixes; returns the builder's frame."""
    if paper not in papers:
        raise ReproError(f"unknown paper {paper!r}; config/papers.yaml has: {', '.join(papers)}")
    items = papers[paper]["items"]
    fn = part(paper, "items").builder(item) if item in items else None
    if fn is None:
        raise ReproError(f"unknown {paper} item {item!r}; known: {', '.join(items)}, or 'readme' (an item "
                         f"needs an entry under {paper}.items in config/papers.yaml and a function of that "
                         f"name in src/implicit_repro/papers/{paper}/items.py)")
    if items[item]["kind"] == "table":
        return fn(records, (papers[paper].get("reported") or {}).get(item, []), scale, stem)
    return fn(records, scale, stem)
