"""Aggregation of a suite: run records -> the per-run table -> every table and figure of the catalog.

``aggregate(config, suite, claims_csv, outdir)`` reads every cell of the suite (expanded from the
workflow config by :func:`lmht.experiment.grid.suite_cells`), builds the per-run table (``load``), the
per-cell summary and the claims match, then each table of :data:`lmht.experiment.catalog.TABLES` with its
builder, and writes it as CSV, Markdown, LaTeX and HTML (``render``). ``plots`` draws the figures.
Modules: ``names`` (the paper's names), ``load``, ``render``, ``paper`` (claims, orderings, Tables 1-4,
S1), ``questions`` (the open questions' tables), ``plots``.

A cell without metrics.json, with an unreadable one, or with a failure record counts as "not run" and
its reason is shown; aggregation itself never fails because of a cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lmht.experiment.catalog import TABLES, builder
from lmht.experiment.grid import suite_cells

from .load import CELL_KEYS, Suite, load_runs, summarize
from .paper import claims_table
from .render import write_table

__all__ = ["aggregate", "load_suite"]


def load_suite(config: Mapping[str, Any], suite: str, claims_csv: str | Path) -> Suite:
    """Read every cell of ``suite`` and match the paper's claims to them."""
    cells = suite_cells(config, suite)
    runs = load_runs(cells, config["results"], suite)
    summary = summarize(runs) if not runs.empty else pd.DataFrame(columns=[*CELL_KEYS, "kind", "n"])
    tolerance = float(config.get("tolerance", 1.0))
    claims = claims_table(pd.read_csv(claims_csv), runs, tolerance, suite)
    return Suite(runs, summary, claims, cells, str(config["results"]), suite, tolerance)


def aggregate(
    config: Mapping[str, Any], suite: str, claims_csv: str | Path, outdir: str | Path
) -> dict[str, pd.DataFrame]:
    """Write every table of the catalog to ``outdir`` (and ``failed_cells.txt``); return them by name."""
    outdir = Path(outdir)
    data = load_suite(config, suite, claims_csv)
    out = {}
    for name, entry in TABLES.items():
        table = builder(entry)(data)
        display = table.display
        if display is not None and not table.df.empty:
            display = [c for c in display if c in table.df.columns]
        write_table(table.df, outdir, name, entry.title, table.note, suite, display)
        out[name] = table.df
    failed = data.runs[data.runs["status"] != "ok"]["path"] if not data.runs.empty else []
    (outdir / "failed_cells.txt").write_text("".join(f"{p}\n" for p in failed))
    return out
