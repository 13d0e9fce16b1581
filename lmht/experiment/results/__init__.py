"""Aggregation of a suite: run records -> the per-run table -> every table, figure and the report.

* :func:`load_suite` reads every cell of a suite (expanded from the workflow config by
  :func:`lmht.experiment.grid.suite_cells`) into the per-run table (``load``), the per-cell summary and
  the paper's claims matched to cells;
* :func:`build_tables` builds every table of :data:`lmht.experiment.catalog.TABLES` with its builder;
* :func:`aggregate` writes them (CSV, Markdown, LaTeX, HTML; ``render``) with ``runs.csv``, the per-run
  table every other table is computed from, and ``failed_cells.txt``;
* ``plots.plots`` draws the figures; :func:`build_report` writes the HTML report.

Modules: ``names`` (the paper's names, labels), ``load``, ``stats`` (CIs, verdicts, power), ``compare``
(orderings, variants), ``paper`` (claims, Tables 1-4, S1, cells), ``questions`` (the open questions),
``answers`` (the report's sentences), ``render``, ``plots``, ``report``.

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

from .load import Suite, load_runs, summarize, write_runs
from .paper import claims_table
from .render import Table, write_table

__all__ = ["aggregate", "build_report", "build_tables", "load_suite"]

RUNS_FILE = "runs.csv"
FAILED_FILE = "failed_cells.txt"


def load_suite(config: Mapping[str, Any], suite: str, claims_csv: str | Path) -> Suite:
    """Read every cell of ``suite`` (per-run table, per-cell summary) and match the paper's claims."""
    cells = suite_cells(config, suite)
    runs = load_runs(cells, config["results"], suite)
    tolerance = float(config.get("tolerance", 1.0))
    claims = claims_table(pd.read_csv(claims_csv), runs, tolerance, suite)
    description = str(config["suites"][suite].get("description", ""))
    return Suite(runs, summarize(runs), claims, cells, str(config["results"]), suite, tolerance, description)


def build_tables(suite: Suite) -> dict[str, Table]:
    """Every table of the catalog, built from the suite."""
    return {name: builder(entry)(suite) for name, entry in TABLES.items()}


def aggregate(
    config: Mapping[str, Any], suite: str, claims_csv: str | Path, outdir: str | Path
) -> dict[str, pd.DataFrame]:
    """Write every table of the catalog, ``runs.csv`` and ``failed_cells.txt`` to ``outdir``."""
    outdir = Path(outdir)
    data = load_suite(config, suite, claims_csv)
    tables = build_tables(data)
    for name, table in tables.items():
        write_table(table, outdir, name, TABLES[name].title, suite)
    write_runs(data.runs, outdir / RUNS_FILE)
    failed = data.runs.loc[data.runs["status"] != "ok", "path"]
    (outdir / FAILED_FILE).write_text("".join(f"{p}\n" for p in failed))
    return {name: t.df for name, t in tables.items()}


def build_report(
    config: Mapping[str, Any], suite: str, claims_csv: str | Path, figures_dir: str | Path, out: str | Path
) -> Path:
    """Write the suite's HTML report (``report.write_report``) from its cells and figures."""
    from .report import write_report

    data = load_suite(config, suite, claims_csv)
    return write_report(data, build_tables(data), figures_dir, out)
