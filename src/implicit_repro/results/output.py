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


def save_message_figure(stem: str | Path, message: str) -> None:
    """A small figure that only says why there is nothing to plot (every run diverged, ...)."""
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    ax.set_axis_off()
    save_figure(fig, stem)


def mean_std_text(mean: float, std: float, digits: int = 3) -> str:
    """"mean ± std" for a display cell; "—" when there is no value, the mean alone when the std is
    undefined (a single model)."""
    if pd.isna(mean):
        return "—"
    return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def unit_axis(ax, axis: str, values) -> None:
    """A fixed [.., 1.05] range for AA or accuracy (so 0.99999 and 1.0 do not look far apart), down
    to 0 or to the lowest value; no offset notation."""
    finite = [v for v in values if v is not None and pd.notna(v)]
    low = min([0.0, *finite]) - 0.05
    (ax.set_xlim if axis == "x" else ax.set_ylim)(low, 1.05)
    ax.ticklabel_format(axis=axis, useOffset=False, style="plain")
