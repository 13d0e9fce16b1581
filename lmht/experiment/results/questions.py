"""The open questions' tables: gap to the quantized ANN, depth, (L, T) budget, T-GIM initialization."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .load import Suite, stats, step_value
from .names import (
    ARCH_DEPTH,
    method_label,
)
from .render import Table, pm


def gap_table(cells: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Open question 1: hybrid LM-HT vs its QCFS ANN (Theorem 4.4 makes them equal at init when Q = T·L)."""
    rows = []
    for _, h in cells[cells["kind"] == "hybrid"].iterrows():
        ann = cells[
            (cells["kind"] == "ann")
            & (cells["dataset"] == h["dataset"])
            & (cells["arch"] == h["arch"])
            & (cells["Q"] == h["Q"])
        ]
        a = ann.iloc[0] if not ann.empty else None
        conv = runs[
            (runs["kind"] == "convert")
            & (runs["dataset"] == h["dataset"])
            & (runs["arch"] == h["arch"])
            & (runs["Q"] == h["Q"])
            & (runs["status"] == "ok")
        ]
        conv_mean, _, _ = stats([step_value(c, h["L"] * h["T"]) for c in conv["top1_per_step"]])
        ann_mean = a["top1_mean"] if a is not None else h["ann_top1_mean"]
        rows.append(
            {
                "dataset": h["dataset"],
                "arch": h["arch"],
                "Q": h["Q"],
                "L": h["L"],
                "T": h["T"],
                "tgim": h["tgim"],
                "exact": "yes" if h["Q"] == h["L"] * h["T"] else "no",
                "n": h["n"],
                "ann": ann_mean,
                "hybrid_init": h["init_top1_mean"],
                "hybrid": h["top1_mean"],
                "hybrid_pm": pm(h["top1_mean"], h["top1_std"], h["n"]),
                "converted_at_LxT": conv_mean,
                "init_gap": h["init_top1_mean"] - ann_mean,
                "gap": h["top1_mean"] - ann_mean,
                "converted_gap": conv_mean - ann_mean,
                "status": h["status"],
                "reason": h["reason"],
            }
        )
    return pd.DataFrame(rows)


GAP_DISPLAY = [
    "dataset",
    "arch",
    "Q",
    "L",
    "T",
    "exact",
    "ann",
    "hybrid_init",
    "hybrid_pm",
    "converted_at_LxT",
    "init_gap",
    "gap",
    "converted_gap",
    "n",
    "status",
    "reason",
]


def depth_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Open question 2: per dataset and family, accuracy against depth, and the LM-HT gains."""
    rows = []
    for (ds, arch), g in cells.groupby(["dataset", "arch"], sort=False):
        family, depth = ARCH_DEPTH.get(arch, ("other", None))

        def best(mask, g=g):
            sel = g[mask & (g["n"] > 0)]
            return sel.sort_values("top1_mean").iloc[-1] if not sel.empty else None

        lmht = best((g["kind"] == "direct") & (g["neuron"] == "lmht") & (g["tgim"] == "uniform"))
        if_same = None
        if lmht is not None:
            if_same = best(
                (g["kind"] == "direct") & g["neuron"].isin(["if", "lif"]) & (g["T"] == lmht["L"] * lmht["T"])
            )
        hyb = best(g["kind"] == "hybrid")
        ann = None
        if hyb is not None:
            ann = best((g["kind"] == "ann") & (g["Q"] == hyb["Q"]))
        rows.append(
            {
                "dataset": ds,
                "family": family,
                "depth": depth,
                "arch": arch,
                "params_M": (g["params_mean"].max() / 1e6) if g["params_mean"].notna().any() else math.nan,
                "lmht_direct": lmht["top1_mean"] if lmht is not None else math.nan,
                "lmht_LT": f"L{lmht['L']}T{lmht['T']}" if lmht is not None else "",
                "if_same_budget": if_same["top1_mean"] if if_same is not None else math.nan,
                "gain_over_if": (lmht["top1_mean"] - if_same["top1_mean"])
                if if_same is not None
                else math.nan,
                "hybrid": hyb["top1_mean"] if hyb is not None else math.nan,
                "qcfs_ann": ann["top1_mean"] if ann is not None else math.nan,
                "hybrid_gap_to_ann": (hyb["top1_mean"] - ann["top1_mean"]) if ann is not None else math.nan,
            }
        )
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df.sort_values(["dataset", "family", "depth"], na_position="last").reset_index(drop=True)
    return df


def budget_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Open question 3a: every (L, T) split of each L·T budget (direct LM-HT and hybrid), ranked."""
    sel = cells[
        ((cells["kind"] == "direct") & (cells["neuron"] == "lmht") & (cells["tgim"] == "uniform"))
        | (cells["kind"] == "hybrid")
    ].copy()
    if sel.empty:
        return pd.DataFrame()
    sel["budget"] = sel["L"] * sel["T"]
    sel["method_label"] = sel["method"].map(method_label)
    sel["top1"] = [pm(m, s, n) for m, s, n in zip(sel["top1_mean"], sel["top1_std"], sel["n"], strict=True)]
    sel["rank"] = sel.groupby(["dataset", "arch", "method", "budget"])["top1_mean"].rank(
        ascending=False, method="min"
    )
    sel["best"] = np.where(sel["rank"] == 1, "best", "")
    cols = [
        "dataset",
        "arch",
        "method_label",
        "budget",
        "L",
        "T",
        "top1",
        "n",
        "top1_mean",
        "top1_std",
        "rank",
        "best",
        "sops_mean",
        "energy_mj_mean",
        "status",
        "reason",
    ]
    return sel.sort_values(["dataset", "arch", "method_label", "budget", "rank"])[cols].reset_index(drop=True)


