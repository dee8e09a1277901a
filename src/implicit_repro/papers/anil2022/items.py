"""anil2022's item builders: for each item id of config/papers.yaml, the function of that name.

Table builders take ``(records, reported, scale, stem)``, figure builders ``(records, scale, stem)``.
"""

from __future__ import annotations

from typing import Callable

from implicit_repro.papers.anil2022 import correlation, generalization, stress

_MODULES = (generalization, correlation, stress)


def builder(item: str) -> Callable | None:
    """The builder named ``item``, or None when no module of this paper defines one."""
    for module in _MODULES:
        fn = getattr(module, item, None)
        if callable(fn) and item.startswith(("table", "fig_")):
            return fn
    return None
