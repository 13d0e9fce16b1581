"""Figures of a suite (seaborn), one function per entry of :data:`lmht.experiment.catalog.FIGURES`.

accuracy_vs_steps  accuracy of the cumulative output after each step, against the number of
                   single-threshold-equivalent steps t·L: conversion curve, hybrid and direct cells, with
                   the QCFS ANN as a dashed line (open question 1)
depth              accuracy against depth per family (direct LM-HT, IF at the same L·T, hybrid, QCFS ANN)
lt_heatmap         mean top-1 of LM-HT over L × T (direct, uniform T-GIM; and hybrid), per dataset/arch
tgim_matrices      the learned T-GIM Ω of each spiking layer (tgim.json), one row per T-GIM initialization
firing_rate        mean spike level per neuron and step, per spiking layer
training_curves    test accuracy per epoch (run record history) of every trained cell
Failed or missing cells are left out; a figure without data says so instead of failing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from lmht.experiment.catalog import FIGURES
from lmht.experiment.record import read_record

from .load import Suite, cell_fields
from .names import method_label
from .questions import depth_table

__all__ = ["plots"]

MAX_PANELS = 6


MAX_PANELS = 6


def load(suite: Suite) -> list[dict]:
    """The cells that ran: their identifying fields, run record (``metrics``) and tgim.json."""
    out = []
    for cell in suite.cell_grids:
        path = cell.path(suite.results, suite.name)
        status, _, record = read_record(path)
        if status != "ok":
            continue
        try:
            tgim = json.loads(path.with_name("tgim.json").read_text())
        except (OSError, ValueError):
            tgim = {}
        e = {**cell_fields(cell), "seed": cell.seed}
        out.append({**e, "metrics": record, "tgim_layers": tgim, "label": label(e)})
    return out


def label(e: dict) -> str:
    name = method_label(e["method"])
    if e["kind"] == "ann":
        return name
    if e["kind"] == "convert":
        return name
    extra = f", {e['tgim']}" if e.get("tgim") not in (None, "none", "uniform") else ""
    return f"{name} L{e['L']}T{e['T']}{extra}"


def empty(path: Path, message: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    ax.set_axis_off()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def grid_axes(n: int, width: float = 5.0, height: float = 3.6):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    return fig, list(axes.flat)


def save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
def accuracy_vs_steps(cells: list[dict], path: Path) -> None:
    rows, anns = [], []
    for c in cells:
        m = c["metrics"]
        if c["kind"] == "ann":
            anns.append({"dataset": c["dataset"], "arch": c["arch"], "Q": c["Q"], "top1": m.top1})
            continue
        curve = m.top1_per_step or []
        L = c["L"] or 1
        if c["kind"] == "reparam":
            L = 1  # the reparameterized network already runs T·L single-threshold steps
        for t, acc in enumerate(curve, start=1):
            rows.append(
                {
                    "dataset": c["dataset"],
                    "arch": c["arch"],
                    "method": c["label"],
                    "steps": t * L,
                    "top1": acc,
                    "seed": c["seed"],
                }
            )
    df = pd.DataFrame(rows)
    if df.empty:
        return empty(path, "No accuracy-vs-step curves in this suite (no cell ran).")
    panels = list(df.groupby(["dataset", "arch"]))[:MAX_PANELS]
    fig, axes = grid_axes(len(panels), width=6.5, height=4.2)
    for ax, ((ds, arch), g) in zip(axes, panels, strict=False):
        sns.lineplot(data=g, x="steps", y="top1", hue="method", marker="o", errorbar="sd", ax=ax)
        for a in anns:
            if a["dataset"] == ds and a["arch"] == arch:
                ax.axhline(a["top1"], ls="--", lw=0.8, color="gray")
        ann_q = sorted({a["Q"] for a in anns if a["dataset"] == ds and a["arch"] == arch})
        ax.set_xscale("log", base=2)
        ax.set_xlabel("single-threshold-equivalent steps (t·L)")
        ax.set_ylabel("top-1 (%)")
        ax.set_title(f"{ds} / {arch}" + (f"  (dashed: QCFS ANN Q={ann_q})" if ann_q else ""), fontsize=9)
        ax.legend(fontsize=6, loc="lower right")
    save(fig, path)


def depth(suite: Suite, path: Path) -> None:
    df = depth_table(suite.cells)
    value_cols = ["lmht_direct", "if_same_budget", "hybrid", "qcfs_ann"]
    if df.empty or df["depth"].notna().sum() < 2:
        return empty(
            path,
            "Depth series needs at least two architectures of known depth in the suite "
            "(the paper suite has ResNet-20/18/34 and VGG-11/13/16).",
        )
    long = df.melt(
        id_vars=["dataset", "family", "depth", "arch"],
        value_vars=value_cols,
        var_name="model",
        value_name="top1",
    ).dropna(subset=["top1", "depth"])
    panels = list(long.groupby(["dataset", "family"]))[:MAX_PANELS]
    fig, axes = grid_axes(len(panels))
    for ax, ((ds, fam), g) in zip(axes, panels, strict=False):
        sns.lineplot(data=g, x="depth", y="top1", hue="model", marker="o", ax=ax)
        ax.set_title(f"{ds} / {fam}", fontsize=9)
        ax.set_ylabel("top-1 (%)")
        ax.legend(fontsize=7)
    save(fig, path)


def lt_heatmap(cells: list[dict], path: Path) -> None:
    rows = [
        {
            "dataset": c["dataset"],
            "arch": c["arch"],
            "method": method_label(c["method"]),
            "L": c["L"],
            "T": c["T"],
            "top1": c["metrics"].top1,
        }
        for c in cells
        if (c["kind"] == "direct" and c["neuron"] == "lmht" and c["tgim"] == "uniform")
        or c["kind"] == "hybrid"
    ]
    df = pd.DataFrame(rows)
    panels = (
        [
            (k, g)
            for k, g in df.groupby(["dataset", "arch", "method"])
            if g[["L", "T"]].drop_duplicates().shape[0] > 1
        ]
        if not df.empty
        else []
    )
    if not panels:
        return empty(path, "No L × T grid of LM-HT cells in this suite.")
    panels = panels[:MAX_PANELS]
    fig, axes = grid_axes(len(panels), width=4.5, height=3.8)
    for ax, ((ds, arch, method), g) in zip(axes, panels, strict=False):
        table = g.groupby(["L", "T"])["top1"].mean().unstack("T").sort_index(ascending=False)
        sns.heatmap(table, annot=True, fmt=".1f", cmap="viridis", ax=ax, cbar_kws={"label": "top-1 (%)"})
        ax.set_title(f"{ds} / {arch}\n{method} (mean over seeds)", fontsize=9)
    save(fig, path)


def tgim_matrices(cells: list[dict], path: Path) -> None:
    cands = [
        c
        for c in cells
        if c["tgim_layers"]
        and any(
            isinstance(v, dict) and v.get("tgim") is not None and len(v["tgim"]) > 1
            for v in c["tgim_layers"].values()
        )
    ]
    if not cands:
        return empty(path, "No learned T-GIM (tgim.json with T > 1) in this suite.")
    # the (dataset, arch, method, L, T) with the most T-GIM initializations, then the largest T
    groups: dict[tuple, dict[str, dict]] = {}
    for c in sorted(cands, key=lambda c: c["seed"]):
        key = (c["dataset"], c["arch"], c["method"], c["L"], c["T"])
        groups.setdefault(key, {}).setdefault(c["tgim"], c)
    key, by_init = max(groups.items(), key=lambda kv: (len(kv[1]), kv[0][4]))
    inits = sorted(by_init)
    vmax = max(
        float(np.nanmax(np.asarray(v["tgim"], dtype=float)))
        for c in by_init.values()
        for v in c["tgim_layers"].values()
        if isinstance(v, dict) and v.get("tgim")
    )
    layers = [k for k, v in by_init[inits[0]]["tgim_layers"].items() if isinstance(v, dict) and v.get("tgim")]
    layers = layers[:MAX_PANELS]
    fig, axes = plt.subplots(
        len(inits), len(layers), figsize=(2.4 * len(layers) + 1, 2.3 * len(inits)), squeeze=False
    )
    for i, init in enumerate(inits):
        tg = by_init[init]["tgim_layers"]
        for j, layer in enumerate(layers):
            ax = axes[i][j]
            mat = np.asarray(tg.get(layer, {}).get("tgim") or [[np.nan]], dtype=float)
            sns.heatmap(
                mat,
                annot=mat.shape[0] <= 4,
                fmt=".2f",
                cmap="magma",
                cbar=False,
                square=True,
                ax=ax,
                vmin=min(0.0, float(np.nanmin(mat))),
                vmax=max(vmax, 1e-6),
            )
            leak = tg.get(layer, {}).get("leak")
            ax.set_title(
                f"{layer}" + (f"  λ={leak:.2f}" if isinstance(leak, int | float) else ""), fontsize=7
            )
            ax.set_xlabel("source step j" if i == len(inits) - 1 else "")
            ax.set_ylabel(f"init {init}\nstep t" if j == 0 else "")
    fig.suptitle(
        f"Learned T-GIM Ω[t, j]: {key[0]} / {key[1]} / {method_label(key[2])} L={key[3]} T={key[4]} "
        f"(seed {by_init[inits[0]]['seed']})",
        fontsize=9,
    )
    save(fig, path)


def firing_rate(cells: list[dict], path: Path) -> None:
    rows = []
    for c in cells:
        fr = c["metrics"].firing_rate
        if c["kind"] in ("ann",) or not isinstance(fr, dict):
            continue
        for i, (layer, rate) in enumerate(fr.items()):
            if isinstance(rate, int | float):
                rows.append(
                    {
                        "dataset": c["dataset"],
                        "arch": c["arch"],
                        "cell": c["label"],
                        "layer": i,
                        "layer_name": layer,
                        "rate": rate,
                        "seed": c["seed"],
                    }
                )
    df = pd.DataFrame(rows)
    if df.empty:
        return empty(path, "No firing rates recorded in this suite.")
    panels = list(df.groupby(["dataset", "arch"]))[:MAX_PANELS]
    fig, axes = grid_axes(len(panels), width=7, height=4.2)
    for ax, ((ds, arch), g) in zip(axes, panels, strict=False):
        sns.lineplot(data=g, x="layer", y="rate", hue="cell", marker="o", errorbar="sd", ax=ax)
        ax.set_xlabel("spiking layer (execution order)")
        ax.set_ylabel("mean spike level per neuron per step")
        ax.set_title(f"{ds} / {arch}", fontsize=9)
        ax.legend(fontsize=6)
    save(fig, path)


def training_curves(cells: list[dict], path: Path) -> None:
    rows = []
    for c in cells:
        for h in c["metrics"].history or []:
            if isinstance(h, dict) and isinstance(h.get("test_acc"), int | float):
                rows.append(
                    {
                        "dataset": c["dataset"],
                        "arch": c["arch"],
                        "cell": c["label"],
                        "seed": c["seed"],
                        "epoch": h.get("epoch"),
                        "test_acc": h["test_acc"],
                    }
                )
    df = pd.DataFrame(rows)
    if df.empty:
        return empty(path, "No training history in this suite.")
    panels = list(df.groupby(["dataset", "arch"]))[:MAX_PANELS]
    fig, axes = grid_axes(len(panels), width=7, height=4.2)
    for ax, ((ds, arch), g) in zip(axes, panels, strict=False):
        sns.lineplot(data=g, x="epoch", y="test_acc", hue="cell", marker="o", errorbar="sd", ax=ax)
        ax.set_ylabel("test top-1 (%)")
        ax.set_title(f"{ds} / {arch} (mean ± sd over seeds)", fontsize=9)
        ax.legend(fontsize=6)
    save(fig, path)


def plots(suite: Suite, outdir: str | Path) -> dict[str, Path]:
    """Draw every figure of the catalog into ``outdir/NAME.png``; return the paths."""
    sns.set_theme(style="whitegrid", context="paper")
    cells = load(suite)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {name: outdir / f"{name}.png" for name in FIGURES}
    accuracy_vs_steps(cells, paths["accuracy_vs_steps"])
    depth(suite, paths["depth"])
    lt_heatmap(cells, paths["lt_heatmap"])
    tgim_matrices(cells, paths["tgim_matrices"])
    firing_rate(cells, paths["firing_rate"])
    training_curves(cells, paths["training_curves"])
    return paths
