"""The suite's report: one self-contained HTML page that reads top-down.

1. **Summary**: what ran (cells, seeds, runs ok / failed / missing), the verdict counts of every table,
   the failures with their reasons, how to read the numbers.
2. **Open questions 1-3**: for each, the answer written from the data (:mod:`.answers`), its figures
   and its tables.
3. **The paper's claims and tables**, then **our variants** against the paper's method.
4. **Every cell**: the list of cells, training curves and firing rates.

Figures are embedded (base64 PNG), tables are the catalog's HTML tables in horizontally scrollable
boxes, so the page is one file that opens anywhere. Nothing here computes a number: it lays out what
the tables and figures hold.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Mapping
from pathlib import Path

from lmht.experiment.catalog import FIGURES, SECTIONS, TABLES

from .answers import answers, summary_counts
from .load import Suite
from .render import TABLE_CSS, Table, html_table

__all__ = ["render_report", "write_report"]

REPORT_CSS = (
    TABLE_CSS
    + """
h1{font-size:1.6em;margin-bottom:.2em} h2{margin-top:2em;border-bottom:2px solid #ddd;padding-bottom:.2em}
h3{margin-top:1.4em} nav ol{columns:2;max-width:60em} .answer li{margin:.25em 0}
figure{margin:1em 0} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#444;font-size:13px;max-width:75em}
.counts td:first-child{font-weight:600} .meta{color:#555}
"""
)


def _figure(name: str, path: Path) -> str:
    entry = FIGURES[name]
    if not path.is_file():
        return f'<p class="empty">Figure {html.escape(name)} was not produced.</p>'
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure id="fig-{name}"><img alt="{html.escape(entry.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(entry.title)}</figcaption></figure>"
    )


def _table(name: str, table: Table) -> str:
    entry = TABLES[name]
    return (
        f'<section class="table" id="table-{name}"><h3>{html.escape(entry.title)}</h3>'
        f'<p class="note">{html.escape(table.note)}</p>{html_table(table)}'
        f'<p class="meta"><small>Every column: tables/{name}.csv</small></p></section>'
    )


def _summary(suite: Suite, counts: Mapping) -> str:
    verdict_rows = "".join(
        f"<tr><td>{html.escape(TABLES[name].title if name in TABLES else name)}</td><td>"
        + ", ".join(f"{html.escape(str(v))}: {n}" for v, n in sorted(vs.items()))
        + "</td></tr>"
        for name, vs in counts["verdicts"].items()
    )
    failures = "".join(f"<li>{html.escape(f)}</li>" for f in counts["failures"][:50])
    more = len(counts["failures"]) - 50
    seeds = counts["seeds"]
    lo, hi = counts["seeds_per_cell"]
    return (
        '<section id="summary"><h2>Summary</h2>'
        f"<p>{html.escape(suite.description)}</p>"
        '<table class="counts"><tbody>'
        f"<tr><td>cells</td><td>{counts['cells']}</td></tr>"
        f"<tr><td>runs (cell × seed)</td><td>{counts['runs']}: {counts['ok']} finished, "
        f"{counts['failed']} failed, {counts['missing']} missing</td></tr>"
        f"<tr><td>seeds</td><td>{', '.join(map(str, seeds)) or '–'} ({lo}–{hi} per cell)</td></tr>"
        f"{verdict_rows}</tbody></table>"
        + (
            f"<h3>Runs that did not finish</h3><ul>{failures}</ul>"
            + (f"<p>… and {more} more</p>" if more > 0 else "")
            if failures
            else "<p>Every run finished.</p>"
        )
        + "<h3>How to read the numbers</h3><p>Every mean is over seeds with its 95% t-interval in brackets; "
        "every comparison gives n, Δ, its confidence interval and p, paired by seed where both cells ran the "
        "same seeds. A claim holds only when its interval excludes the opposite; otherwise it is "
        "inconclusive, with the seeds that would decide it. Findings against the paper are listed "
        "first.</p></section>"
    )


def render_report(suite: Suite, tables: Mapping[str, Table], figures_dir: Path) -> str:
    """The report page (HTML text) from the built tables and the figures folder."""
    frames = {name: t.df for name, t in tables.items()}
    said = answers(frames)
    counts = summary_counts(suite.runs, frames)
    nav = "".join(
        f'<li><a href="#section-{key}">{html.escape(title)}</a></li>' for key, title in SECTIONS.items()
    )
    parts = [
        f"<h1>LM-HT reproduction — suite {html.escape(suite.name)}</h1>",
        f'<p class="meta">Hao et al., "LM-HT SNN", NeurIPS 2024 (arXiv 2402.00411). Generated '
        f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} from {counts['runs']} run records.</p>",
        f'<nav><ol><li><a href="#summary">Summary</a></li>{nav}</ol></nav>',
        _summary(suite, counts),
    ]
    for key, title in SECTIONS.items():
        body = [f'<section id="section-{key}"><h2>{html.escape(title)}</h2>']
        if said.get(key):
            body.append(
                '<h3>Answer from the data</h3><ul class="answer">'
                + "".join(f"<li>{html.escape(s)}</li>" for s in said[key])
                + "</ul>"
            )
        body += [_figure(n, figures_dir / f"{n}.png") for n, e in FIGURES.items() if e.section == key]
        body += [_table(n, tables[n]) for n, e in TABLES.items() if e.section == key and n in tables]
        body.append("</section>")
        parts.append("".join(body))
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width, initial-scale=1"><title>LM-HT suite {html.escape(suite.name)}</title>'
        f"<style>{REPORT_CSS}</style></head><body>{''.join(parts)}</body></html>\n"
    )


def write_report(suite: Suite, tables: Mapping[str, Table], figures_dir: str | Path, out: str | Path) -> Path:
    """Write the report page atomically; return its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render_report(suite, tables, Path(figures_dir)), encoding="utf-8")
    tmp.replace(out)
    return out
