"""Writers for the results contract: <stem>.csv|.md|.tex for tables, <stem>.png|.pdf for figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from implicit_repro.io import atomic_path, write_text  # noqa: E402


def write_table(frame: pd.DataFrame, display: pd.DataFrame, stem: str | Path, caption: str) -> None:
    """The tidy frame goes to CSV; a human-readable view of it to Markdown and LaTeX."""
    stem = Path(stem)
    write_text(stem.with_suffix(".csv"), frame.to_csv(index=False, float_format="%.6g"))
    md = f"{caption}\n\n{display.to_markdown(index=False, floatfmt='.4g')}\n"
    write_text(stem.with_suffix(".md"), md)
    tex = display.to_latex(index=False, float_format="%.4g", caption=caption, label=f"tab:{stem.name}")
    write_text(stem.with_suffix(".tex"), tex)


def save_figure(fig: plt.Figure, stem: str | Path) -> None:
    stem = Path(stem)
    for suffix, meta in ((".png", {"Software": None}), (".pdf", {"CreationDate": None, "Producer": None})):
        # Fixed metadata: the same results give byte-identical figures.
        with atomic_path(stem.with_suffix(suffix)) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=150, bbox_inches="tight", metadata=meta)
    plt.close(fig)
