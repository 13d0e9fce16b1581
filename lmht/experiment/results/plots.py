"""Figures of a suite: one function ``NAME(suite) -> Figure`` per entry of
:data:`lmht.experiment.catalog.FIGURES`, and :func:`plots`, which draws them all into PNG files.

accuracy_vs_steps  OQ1: accuracy of the cumulative output after each step against single-threshold-
                   equivalent steps t·L, conversion / hybrid / direct cells, one dashed line per QCFS ANN
ann_gap            OQ1: gap to the QCFS ANN of each Q (hybrid at init and fine-tuned, converted at T·L,
                   direct LM-HT) against T·L, with Theorem 4.4's limit (gap 0 at init when T·L = Q)
depth              OQ2: top-1 against depth per architecture family, and the LM-HT − IF gain
lt_heatmap         OQ3: mean top-1 over (L, T), colour = Δ to the panel's best cell, budgets marked
tgim_matrices      OQ3: the learned T-GIM Ω per layer and initialization, mean over seeds
firing_rate        mean spike level per neuron and step in each spiking layer
training_curves    test top-1 per epoch, by stage (ANN pretraining, hybrid fine-tuning, direct training)

What they read: the per-run table ``suite.runs`` (the source of truth), the per-cell summary
``suite.cells``, ``suite.name`` and the files next to each run's ``metrics.json`` (``tgim.json``; the run
record itself for the per-epoch and per-layer numbers that the per-run table does not hold). Failed and
missing runs are left out and counted in every figure's title. The conventions they share (one colour per
method, 95 % t-intervals, legends outside, integer ticks, n in titles) live in
:mod:`lmht.experiment.results.figstyle`; tests/test_plots.py checks them.

Over 400 lines because it holds all seven figures, one function each; to add a figure, write
``NAME(suite) -> Figure`` here (decorated with :func:`~lmht.experiment.results.figstyle.styled`), declare
it in :mod:`lmht.experiment.catalog` and write its caption in ``workflow/report/figures/NAME.rst``.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from lmht.experiment.catalog import FIGURES, builder
from lmht.experiment.record import read_record

from . import stats as S
from .figstyle import (
    FACETS,
    PALETTE,
    ZOOM,
    arch_info,
    as_estimate,
    cell_order,
    cell_styles,
    cells_of,
    clamp_percent,
    curve_estimates,
    dodges,
    error_point,
    facets,
    family,
    gid_of,
    integer_ticks,
    is_paper_method,
    label_n,
    legend_below,
    legend_columns,
    mean_line,
    message_figure,
    n_suffix,
    n_text,
    ok_runs,
    panel_grid,
    plain,
    save,
    seed_values,
    shade,
    styled,
    suptitle,
    zoom,
)
from .load import Suite
from .names import method_label

__all__ = [
    "STAGES",
    "accuracy_vs_steps",
    "ann_gap",
    "depth",
    "firing_rate",
    "lt_heatmap",
    "plots",
    "tgim_matrices",
    "training_curves",
]

#: The (L, T) colour scale spans at least this many median 95 % CI half-widths (noise stays pale).
_CI_SPAN = 3


# --------------------------------------------------------------------------------------------------
# OQ1: accuracy against steps, gap to the ANN
# --------------------------------------------------------------------------------------------------
def _step_factor(row) -> int:
    """Single-threshold steps per entry of ``top1_per_step``: L for an LM-HT/M-HT cell (one step of L
    levels counts as L), 1 for single-threshold cells (IF, conversion, a reparameterized network)."""
    return 1 if row["mode"] in ("reparam", "convert") else int(plain(row["L"]) or 1)


@styled
def accuracy_vs_steps(suite: Suite) -> Figure:
    """Top-1 of the cumulative output after each step against t·L, one panel per dataset/arch and method
    group; one dashed line per QCFS ANN (per Q, with its 95 % t-interval) in every panel of its
    dataset/arch."""
    anns = {k: g for k, g in cells_of(suite.runs) if g["method"].iloc[0] == "ann"}
    styles = cell_styles(suite.runs)

    def series(g):
        if g["method"].iloc[0] == "ann":
            return [], []
        ests = curve_estimates(g)
        return [(i + 1) * _step_factor(g.iloc[0]) for i in range(len(ests))], ests

    def reference(ax, da, panel_n):
        values, ns, handles = [], [], []
        for k in sorted((k for k in anns if k[:2] == da), key=lambda k: plain(anns[k]["Q"].iloc[0])):
            e, st = S.estimate(anns[k]["top1"].tolist()), styles[k]
            ci = f" (CI {e.lo:.1f}–{e.hi:.1f})" if e.n > 1 else ""
            handles.append(
                ax.axhline(
                    e.mean,
                    color=st["color"],
                    linestyle=st["linestyle"],
                    linewidth=1.1,
                    gid=gid_of(k),
                    label=label_n(st, e.n, panel_n) + f": {e.mean:.2f} %{ci}",
                )
            )
            values.append(e.mean)
            ns.append(e.n)
        return values, ns, handles

    return _per_cell_lines(
        suite,
        FIGURES["accuracy_vs_steps"].title,
        series,
        "single-threshold-equivalent steps t·L",
        "top-1 of the cumulative output (%)",
        FACETS,
        log2=True,
        reference=reference,
        reserve=lambda da: sum(1 for k in anns if k[:2] == da),
        empty="No cell with an accuracy-after-each-step curve ran in this suite.",
    )


@styled
def ann_gap(suite: Suite) -> Figure:
    """Gap to the QCFS ANN of each Q against T·L: converted (curve), hybrid at init (hollow) and after
    fine-tuning (filled, an arrow from init), direct LM-HT (L ≥ 2, the paper's method); the zero line and
    T·L = Q, where Theorem 4.4 makes the hybrid start at the ANN (exactly for every layer with the exact
    init variant; under Algorithm 1 exactly for the first neuron layer, approximately after it)."""
    title = FIGURES["ann_gap"].title
    styles = cell_styles(suite.runs)
    cells = dict(cells_of(suite.runs))
    anns = {k: g for k, g in cells.items() if g["method"].iloc[0] == "ann"}
    panels = []
    for ak, ag in anns.items():
        Q = plain(ag["Q"].iloc[0])
        same = {k: g for k, g in cells.items() if k[:2] == ak[:2]}
        members = [
            k
            for k, g in same.items()
            if (g["method"].iloc[0] in ("convert", "hybrid") and plain(g["Q"].iloc[0]) == Q)
            or (
                g["method"].iloc[0] == "direct-lmht"
                and is_paper_method(g.iloc[0])
                and plain(g["L"].iloc[0]) > 1
            )
        ]
        if any(cells[k]["method"].iloc[0] != "direct-lmht" for k in members):
            panels.append((ak, Q, members))
    if not panels:
        return message_figure(
            suite,
            title,
            [
                "Needs a QCFS ANN and its converted or hybrid cells in one dataset/arch",
                "(grid methods ann with convert or hybrid); none ran in this suite.",
            ],
        )
    rows = list(dict.fromkeys(ak[:2] for ak, _, _ in panels))
    n_cols = max(sum(1 for ak, _, _ in panels if ak[:2] == da) for da in rows)
    entries = max(
        sum(2 if cells[k]["method"].iloc[0] == "hybrid" else 1 for k in m) + 2 for _, _, m in panels
    )
    fig, axes = panel_grid(len(rows), n_cols, legend_lines=entries)
    used = {da: 0 for da in rows}
    for ak, Q, members in panels:
        r = rows.index(ak[:2])
        ax = axes[r][used[ak[:2]]]
        used[ak[:2]] += 1
        ann = seed_values(anns[ak], "top1")
        values, xs, ns, handles = [0.0], [Q], [len(ann)], []
        points = []  # (T·L, cell key): hybrid and direct cells, dodged side by side at each T·L
        for k in members:
            g = cells[k]
            if g["method"].iloc[0] == "convert":
                per_seed = {
                    s: c for s, c in zip(g["seed"], g["top1_per_step"], strict=True) if isinstance(c, list)
                }
                gaps = [
                    as_estimate(S.compare({s: c[i] for s, c in per_seed.items() if len(c) > i}, ann))
                    for i in range(max(map(len, per_seed.values())))
                ]
                x = list(range(1, len(gaps) + 1))
                handles.append(
                    mean_line(
                        ax,
                        x,
                        gaps,
                        styles[k],
                        gid_of(k),
                        f"QCFS→IF conversion Q={Q} after t = T·L steps" + n_suffix(len(per_seed), len(ann)),
                        log2=True,
                    )
                )
                values += [e.mean for e in gaps]
                xs += x
                ns.append(len(per_seed))
            else:
                points.append((int(plain(g["steps"].iloc[0])), k))
        for steps in sorted({p[0] for p in points}):
            here = sorted(
                (k for x, k in points if x == steps), key=lambda k: cells[k]["method"].iloc[0] != "hybrid"
            )
            for k, dodge in zip(here, dodges(len(here), width=0.1 * len(here)), strict=True):
                g, st, x = cells[k], styles[k], steps * 2**dodge
                n = n_suffix(len(g), len(ann))
                if g["method"].iloc[0] == "hybrid":
                    init = S.compare(seed_values(g, "init_top1"), ann)
                    tuned = S.compare(seed_values(g, "top1"), ann)
                    for c, fill, what in ((init, "white", "at init"), (tuned, st["color"], "fine-tuned")):
                        handles.append(
                            error_point(
                                ax,
                                x,
                                c,
                                {**st, "markerfacecolor": fill, "linestyle": "none"},
                                f"{st['label']} {what}{n}",
                                gid=f"{gid_of(k)}:{what}",
                            )
                        )
                        values.append(c.delta)
                    if math.isfinite(init.delta) and math.isfinite(tuned.delta) and init.delta != tuned.delta:
                        ax.add_patch(
                            FancyArrowPatch(
                                (x, init.delta),
                                (x, tuned.delta),
                                arrowstyle="->",
                                mutation_scale=8,
                                color=st["color"],
                                lw=0.9,
                                shrinkA=4,
                                shrinkB=4,
                            )
                        )
                else:  # direct LM-HT: not built from the ANN, so unpaired (Welch)
                    c = S.compare(list(seed_values(g, "top1").values()), list(ann.values()))
                    handles.append(
                        error_point(ax, x, c, {**st, "linestyle": "none"}, st["label"] + n, gid=gid_of(k))
                    )
                    values.append(c.delta)
                xs.append(steps)
                ns.append(len(g))
        ax.axhline(0.0, color="black", linewidth=0.9)
        ax.axvline(Q, color="black", linestyle=":", linewidth=1.0)
        handles += ax.plot(
            [Q],
            [0.0],
            marker="*",
            markersize=9,
            color="black",
            linestyle="none",
            zorder=1.5,
            label=f"Theorem 4.4's limit: gap 0 at init, T·L = Q = {Q}",
        )
        zoom(ax, values, handles, what="gaps", span=ZOOM / 2)
        integer_ticks(ax.xaxis, xs, log2=True)
        ax.set_xlabel("single-threshold-equivalent steps T·L")
        ax.set_ylabel(f"top-1 − QCFS ANN (Q={Q}) top-1 (points)")
        e = S.estimate(list(ann.values()))
        ci = f", CI {e.lo:.1f}–{e.hi:.1f}" if e.n > 1 else ""
        ax.set_title(f"{ak[0]} / {ak[1]} · {n_text(ns)}\nvs the QCFS ANN Q={Q}: {e.mean:.2f} %{ci}")
        legend_below(ax, handles)
    for r, da in enumerate(rows):
        for c in range(used[da], n_cols):
            axes[r][c].set_axis_off()
    suptitle(
        fig,
        suite,
        title,
        "95 % t-intervals of the gap; hybrid and conversion paired by seed with the ANN they were built from "
        "(Welch where the seeds differ), direct LM-HT unpaired (Welch)",
    )
    return fig


# --------------------------------------------------------------------------------------------------
# OQ2: depth
# --------------------------------------------------------------------------------------------------
@styled
def depth(suite: Suite) -> Figure:
    """Top-1 against depth per (dataset, family): direct LM-HT, IF, hybrid, QCFS ANN, with 95 % t-interval
    error bars; below, the LM-HT − IF gain (paired by seed) with its CI, against IF at the same L·T
    (solid) and at the same T (dashed) where the grid has them."""
    title = FIGURES["depth"].title
    cells = suite.cells
    have = cells[cells["n"].fillna(0) > 0] if not cells.empty else cells
    info = {a: arch_info(a) for a in (have["arch"].unique() if not have.empty else [])}
    series: dict[tuple, dict] = {}
    for _, row in have.iterrows():
        fam, d = info[row["arch"]]
        if d is None or not is_paper_method(row):
            continue
        method, L, T, Q = row["method"], plain(row["L"]), plain(row["T"]), plain(row["Q"])
        if method == "direct-lmht" and L > 1:
            key, label = ("direct-lmht", L, T), f"LM-HT direct L={L} T={T}"
        elif method in ("direct-if", "direct-lif"):
            key, label = (method, T), f"{method_label(method)} T={T}"
        elif method == "hybrid":
            key, label = ("hybrid", Q, L, T), f"LM-HT hybrid Q={Q} L={L} T={T}"
        elif method == "ann":
            key, label = ("ann", Q), f"QCFS ANN Q={Q}"
        else:
            continue
        series.setdefault((row["dataset"], fam), {}).setdefault(key, {"label": label, "points": {}})
        series[(row["dataset"], fam)][key]["points"][d] = row
    # a series is drawn when it has at least two depths (one point says nothing about scaling)
    series = {p: {k: v for k, v in s.items() if len(v["points"]) >= 2} for p, s in series.items()}
    panels = {p: s for p, s in series.items() if s}
    if not panels:
        found = sorted(
            {
                f"{row['dataset']}: {row['arch']} ({info[row['arch']][0]}, depth "
                f"{info[row['arch']][1] if info[row['arch']][1] is not None else 'unknown'})"
                for _, row in have.iterrows()
            }
        )
        return message_figure(
            suite,
            title,
            [
                "Open question 2 needs a depth series: at least two depths of one architecture family on one",
                "dataset, each with results (e.g. ResNet-20/18/34 or VGG-11/13/16 with the same settings).",
                f"This suite has {len(found)} dataset/architecture pair(s) with results"
                + (":" if found else "."),
                *found,
            ],
        )
    lines = max(math.ceil(len(ser) / 2) for ser in panels.values())
    fig, axes = panel_grid(2, len(panels), legend_lines=lines, h=2.6)
    ok = ok_runs(suite.runs)
    for c, ((ds, fam), ser) in enumerate(panels.items()):
        ax, gax = axes[0][c], axes[1][c]
        depths, ns, count, colors = set(), [], {}, {}
        all_depths = sorted({d for v in ser.values() for d in v["points"]})
        gap = min(b - a for a, b in itertools.pairwise(all_depths))
        offsets = iter(
            dodges(len(ser), width=min(0.4 * gap, 0.04 * (all_depths[-1] - all_depths[0]) * len(ser)))
        )
        for key, s in sorted(ser.items(), key=lambda kv: (list(PALETTE).index(kv[0][0]), kv[0][1:])):
            fam_key = family(key[0])
            st = PALETTE[fam_key]
            k = count.setdefault(fam_key, 0)
            count[fam_key] += 1
            color = colors[key] = shade(st.color, k)
            ds_sorted = sorted(s["points"])
            rows = [s["points"][d] for d in ds_sorted]
            mean = np.array([r["top1_mean"] for r in rows], dtype=float)
            lo = np.array([r["top1_lo"] for r in rows], dtype=float)
            hi = np.array([r["top1_hi"] for r in rows], dtype=float)
            err = np.vstack([mean - lo, hi - mean])
            ax.errorbar(
                np.array(ds_sorted) + next(offsets),
                mean,
                yerr=np.where(np.isfinite(err), err, 0),
                color=color,
                marker=st.marker,
                linestyle="--" if key[0] == "ann" else "-",
                capsize=3,
                markersize=5,
                label=s["label"],
                gid=":".join(map(str, key)),
            )
            depths.update(ds_sorted)
            ns += [int(r["n"]) for r in rows]
        # LM-HT − IF gain at the same L·T (solid) and at the same T (dashed), paired by seed
        gains = [
            (key, s, partner_T, style, ser[("direct-if", partner_T)])
            for key, s in ser.items()
            if key[0] == "direct-lmht"
            for partner_T, style in ((key[1] * key[2], "-"), (key[2], "--"))
            if ("direct-if", partner_T) in ser
        ]
        for key, s, partner_T, style, partner in gains:
            xs, comps = [], []
            for d in sorted(set(s["points"]) & set(partner["points"])):
                a, b = s["points"][d], partner["points"][d]
                ra = ok[(ok["dataset"] == ds) & (ok["arch"] == a["arch"]) & (ok["cell"] == a["cell"])]
                rb = ok[(ok["dataset"] == ds) & (ok["arch"] == b["arch"]) & (ok["cell"] == b["cell"])]
                xs.append(d)
                comps.append(S.compare(seed_values(ra, "top1"), seed_values(rb, "top1")))
            if comps:
                delta = np.array([cp.delta for cp in comps])
                err = np.vstack([delta - [cp.lo for cp in comps], [cp.hi for cp in comps] - delta])
                gax.errorbar(
                    xs,
                    delta,
                    yerr=np.where(np.isfinite(err), err, 0),
                    color=colors[key],
                    marker="o" if style == "-" else "s",
                    linestyle=style,
                    capsize=3,
                    label=f"{s['label']} − IF T={partner_T}"
                    + (" (same L·T)" if partner_T != key[2] else " (same T)"),
                    gid=f"gain:{key[1]}:{key[2]}:{partner_T}",
                )
        gax.axhline(0.0, color="black", linewidth=0.9)
        for a in (ax, gax):
            integer_ticks(a.xaxis, depths)
            a.set_xlabel(f"depth of {fam} ({'blocks' if fam == 'Transformer' else 'weight layers'})")
        ax.set_ylabel("top-1 (%)")
        clamp_percent(ax)
        gax.set_ylabel("LM-HT − IF (points)")
        ax.set_title(f"{ds} / {fam} · {n_text(ns)}")
        gax.set_title(f"{ds} / {fam}: gain over IF (paired by seed)")
        if not gax.get_legend_handles_labels()[0]:
            gax.set_axis_off()
            gax.text(
                0.5,
                0.6,
                f"{ds} / {fam}: no IF cell at the T or L·T of the LM-HT cells,\nso no gain to show",
                transform=gax.transAxes,
                ha="center",
                va="center",
            )
        legend_below(ax)
        legend_below(gax, ncol=1)
    suptitle(fig, suite, title, "error bars: 95 % t-intervals over seeds; gains paired by seed")
    return fig


# --------------------------------------------------------------------------------------------------
# OQ3: (L, T) surface and T-GIM
# --------------------------------------------------------------------------------------------------
@styled
def lt_heatmap(suite: Suite) -> Figure:
    """Mean top-1 over (L, T) per dataset/arch and method (direct LM-HT, hybrid; the paper's method only),
    annotated with mean ± 95 % CI half-width; the colour is Δ to the panel's best mean on one scale shared
    by every panel that spans at least _CI_SPAN median CI half-widths, so noise does not look like
    structure. Dashed lines join the cells of one L·T budget."""
    title = FIGURES["lt_heatmap"].title
    cells = suite.cells
    planned = {  # every (L, T) the suite asks for, with or without results; Q only where panels split by Q
        key
        for _, r in (cells.iterrows() if not cells.empty else [])
        for key in [
            (r["dataset"], r["arch"], r["method"], plain(r["L"]), plain(r["T"]), q)
            for q in (None, plain(r["Q"]))
        ]
    }
    sel = (
        cells[(cells["n"].fillna(0) > 0) & cells["method"].isin(["direct-lmht", "hybrid"])]
        if not cells.empty
        else cells
    )
    sel = sel[[is_paper_method(r) for _, r in sel.iterrows()]] if not sel.empty else sel
    panels = []
    for k, g in sel.groupby(["dataset", "arch", "method"], sort=False) if not sel.empty else []:
        # hybrid cells of several ANNs at one (L, T): a panel per Q (else Q is written in each cell)
        split = g.duplicated(["L", "T"]).any()
        for q, part in g.groupby("Q", dropna=False) if split else [(None, g)]:
            if len(part[["L", "T"]].drop_duplicates()) > 1:
                panels.append(((*k, plain(q)), part))
    if not panels:
        return message_figure(
            suite,
            title,
            [
                "Needs at least two (L, T) pairs of direct LM-HT or hybrid cells (the paper's method) in one",
                "dataset/arch (e.g. a grid with budget: [2, 4]); this suite has none with results.",
            ],
        )
    half = pd.concat([(g["top1_hi"] - g["top1_lo"]) / 2 for _, g in panels]).dropna()
    deltas = pd.concat([g["top1_mean"] - g["top1_mean"].max() for _, g in panels])
    span = max(float(-deltas.min()), _CI_SPAN * float(half.median()) if not half.empty else 0.0, 0.5)
    norm = Normalize(-span, 0.0)
    cmap = plt.get_cmap("viridis")
    n_cols = min(3, len(panels))
    n_rows = math.ceil(len(panels) / n_cols)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(3.7 * n_cols + 1.0, 3.5 * n_rows + 0.6), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    for ax, ((ds, arch, method, q), g) in zip(axes.flat, panels, strict=False):
        Ls, Ts = sorted(int(v) for v in g["L"].unique()), sorted(int(v) for v in g["T"].unique())
        best = g["top1_mean"].max()
        grid = np.full((len(Ls), len(Ts)), np.nan)
        for _, r in g.iterrows():
            i, j = Ls.index(int(r["L"])), Ts.index(int(r["T"]))
            grid[i, j] = r["top1_mean"] - best
            hw = (r["top1_hi"] - r["top1_lo"]) / 2
            text = f"{r['top1_mean']:.2f}\n" + (f"±{hw:.2f}" if math.isfinite(hw) else "(n=1)")
            text += f"\nn={int(r['n'])}" if g["n"].nunique() > 1 else ""
            text += f"\nQ={plain(r['Q'])}" if method == "hybrid" and q is None else ""
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=7.5,
                zorder=4,
                bbox=dict(boxstyle="round,pad=0.25", facecolor="white", alpha=0.7, linewidth=0),
            )
        ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, origin="lower", aspect="auto")
        for i, j in zip(*np.where(np.isnan(grid)), strict=True):
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", color="0.75", lw=0))
            missing = "not run" if (ds, arch, method, Ls[i], Ts[j], q) in planned else "not in\nthe suite"
            ax.text(j, i, missing, ha="center", va="center", fontsize=7, color="0.4")
        budgets: dict[int, list] = {}
        for i, L in enumerate(Ls):
            for j, T in enumerate(Ts):
                if np.isfinite(grid[i, j]):
                    budgets.setdefault(L * T, []).append((j, i))
        for b, pts in budgets.items():
            if len(pts) > 1:
                xs, ys = zip(*sorted(pts), strict=True)
                ax.plot(xs, ys, color="white", linestyle=(0, (2, 1.5)), linewidth=1.6, zorder=3)
                ax.text(
                    (xs[-1] + xs[-2]) / 2,
                    (ys[-1] + ys[-2]) / 2,
                    f"L·T={b}",
                    fontsize=6.5,
                    ha="center",
                    va="center",
                    zorder=4,
                    bbox=dict(boxstyle="round,pad=0.2", facecolor="white", linewidth=0),
                )
        ax.set_xticks(range(len(Ts)), [str(t) for t in Ts])
        ax.set_yticks(range(len(Ls)), [str(v) for v in Ls])
        ax.set_xlabel("time steps T")
        ax.set_ylabel("threshold levels L")
        ax.grid(False)
        ax.set_title(f"{ds} / {arch}\n{method_label(method)}{f' Q={q}' if q else ''} · {n_text(g['n'])}")
    fig.colorbar(
        plt.cm.ScalarMappable(norm=norm, cmap=cmap),
        ax=axes.ravel().tolist(),
        shrink=0.85,
        label="Δ top-1 to the panel's best mean (points)",
    )
    suptitle(
        fig,
        suite,
        title,
        "cells: mean top-1 (%) ± 95 % t-interval half-width; dashed: equal L·T budget"
        f"\ncolour: Δ to the best mean, on a scale spanning ≥ {_CI_SPAN} median CI half-widths; the budget "
        "table says which cells are statistically indistinguishable",
    )
    return fig


@styled
def tgim_matrices(suite: Suite) -> Figure:
    """The learned T-GIM Ω[t, j] of each spiking layer (mean over seeds ± 95 % t-interval half-width when
    T ≤ 4), one row per T-GIM initialization
    of the configuration (dataset, arch, method, L, T) with the most initializations (then the largest T);
    one diverging colour scale shared by every panel, centred on the uniform value 1/T."""
    title = FIGURES["tgim_matrices"].title
    found: dict[tuple, dict[str, list]] = {}
    for (ds, arch, cell), g in cells_of(suite.runs):
        row = g.iloc[0]
        if row["tgim"] in (None, "none") or (plain(row["T"]) or 1) < 2:
            continue
        mats = [m for m in (_read_tgim(p) for p in g["path"]) if m]
        if mats:
            key = (ds, arch, row["method"], plain(row["L"]), plain(row["T"]), plain(row["Q"]))
            found.setdefault(key, {})[cell] = (row, mats)
    if not found:
        return message_figure(
            suite, title, ["No learned T-GIM in this suite (tgim.json of an LM-HT cell with T > 1)."]
        )
    key, by_cell = max(found.items(), key=lambda kv: (len(kv[1]), kv[0][4]))
    T = key[4]
    order = sorted(by_cell, key=lambda c: cell_order(by_cell[c][0]))
    layers = list(dict.fromkeys(layer for c in order for m in by_cell[c][1] for layer in m))[:6]
    means, halves, leaks = {}, {}, {}
    for c in order:
        for layer in layers:
            stack = np.array([m[layer]["tgim"] for m in by_cell[c][1] if layer in m], dtype=float)
            ests = [[S.estimate(stack[:, a, b]) for b in range(T)] for a in range(T)] if stack.size else []
            means[c, layer] = (
                np.array([[e.mean for e in r] for r in ests]) if ests else np.full((T, T), np.nan)
            )
            halves[c, layer] = np.array([[(e.hi - e.lo) / 2 for e in r] for r in ests]) if ests else None
            lk = [m[layer].get("leak") for m in by_cell[c][1] if layer in m]
            leaks[c, layer] = np.mean([x for x in lk if isinstance(x, int | float)]) if lk else math.nan
    dev = max(float(np.nanmax(np.abs(m - 1 / T))) for m in means.values() if np.isfinite(m).any())
    norm = Normalize(1 / T - max(dev, 1e-3), 1 / T + max(dev, 1e-3))
    cmap = plt.get_cmap("RdBu_r")
    fig, axes = plt.subplots(
        len(order),
        len(layers),
        figsize=(2.3 * len(layers) + 1.4, 2.3 * len(order) + 0.8),
        squeeze=False,
        layout="constrained",
    )
    for i, c in enumerate(order):
        row, mats = by_cell[c]
        for j, layer in enumerate(layers):
            ax, m, half = axes[i][j], means[c, layer], halves[c, layer]
            ax.imshow(m, cmap=cmap, norm=norm)
            if T <= 4:
                for (a, b), v in np.ndenumerate(m):
                    hw = half[a, b] if half is not None else math.nan
                    txt = f"{v:.2f}" + (f"\n±{hw:.2f}" if math.isfinite(hw) else "")
                    ax.text(
                        b,
                        a,
                        txt,
                        ha="center",
                        va="center",
                        fontsize=6.5,
                        color="white" if abs(v - 1 / T) > 0.6 * dev else "black",
                    )
            ax.set_xticks(range(T), [str(t + 1) for t in range(T)])
            ax.set_yticks(range(T), [str(t + 1) for t in range(T)])
            ax.grid(False)
            ax.set_title(f"{layer}  λ={leaks[c, layer]:.2f}", fontsize=7)
            ax.set_xlabel("source step j" if i == len(order) - 1 else "")
            tags = f" {row['variant_tags']}" if row["variant_tags"] else ""
            ax.set_ylabel(f"init {row['tgim']}{tags} (n={len(mats)})\nstep t" if j == 0 else "")
    cb = fig.colorbar(
        plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes.ravel().tolist(), shrink=0.85, label="Ω[t, j]"
    )
    ticks = sorted({norm.vmin, 1 / T, norm.vmax})
    cb.set_ticks(
        ticks, labels=[f"1/T = {t:.2f} (uniform)" if abs(t - 1 / T) < 1e-12 else f"{t:.2f}" for t in ticks]
    )
    ds, arch, method, L, _, Q = key
    suptitle(
        fig,
        suite,
        f"{title}: {ds} / {arch} / {method_label(method)}{f' Q={Q}' if Q else ''} L={L} T={T}",
        f"mean over seeds{' ± 95 % t-interval half-width' if T <= 4 else ''} of Ω[t, j], the weight of "
        "step j's input current in step t's; λ = learned leak (mean); one scale for every panel",
    )
    return fig


def _read_tgim(metrics_path) -> dict:
    """A run's tgim.json (next to its metrics.json): {layer: {"tgim": T×T list, "leak": ...}}; {} if none."""
    try:
        data = json.loads(Path(metrics_path).with_name("tgim.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("tgim"), list)}


# --------------------------------------------------------------------------------------------------
# Activity: firing rates, training curves
# --------------------------------------------------------------------------------------------------
def _records(g: pd.DataFrame) -> list:
    """The run records of a cell's ok runs (for the per-layer and per-epoch numbers)."""
    out = []
    for path in g["path"]:
        status, _, rec = read_record(path)
        if status == "ok":
            out.append(rec)
    return out


def _per_cell_lines(
    suite: Suite,
    title: str,
    series: Callable,
    xlabel: str,
    ylabel: str,
    groups: dict[str, tuple[str, ...]],
    empty: str,
    log2: bool = False,
    reference: Callable | None = None,
    reserve: Callable = lambda da: 0,
) -> Figure:
    """A figure of one line (mean and 95 % t-band over seeds) per cell: ``series(g) -> (x, estimates)``
    for the ok runs ``g`` of a cell (x: integers, or names for a categorical axis); panels per dataset/arch
    and method group (:func:`facets`); ``reference(ax, (dataset, arch), n) -> (y values, ns)`` draws
    reference lines in every panel of a row. Accuracy axes (ylabel with '%') are zoomed (:data:`ZOOM`)."""
    styles = cell_styles(suite.runs)
    data = {}
    for k, g in cells_of(suite.runs):
        x, ests = series(g)
        if ests:
            data[k] = (g, x, ests)
    if not data:
        return message_figure(suite, title, [empty])
    methods = {k: v[0]["method"].iloc[0] for k, v in data.items()}
    order = {k: cell_order(v[0].iloc[0]) for k, v in data.items()}
    rows = facets(list(data), methods, order, groups, reserve)
    n_cols = max(len(panels) for panels in rows.values())
    ncol = {
        da: legend_columns(styles[k]["label"] + " (n=10)" for _, keys in panels for k in keys)
        for da, panels in rows.items()
    }
    lines = max(
        math.ceil((len(keys) + reserve(da) + 1) / ncol[da]) for da, p in rows.items() for _, keys in p
    )
    fig, axes = panel_grid(len(rows), n_cols, lines)
    for r, (da, panels) in enumerate(rows.items()):
        for c in range(len(panels), n_cols):
            axes[r][c].set_axis_off()
        for c, (column, keys) in enumerate(panels):
            ax = axes[r][c]
            ns = [len(data[k][0]) for k in keys]
            values, xs, names, handles = [], [], [], []
            for k, dodge in zip(keys, dodges(len(keys)), strict=True):
                g, x, ests = data[k]
                if x and isinstance(x[0], str):
                    names += [v for v in x if v not in names]
                    x = [names.index(v) for v in x]
                handles.append(
                    mean_line(
                        ax, x, ests, styles[k], gid_of(k), label_n(styles[k], len(g), max(ns)), dodge, log2
                    )
                )
                values += [e.mean for e in ests]
                xs += list(x)
            if reference is not None:
                more, more_n, more_handles = reference(ax, da, max(ns))
                values += more
                ns += more_n
                handles += more_handles
            if "%" in ylabel:
                zoom(ax, values, handles)
                clamp_percent(ax)
            if names:
                ax.set_xticks(range(len(names)), names, rotation=25, ha="right")
            else:
                integer_ticks(ax.xaxis, xs, log2=log2)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.set_title(f"{da[0]} / {da[1]} · {n_text(ns)}\n{column}")
            legend_below(ax, handles, ncol[da])
    suptitle(
        fig,
        suite,
        title,
        "95 % t-intervals over seeds: bands on long curves, error bars on short ones (drawn side by side)",
    )
    return fig


@styled
def firing_rate(suite: Suite) -> Figure:
    """Mean spike level per neuron and step (a level-k spike counts k) in each spiking layer, per cell."""

    def series(g):
        recs = [r.firing_rate for r in _records(g) if r.firing_rate]
        layers = list(dict.fromkeys(layer for r in recs for layer in r))
        ests = [
            S.estimate([r[layer] for r in recs if isinstance(r.get(layer), int | float)]) for layer in layers
        ]
        return [layer.removeprefix("model.") for layer in layers], ests

    return _per_cell_lines(
        suite,
        FIGURES["firing_rate"].title,
        series,
        "spiking layer (execution order)",
        "spike level per neuron per step (0 … L)",
        FACETS,
        empty="No firing rates recorded in this suite.",
    )


#: Training stage of each trained method (the panels of training_curves).
STAGES = {
    "QCFS ANN pretraining": ("ann",),
    "hybrid fine-tuning (epoch 0: right after the hybrid initialization)": ("hybrid",),
    "direct training: LM-HT": ("direct-lmht",),
    "direct training: M-HT, IF, LIF": ("direct-mht", "direct-if", "direct-lif"),
}


@styled
def training_curves(suite: Suite) -> Figure:
    """Test top-1 after each epoch, one panel per training stage: QCFS ANN pretraining, hybrid fine-tuning
    (epoch 0 = accuracy right after the hybrid initialization), direct training."""

    trained = {m for members in STAGES.values() for m in members}

    def series(g):
        if g["method"].iloc[0] not in trained:
            return [], []
        hist = [
            [h for h in r.history if isinstance(h, dict) and isinstance(h.get("test_acc"), int | float)]
            for r in _records(g)
        ]
        epochs = sorted({int(h["epoch"]) for hs in hist for h in hs})
        if not epochs:
            return [], []
        ests = [
            S.estimate([h["test_acc"] for hs in hist for h in hs if int(h["epoch"]) == e]) for e in epochs
        ]
        if g["method"].iloc[0] == "hybrid" and g["init_top1"].notna().any():
            epochs, ests = [0, *epochs], [S.estimate(g["init_top1"].tolist()), *ests]
        return epochs, ests

    return _per_cell_lines(
        suite,
        FIGURES["training_curves"].title,
        series,
        "epoch",
        "test top-1 (%)",
        STAGES,
        empty="No training history (per-epoch test accuracy) in this suite.",
    )


# --------------------------------------------------------------------------------------------------
def plots(suite: Suite, outdir: str | Path) -> dict[str, Path]:
    """Draw every figure of the catalog into ``outdir/NAME.png``; return ``{name: path}``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, entry in FIGURES.items():
        fig = builder(entry)(suite)
        paths[name] = outdir / f"{name}.png"
        save(fig, paths[name])
        plt.close(fig)
    return paths