BUDGET_DISPLAY = [
    "dataset",
    "arch",
    "method_label",
    "budget",
    "L",
    "T",
    "top1",
    "n",
    "rank",
    "best",
    "sops_mean",
    "status",
    "reason",
]


def tgim_spread(runs: pd.DataFrame) -> dict[tuple, tuple[float, float]]:
    """Per cell: (mean distance between seeds' learned T-GIMs, mean distance from the initial T-GIM).

    Distances are Frobenius norms per layer, averaged over layers (and seed pairs); from tgim.json.
    """
    out = {}
    by_cell: dict[tuple, list[dict]] = {}
    inits: dict[tuple, str] = {}
    for _, r in runs[runs["status"] == "ok"].iterrows():
        f = Path(r["path"]).with_name("tgim.json")
        try:
            layers = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        mats = {
            k: np.asarray(v["tgim"], dtype=float)
            for k, v in layers.items()
            if isinstance(v, dict) and v.get("tgim") is not None
        }
        if mats:
            key = (r["dataset"], r["arch"], r["cell"])
            by_cell.setdefault(key, []).append(mats)
            inits[key] = r["tgim"]
    for key, seeds in by_cell.items():
        T = next(iter(seeds[0].values())).shape[0]
        init = {"uniform": np.full((T, T), 1.0 / T), "identity": np.eye(T)}.get(inits[key])
        drift = [np.linalg.norm(m - init) for s in seeds for m in s.values()] if init is not None else []
        pairs = [
            np.mean([np.linalg.norm(a[k] - b[k]) for k in a if k in b])
            for i, a in enumerate(seeds)
            for b in seeds[i + 1 :]
        ]
        out[key] = (
            float(np.mean(pairs)) if pairs else math.nan,
            float(np.mean(drift)) if drift else math.nan,
        )
    return out


def tgim_table(cells: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Open question 3b: T-GIM initializations of LM-HT at the same (L, T), and the seed spread."""
    sel = cells[
        (cells["kind"].isin(["direct", "hybrid"])) & cells["tgim"].isin(["uniform", "identity", "random"])
    ]
    groups = sel.groupby(["dataset", "arch", "method", "L", "T"])
    sel = pd.concat([g for _, g in groups if g["tgim"].nunique() > 1] or [pd.DataFrame(columns=sel.columns)])
    spread = tgim_spread(runs)
    rows = []
    for _, c in sel.iterrows():
        seed_dist, drift = spread.get((c["dataset"], c["arch"], c["cell"]), (math.nan, math.nan))
        rows.append(
            {
                "dataset": c["dataset"],
                "arch": c["arch"],
                "method": method_label(c["method"]),
                "L": c["L"],
                "T": c["T"],
                "tgim_init": c["tgim"],
                "top1": pm(c["top1_mean"], c["top1_std"], c["n"]),
                "n": c["n"],
                "top1_mean": c["top1_mean"],
                "top1_std": c["top1_std"],
                "tgim_seed_distance": seed_dist,
                "tgim_drift_from_init": drift,
                "firing_mean": c["firing_mean_mean"],
                "status": c["status"],
                "reason": c["reason"],
            }
        )
    return pd.DataFrame(rows)


TGIM_DISPLAY = [
    "dataset",
    "arch",
    "method",
    "L",
    "T",
    "tgim_init",
    "top1",
    "n",
    "tgim_seed_distance",
    "tgim_drift_from_init",
    "firing_mean",
    "status",
    "reason",
]


# ---------------------------------------------------- builders of the catalog (lmht.experiment.catalog)
def gap(suite: Suite) -> Table:
    return Table(
        gap_table(suite.cells, suite.runs),
        "Hybrid LM-HT at initialization (exact when Q = T·L, Theorem 4.4) and after fine-tuning, and the "
        "converted IF SNN at L·T steps, each minus the QCFS ANN's top-1.",
        GAP_DISPLAY,
    )


def depth(suite: Suite) -> Table:
    return Table(
        depth_table(suite.cells),
        "Best uniform-T-GIM direct LM-HT per architecture, single-threshold neurons at the same L·T, and"
        " hybrid vs its ANN.",
        None,
    )


def budget(suite: Suite) -> Table:
    return Table(
        budget_table(suite.cells),
        "Rank 1 = the best split of the budget (mean top-1 over seeds).",
        BUDGET_DISPLAY,
    )


def tgim(suite: Suite) -> Table:
    return Table(
        tgim_table(suite.cells, suite.runs),
        "tgim_seed_distance: mean Frobenius distance between seeds' learned T-GIMs (per layer); "
        "tgim_drift_from_init: distance of the learned T-GIM from its initialization.",
        TGIM_DISPLAY,
    )
