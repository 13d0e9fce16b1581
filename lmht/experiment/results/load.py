"""Loading a suite: one row per (cell, seed) read from its run record, and one row per cell over seeds.

The per-run table (``runs``) is the source of truth: every other table is computed from it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lmht.experiment.cell import Cell
from lmht.experiment.record import RunRecord, read_record

from .names import NOT_RUN

__all__ = [
    "CELL_FIELDS",
    "CELL_KEYS",
    "Suite",
    "cell_fields",
    "cell_runs",
    "load_runs",
    "reasons",
    "stats",
    "step_value",
    "summarize",
]

# What identifies a cell (besides its seed), as columns of the per-run and per-cell tables.
CELL_FIELDS = ("dataset", "arch", "cell", "method", "kind", "neuron", "L", "T", "tgim", "Q", "src")


def cell_fields(cell: Cell) -> dict:
    """The identifying columns of a cell's rows."""
    return {
        "dataset": cell.dataset,
        "arch": cell.arch,
        "cell": cell.name,
        "method": cell.prefix,
        "kind": cell.mode,
        "neuron": cell.neuron if cell.mode == "direct" else None,
        "L": cell.L,
        "T": cell.T,
        "tgim": cell.tgim,
        "Q": cell.Q,
        "src": cell.parent().prefix if cell.mode == "reparam" else None,
    }


def _num(value) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def load_runs(cells: Mapping[Cell, list[str]], results: str | Path, suite: str) -> pd.DataFrame:
    """One row per (cell, seed) of a suite (``lmht.experiment.grid.suite_cells``) with its status and
    headline numbers, read from each cell's run record."""
    rows = []
    for cell, grids in cells.items():
        path = cell.path(results, suite)
        status, reason, rec = read_record(path)
        ok = status == "ok"
        m: RunRecord | None = rec if ok else None
        rep = m.reparam if m is not None else None
        firing = m.firing_rate if m is not None else {}
        rates = [_num(v) for v in firing.values()]
        rows.append(
            {
                **cell_fields(cell),
                "seed": cell.seed,
                "grids": ";".join(grids),
                "path": str(path),
                "status": status,
                "reason": reason,
                "top1": _num(m.top1) if ok else math.nan,
                "best_top1": _num(m.best_top1) if ok else math.nan,
                "init_top1": _num(m.init_top1) if ok else math.nan,
                "ann_top1": _num(m.ann_top1) if ok else math.nan,
                "sops": _num(m.sops) if ok else math.nan,
                "energy_mj": _num(m.energy_mj) if ok else math.nan,
                "params": _num(m.params) if ok else math.nan,
                "wall_time_s": _num(m.wall_time_s) if ok else math.nan,
                "firing_mean": float(np.nanmean(rates)) if ok and rates else math.nan,
                "top1_per_step": m.top1_per_step if ok else None,
                "before_top1": _num(rep.before.top1) if rep else math.nan,
                "after_top1": _num(rep.after.top1) if rep else math.nan,
                "before_sops": _num(rep.before.sops) if rep else math.nan,
                "after_sops": _num(rep.after.sops) if rep else math.nan,
                "before_energy_mj": _num(rep.before.energy_mj) if rep else math.nan,
                "after_energy_mj": _num(rep.after.energy_mj) if rep else math.nan,
                "agreement": _num(rep.agreement) if rep else math.nan,
                "device": m.device if ok else None,
            }
        )
    runs = pd.DataFrame(rows)
    if runs.empty:
        runs = pd.DataFrame(columns=[*CELL_FIELDS, "seed", "grids", "path", "status", "reason", "top1"])
    for col in ("L", "T", "Q", "seed"):
        runs[col] = pd.to_numeric(runs[col], errors="coerce").astype("Int64")
    return runs


def step_value(curve, step) -> float:
    """Accuracy of a conversion curve (list, index t-1) at step t."""
    if not isinstance(curve, list) or step is None or pd.isna(step) or not 1 <= int(step) <= len(curve):
        return math.nan
    return _num(curve[int(step) - 1])


def stats(values) -> tuple[float, float, int]:
    """(mean, sample std, n) of the finite values."""
    v = np.asarray([x for x in values if isinstance(x, int | float) and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan, int(v.size)


def reasons(group: pd.DataFrame) -> str:
    """Why seeds of a cell did not run: 'seed 1: failed: ...; seed 2: no metrics.json'."""
    bad = group[group["status"] != "ok"]
    return "; ".join(f"seed {s}: {r}" for s, r in zip(bad["seed"], bad["reason"], strict=True))


CELL_KEYS = ["dataset", "arch", "cell"]


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (over seeds): mean/std/n of the numbers, how many seeds ran, why others did not."""
    out = []
    for _, g in runs.groupby(CELL_KEYS, sort=False, dropna=False):
        first = g.iloc[0]
        row = {k: first[k] for k in (*CELL_FIELDS, "grids")}
        ok = g[g["status"] == "ok"]
        row["seeds"] = ",".join(str(s) for s in g["seed"])
        row["n"] = len(ok)
        row["n_expected"] = len(g)
        row["status"] = "ok" if len(ok) == len(g) else (NOT_RUN if ok.empty else "partial")
        row["reason"] = reasons(g)
        for col in (
            "top1",
            "best_top1",
            "init_top1",
            "ann_top1",
            "sops",
            "energy_mj",
            "params",
            "wall_time_s",
            "firing_mean",
            "before_top1",
            "after_top1",
            "before_sops",
            "after_sops",
            "before_energy_mj",
            "after_energy_mj",
            "agreement",
        ):
            mean, std, _ = stats(ok[col]) if col in ok else (math.nan, math.nan, 0)
            row[f"{col}_mean"], row[f"{col}_std"] = mean, std
        out.append(row)
    return pd.DataFrame(out)


def cell_runs(runs: pd.DataFrame, dataset: str, arch: str, cell_glob: str) -> pd.DataFrame:
    """Runs of the cells whose name matches cell_glob ('*' = any digits)."""
    pattern = re.compile(re.escape(cell_glob).replace(r"\*", r"\d+") + "$")
    mask = (
        (runs["dataset"] == dataset)
        & (runs["arch"] == arch)
        & runs["cell"].map(lambda c: bool(pattern.match(c)))
    )
    return runs[mask]


@dataclass
class Suite:
    """Everything the table and figure builders read: the per-run table (the source of truth), the
    per-cell summary, the claims table (matched to cells), and the suite's identity."""

    runs: pd.DataFrame
    cells: pd.DataFrame
    claims: pd.DataFrame
    cell_grids: Mapping[Cell, list[str]]
    results: str
    name: str
    tolerance: float
