"""Tables in every format: CSV (every column, full precision), Markdown, LaTeX and HTML (the display
columns, formatted once here so every table rounds the same way).

Display conventions: accuracies and differences in points with 2 decimals; a mean over seeds as
``mean [lo, hi]`` (95 % t-interval; just the mean when n = 1); p-values with 2 significant digits
(``<0.001`` below); SOPs in millions (``M``) per image; energy in mJ per image with 3 significant
digits; integers without decimals; ``–`` for a value that does not exist.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = [
    "Col",
    "Table",
    "fmt_acc",
    "fmt_ci",
    "fmt_int",
    "fmt_mean_ci",
    "fmt_p",
    "fmt_sig",
    "html_table",
    "write_table",
]

DASH = "–"


def _missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def fmt_acc(x, digits: int = 2, sign: bool = False) -> str:
    """An accuracy or a difference in points: ``84.77`` (``+2.12`` with sign)."""
    if _missing(x):
        return DASH
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def fmt_ci(lo, hi, digits: int = 2, sign: bool = False) -> str:
    """``[lo, hi]`` or ``–`` when the interval does not exist (n < 2)."""
    if _missing(lo) or _missing(hi):
        return DASH
    return f"[{fmt_acc(lo, digits, sign)}, {fmt_acc(hi, digits, sign)}]"


def fmt_mean_ci(mean, lo, hi, digits: int = 2) -> str:
    """``84.77 [84.10, 85.44]``; the mean alone when there is no interval."""
    if _missing(mean):
        return DASH
    ci = fmt_ci(lo, hi, digits)
    return fmt_acc(mean, digits) if ci == DASH else f"{fmt_acc(mean, digits)} {ci}"


def fmt_p(p) -> str:
    if _missing(p):
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def fmt_int(x) -> str:
    if _missing(x):
        return DASH
    if isinstance(x, float) and math.isinf(x):
        return "> 1000"
    return str(int(x))


def fmt_sig(x, digits: int = 3) -> str:
    """A positive quantity with ``digits`` significant digits (energy, SOPs in M, ratios)."""
    if _missing(x):
        return DASH
    return f"{x:.{digits}g}"


@dataclass(frozen=True)
class Col:
    """A display column: header (with its unit) and how to format it from a row of the data."""

    header: str
    value: Callable[[pd.Series], str]


def col(name: str, header: str | None = None, fmt: Callable = str) -> Col:
    """The data column ``name`` formatted by ``fmt`` (``–`` when missing)."""
    return Col(header or name, lambda r: DASH if _missing(r.get(name)) else fmt(r[name]))


@dataclass
class Table:
    """A built table: the data (every column goes to CSV), a note under the title (what the numbers
    are, how verdicts are decided), the display columns, and an optional CSS class per row."""

    df: pd.DataFrame
    note: str
    view: Sequence[Col] = field(default_factory=list)
    row_class: Callable[[pd.Series], str] | None = None

    def display(self) -> pd.DataFrame:
        """The formatted display frame (strings, human headers)."""
        if self.df.empty or not self.view:
            return pd.DataFrame(columns=[c.header for c in self.view])
        return pd.DataFrame(
            [[c.value(r) for c in self.view] for _, r in self.df.iterrows()],
            columns=[c.header for c in self.view],
        )


LATEX_SYMBOLS = {
    "±": r"$\pm$",
    "–": "--",
    "→": r"$\to$",
    "·": r"$\cdot$",
    "Δ": r"$\Delta$",
    "×": r"$\times$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "λ": r"$\lambda$",
    "Ω": r"$\Omega$",
    "θ": r"$\theta$",
    "<": r"$<$",
}
VERDICT_CLASS = {
    "holds": "good",
    "reproduced": "good",
    "contradicted": "bad",
    "below": "bad",
    "above": "bad",
    "inconclusive": "unsure",
    "single seed": "unsure",
    "not run": "notrun",
}


def html_table(table: Table) -> str:
    """The display columns as an HTML table (inside a horizontally scrollable container)."""
    shown = table.display()
    if shown.empty:
        return '<p class="empty">No cells of this kind in this suite.</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in shown.columns)
    rows = []
    for i, (_, r) in enumerate(shown.iterrows()):
        data = table.df.iloc[i]
        cls = (
            table.row_class(data) if table.row_class else VERDICT_CLASS.get(str(data.get("verdict", "")), "")
        )
        cells = "".join(f"<td>{html.escape(str(v))}</td>" for v in r)
        rows.append(f'<tr class="{cls}">{cells}</tr>')
    body = "".join(rows)
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


TABLE_CSS = """
body{font-family:system-ui,sans-serif;font-size:14px;line-height:1.45;color:#222;
     margin:1.5em auto;max-width:1600px;padding:0 1em}
.table-wrap{overflow-x:auto;max-width:100%;margin:.5em 0 1em}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;white-space:nowrap;vertical-align:top}
th{background:#f2f2f2;position:sticky;top:0}
tr.notrun td{color:#888}
tr.good td{background:#eef8ee}
tr.bad td{background:#fbecec}
tr.unsure td{background:#fffbe8}
p.note{color:#444;max-width:75em}
"""


def write_table(table: Table, outdir: Path, name: str, title: str, suite: str) -> None:
    """NAME.csv (every column), NAME.md / NAME.tex / NAME.html (the display columns)."""
    outdir.mkdir(parents=True, exist_ok=True)
    table.df.to_csv(outdir / f"{name}.csv", index=False)
    shown = table.display()
    empty = f"No cells of this kind in suite '{suite}'."
    md = [f"# {title}", "", table.note, ""]
    md.append(shown.to_markdown(index=False, disable_numparse=True) if not shown.empty else f"_{empty}_")
    (outdir / f"{name}.md").write_text("\n".join(md) + "\n")
    if shown.empty:
        tex = f"% {title}: {empty}\n"
    else:
        tex = shown.to_latex(
            index=False, escape=True, caption=f"{title} (suite {suite})", label=f"tab:{name}"
        )
        for char, latex in LATEX_SYMBOLS.items():
            tex = tex.replace(char, latex)
    (outdir / f"{name}.tex").write_text(tex)
    page = (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{TABLE_CSS}</style></head><body><h2>{html.escape(title)}</h2>"
        f'<p class="note">{html.escape(table.note)}</p>{html_table(table)}'
        f"<p><small>suite: {html.escape(suite)}; every column: {name}.csv</small></p></body></html>\n"
    )
    (outdir / f"{name}.html").write_text(page)
