"""Loading a suite: the per-run table (one row per cell and seed) and the per-cell summary.

The per-run table is **the source of truth**: every other table and figure is computed from it, and it
is written with the results (``tables/runs.csv``): the cell's identity (dataset, arch, method, L, T,
T-GIM, Q, every variant key), the seed, the status (ok / failed / missing, with the reason) and every
metric of the run record.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lmht.experiment.cell import Cell
from lmht.experiment.record import RunRecord, read_record
from lmht.experiment.variants import VARIANTS

from . import stats as S
from .names import NOT_RUN

__all__ = ["IDENTITY", "METRICS", "Suite", "cell_fields", "load_runs", "select", "summarize", "write_runs"]

#: Columns that identify a cell (with the seed: a run).
IDENTITY = (
    "dataset",
    "arch",
    "cell",
    "method",
    "mode",
    "neuron",
    "L",
    "T",
    "steps",
    "tgim",
    "Q",
    "source",
    "variant_tags",
    *VARIANTS,
)
#: Evaluation costs of a run record (per image): SOPs and energies.
_EVAL = (
    "sops",
    "sops_value",
    "first_layer_macs",
    "energy_mj",
    "energy_first_layer_mac_mj",
    "ann_macs",
    "ann_energy_mj",
    "as_ratio",
)
#: Numbers of a run (per image where it applies; accuracies in %).
METRICS = (
    "top1",
    "best_top1",
    "init_top1",
    "ann_top1",
    "test_loss",
    "firing_mean",
    *_EVAL,
    "params",
    "wall_time_s",
    "epochs",
    "before_top1",
    "after_top1",
    "agreement",
    "before_sops",
    "after_sops",
    "before_energy_mj",
    "after_energy_mj",
)


def cell_fields(cell: Cell) -> dict:
    """The identifying columns of a cell's rows (variant columns: the value where the variant applies,
    empty where it does not)."""
    variants = {key: (cell.variant(key) if v.applies(cell) else "") for key, v in VARIANTS.items()}
    return {
        "dataset": cell.dataset,
        "arch": cell.arch,
        "cell": cell.name,
        "method": cell.method,
        "mode": cell.mode,
        "neuron": cell.neuron if cell.mode in ("direct", "reparam") else None,
        "L": cell.L,
        "T": cell.T,
        "steps": None if cell.mode == "ann" else cell.L * cell.T,
        "tgim": cell.tgim,
        "Q": cell.Q,
        "source": cell.parent().prefix if cell.mode == "reparam" else None,
        "variant_tags": cell.name.partition("+")[2] and "+" + cell.name.partition("+")[2],
        **variants,
    }


def select(df: pd.DataFrame, **where) -> pd.DataFrame:
    """Rows whose columns equal ``where`` (missing values never match)."""
    mask = pd.Series(True, index=df.index)
    for key, value in where.items():
        mask &= (df[key] == value).fillna(False).astype(bool)
    return df[mask]


def _num(value) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def _metrics(m: RunRecord) -> dict:
    rep = m.reparam
    rates = [_num(v) for v in m.firing_rate.values()]
    rates = [r for r in rates if math.isfinite(r)]
    out = {
        k: _num(getattr(m, k))
        for k in ("top1", "best_top1", "init_top1", "ann_top1", "test_loss", "params", "wall_time_s", *_EVAL)
    }
    out.update(
        firing_mean=sum(rates) / len(rates) if rates else math.nan,
        epochs=len(m.history),
        before_top1=_num(rep.before.top1) if rep else math.nan,
        after_top1=_num(rep.after.top1) if rep else math.nan,
        agreement=_num(rep.agreement) if rep else math.nan,
        before_sops=_num(rep.before.sops) if rep else math.nan,
        after_sops=_num(rep.after.sops) if rep else math.nan,
        before_energy_mj=_num(rep.before.energy_mj) if rep else math.nan,
        after_energy_mj=_num(rep.after.energy_mj) if rep else math.nan,
    )
    return out


def load_runs(cells: Mapping[Cell, list[str]], results: str | Path, suite: str) -> pd.DataFrame:
    """One row per (cell, seed) of a suite (``lmht.experiment.grid.suite_cells``): identity, status and
    every metric of its run record (NaN where the cell did not run or the metric does not apply)."""
    rows = []
    empty = dict.fromkeys(METRICS, math.nan)
    for cell, grids in cells.items():
        path = cell.path(results, suite)
        status, reason, rec = read_record(path)
        ok = status == "ok"
        rows.append(
            {
                **cell_fields(cell),
                "seed": cell.seed,
                "grids": ";".join(grids),
                "status": status,
                "reason": reason,
                **(_metrics(rec) if ok else empty),
                "top1_per_step": list(rec.top1_per_step) if ok else None,
                "warnings": "; ".join(rec.warnings) if ok else "",
                "device": rec.device if ok else "",
                "path": str(path),
            }
        )
    columns = [
        *IDENTITY,
        "seed",
        "grids",
        "status",
        "reason",
        *METRICS,
        "top1_per_step",
        "warnings",
        "device",
        "path",
    ]
    runs = pd.DataFrame(rows, columns=columns)
    for col in ("L", "T", "steps", "Q", "seed", "epochs"):
        runs[col] = pd.to_numeric(runs[col], errors="coerce").astype("Int64")
    return runs


def write_runs(runs: pd.DataFrame, path: str | Path) -> None:
    """The per-run table as CSV (the accuracy-vs-step curve as a JSON list)."""
    out = runs.copy()
    out["top1_per_step"] = [json.dumps(c) if isinstance(c, list) else "" for c in out["top1_per_step"]]
    out.to_csv(path, index=False)


def _reasons(group: pd.DataFrame) -> str:
    """Why seeds of a cell did not run: 'seed 1: failed: ...; seed 2: no metrics.json'."""
    bad = group[group["status"] != "ok"]
    return "; ".join(f"seed {s}: {r}" for s, r in zip(bad["seed"], bad["reason"], strict=True))


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell over its seeds: identity, n (seeds that ran) of n_expected, status (ok / partial /
    not run) with the reasons, and for every metric its mean, std and 95 % t-interval (``_mean``,
    ``_std``, ``_lo``, ``_hi``)."""
    out = []
    for _, g in runs.groupby(["dataset", "arch", "cell"], sort=False, dropna=False):
        first = g.iloc[0]
        ok = g[g["status"] == "ok"]
        row = {k: first[k] for k in (*IDENTITY, "grids")}
        row.update(
            seeds=",".join(str(s) for s in g["seed"]),
            n=len(ok),
            n_expected=len(g),
            status="ok" if len(ok) == len(g) else (NOT_RUN if ok.empty else "partial"),
            reason=_reasons(g),
            warnings="; ".join(sorted({w for w in ok["warnings"] if w})),
        )
        for col in METRICS:
            e = S.estimate(ok[col].tolist())
            row.update({f"{col}_mean": e.mean, f"{col}_std": e.std, f"{col}_lo": e.lo, f"{col}_hi": e.hi})
        out.append(row)
    cells = pd.DataFrame(out)
    if cells.empty:
        cells = pd.DataFrame(columns=[*IDENTITY, "grids", "seeds", "n", "n_expected", "status", "reason"])
    for col in ("L", "T", "steps", "Q", "n", "n_expected"):
        cells[col] = pd.to_numeric(cells[col], errors="coerce").astype("Int64")
    return cells


@dataclass
class Suite:
    """Everything the table, figure and report builders read.

    Attributes:
        runs: the per-run table (source of truth). cells: the per-cell summary.
        claims: the paper's numbers (``paper-claims.csv``) matched to cells, with verdicts.
        cell_grids: the suite's cells and the grids that asked for them.
        results, name: where the suite's outputs live (``{results}/{name}/``).
        tolerance: accuracy tolerance in points of the paper-claim and equivalence verdicts.
        description: the suite's description from the config.
    """

    runs: pd.DataFrame
    cells: pd.DataFrame
    claims: pd.DataFrame
    cell_grids: Mapping[Cell, list[str]]
    results: str
    name: str
    tolerance: float
    description: str = ""

    def folder(self) -> Path:
        return Path(self.results) / self.name
