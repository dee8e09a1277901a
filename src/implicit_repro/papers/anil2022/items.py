"""anil2022's item builders: for each item id of config/papers.yaml, the function of that name.

Table builders take ``(records, reported, scale, stem)``, figure builders ``(records, scale, stem)``.
"""

from __future__ import annotations

from typing import Callable

from implicit_repro.papers.anil2022 import correlation, generalization, stress
from implicit_repro.results.build import named_builder


def builder(item: str) -> Callable | None:
    """The builder named ``item``, or None when no module of this paper defines one."""
    return named_builder(item, generalization, correlation, stress)
