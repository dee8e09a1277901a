"""Every item of anil2022 the pipeline builds: item id -> (kind, builder).

Table builders take ``(records, reported, scale, stem)``, figure builders ``(records, scale, stem)``;
``build_item`` hands a table the paper's reported cells for it from config/papers.yaml."""

from __future__ import annotations

from typing import Callable

from implicit_repro.errors import ReproError
from implicit_repro.results import anil2022, anil2022_correlation, anil2022_stress

ANIL2022: dict[str, tuple[str, Callable]] = {
    "table1_adversarial_init": ("table", anil2022_stress.table1_adversarial_init),
    "table2_phantom_vs_ift": ("table", anil2022_stress.table2_phantom_vs_ift),
    "fig_upward_generalization": ("figure", anil2022.fig_upward_generalization),
    "fig_aa_vs_accuracy": ("figure", anil2022_correlation.fig_aa_vs_accuracy),
    "table_aa_accuracy_correlation": ("table", anil2022_correlation.table_aa_accuracy_correlation),
    "fig_interventions": ("figure", anil2022.fig_interventions),
    "table_interventions": ("table", anil2022.table_interventions),
    "fig_per_example_aa": ("figure", anil2022_correlation.fig_per_example_aa),
    "table_per_example_aa": ("table", anil2022_correlation.table_per_example_aa),
    "fig_convergence_traces": ("figure", anil2022_stress.fig_convergence_traces),
}


def build_item(item: str, records: list[dict], papers: dict, scale: str, stem: str):
    """Build one item of anil2022 into ``stem`` (+ its suffixes); returns the builder's frame."""
    try:
        kind, builder = ANIL2022[item]
    except KeyError:
        raise ReproError(f"unknown anil2022 item {item!r}; known: {', '.join(ANIL2022)}, or 'readme' "
                         "(add a new item to results/registry.py)") from None
    if kind == "table":
        return builder(records, papers["anil2022"]["reported"].get(item, []), scale, stem)
    return builder(records, scale, stem)
