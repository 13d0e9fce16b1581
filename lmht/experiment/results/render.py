"""Writing a table in every format: CSV (all columns), Markdown, LaTeX and HTML (the display columns)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .names import NOT_RUN

__all__ = ["Table", "fmt", "mega", "pm", "write_table"]


@dataclass
class Table:
    """A built table: the data (every column goes to CSV), a note under the title, the display columns
    (Markdown/LaTeX/HTML; None = all)."""

    df: pd.DataFrame
    note: str
    display: list[str] | None = None


def pm(mean: float, std: float, n: int, digits: int = 2) -> str:
    """'81.23 ± 0.12' (n > 1), '81.23' (n = 1), '–' (no value)."""
    if n == 0 or not math.isfinite(mean):
        return "–"
    if n > 1 and math.isfinite(std):
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


def fmt(value, digits: int = 2) -> str:
    """Display form: '–' for missing, 2 decimals, 3 significant digits for small values (0.00123)."""
    if value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}" if 0 < abs(value) < 0.1 else f"{value:.{digits}f}"
    return str(value)


def mega(value: float) -> float:
    """SOPs in millions (the paper gives G = 1000 M)."""
    return value / 1e6 if math.isfinite(value) else math.nan


LATEX_SYMBOLS = {
    "±": r"$\pm$",
    "–": "--",
    "→": r"$\to$",
    "·": r"$\cdot$",
    "Δ": r"$\Delta$",
    "×": r"$\times$",
    "≤": r"$\leq$",
    "λ": r"$\lambda$",
    "Ω": r"$\Omega$",
}
HTML_STYLE = """<style>
body{font-family:sans-serif;font-size:14px}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f0f0f0}
tr.notrun td{color:#888}
tr.bad td.verdict{color:#b00}
tr.good td.verdict{color:#070}
</style>"""


def write_table(
    df: pd.DataFrame,
    outdir: Path,
    name: str,
    title: str,
    note: str,
    suite: str,
    display: list[str] | None = None,
) -> None:
    """NAME.csv (all columns) and NAME.md / NAME.tex / NAME.html (the display columns)."""
    outdir.mkdir(parents=True, exist_ok=True)
    if df.empty and display is not None:
        df = pd.DataFrame(columns=display)  # header-only CSV
    df.to_csv(outdir / f"{name}.csv", index=False)
    shown = df[display] if display is not None and not df.empty else df
    shown = shown.map(fmt) if not shown.empty else shown
    empty = f"No cells of this kind in suite '{suite}'."
    md = [f"# {title}", "", note, ""]
    md.append(shown.to_markdown(index=False) if not shown.empty else f"_{empty}_")
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
    rows = []
    if not shown.empty:
        rows.append("<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns) + "</tr>")
        for i in range(len(shown)):
            status = str(df.iloc[i].get("status", "")) if "status" in df else ""
            verdict = str(df.iloc[i].get("verdict", "")) if "verdict" in df else ""
            holds = str(df.iloc[i].get("holds", "")) if "holds" in df else ""
            cls = (
                "notrun"
                if status == NOT_RUN or verdict == NOT_RUN or holds == NOT_RUN
                else "good"
                if verdict == "reproduced" or holds == "yes"
                else "bad"
                if verdict == "not reproduced" or holds == "no"
                else ""
            )
            cells = "".join(
                f'<td class="{html.escape(str(c))}">{html.escape(str(v))}</td>'
                for c, v in zip(shown.columns, shown.iloc[i], strict=True)
            )
            rows.append(f'<tr class="{cls}">{cells}</tr>')
    body = f"<table>{''.join(rows)}</table>" if rows else f"<p><em>{html.escape(empty)}</em></p>"
    page = (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>{HTML_STYLE}'
        f"</head><body><h2>{html.escape(title)}</h2><p>{html.escape(note)}</p>{body}"
        f"<p><small>suite: {html.escape(suite)}; numbers: {name}.csv</small></p></body></html>\n"
    )
    (outdir / f"{name}.html").write_text(page)
