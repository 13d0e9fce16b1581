"""The open questions' tables, each comparison with n, Δ, CI and a verdict (conventions in :mod:`.stats`).

* OQ1 ``gap``: how close LM-HT gets to the quantized ANN it is equivalent to (Theorem 4.4: equal at
  initialization when Q = T·L with the exact initialization), at init and after fine-tuning, against
  the classic conversion at the same L·T steps;
* OQ2 ``depth``: how LM-HT's gain over IF at the same L·T budget, and hybrid's gap to its ANN, change
  with depth within an architecture family (series that vary only depth);
* OQ3 ``budget``: which (L, T) split of a fixed L·T budget is best — the set statistically
  indistinguishable from the top, not one crowned winner; ``tgim``: T-GIM initializations against
  the paper's uniform one, and how stable the learned T-GIM is across seeds.

Over 400 lines because it holds the three open questions' tables (OQ1 gap, OQ2 depth, OQ3 budget and
T-GIM), one builder each.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats as S
from .compare import curve_at, seed_values
from .load import Suite, select
from .names import NOT_RUN, arch_family_depth, cell_label
from .render import Col, Table, col, fmt_acc, fmt_ci, fmt_int, fmt_mean_ci, fmt_p

__all__ = ["budget", "budget_table", "depth", "depth_table", "gap", "gap_table", "tgim", "tgim_table"]


def _diff(a: dict, b: dict) -> dict:
    c = S.compare(a, b)
    return {"delta": c.delta, "lo": c.lo, "hi": c.hi, "p": c.p, "n": c.n, "c": c}


def _signed(name: str, header: str) -> list[Col]:
    """A difference column and its CI column."""
    return [
        col(name, header, lambda x: fmt_acc(x, sign=True)),
        Col(
            f"CI of {header.split(' ')[0]}",
            lambda r: fmt_ci(r.get(f"{name}_lo"), r.get(f"{name}_hi"), sign=True),
        ),
    ]


# ================================================================================================== OQ1
def gap_table(runs: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per hybrid cell (and per direct LM-HT cell with a QCFS ANN of Q = L·T in the suite): the ANN's
    top-1, the gap at initialization and after training, the fine-tuning effect, and the converted IF SNN
    at L·T steps — all paired by seed with the ANN of the same seed."""
    rows = []
    for _, h in cells[cells["mode"].isin(["hybrid", "direct"])].iterrows():
        if h["mode"] == "direct" and (h["neuron"] != "lmht" or h["L"] < 2):
            continue
        Q = h["Q"] if h["mode"] == "hybrid" else h["L"] * h["T"]
        in_ds = select(runs, dataset=h["dataset"], arch=h["arch"])
        ann_cell = select(cells, dataset=h["dataset"], arch=h["arch"], mode="ann", Q=Q)
        if ann_cell.empty:
            continue
        ann = seed_values(in_ds, cell=ann_cell["cell"].iloc[0])
        final = seed_values(in_ds, cell=h["cell"])
        init = seed_values(in_ds, "init_top1", cell=h["cell"]) if h["mode"] == "hybrid" else {}
        conv = select(cells, dataset=h["dataset"], arch=h["arch"], mode="convert", Q=Q)
        conv_at = (
            seed_values(in_ds, curve_at(int(h["L"] * h["T"])), cell=conv["cell"].iloc[0]) if len(conv) else {}
        )
        row = {
            k: h[k]
            for k in (
                "dataset",
                "arch",
                "cell",
                "method",
                "mode",
                "L",
                "T",
                "steps",
                "variant_tags",
                "hybrid_init",
                "status",
                "reason",
            )
        }
        row.update(
            label=cell_label(h),
            Q=Q,
            exact=bool(Q == h["L"] * h["T"]),
            n=h["n"],
            ann=S.estimate(list(ann.values())).mean,
        )
        for name, values in (("init_gap", init), ("gap", final), ("converted_gap", conv_at)):
            d = _diff(values, ann) if values and ann else {"delta": math.nan, "lo": math.nan, "hi": math.nan}
            row.update({name: d["delta"], f"{name}_lo": d["lo"], f"{name}_hi": d["hi"]})
        ft = S.compare(final, init) if init else None
        row.update(
            finetune=ft.delta if ft else math.nan,
            finetune_lo=ft.lo if ft else math.nan,
            finetune_hi=ft.hi if ft else math.nan,
            finetune_verdict=(S.ordering_verdict(ft) if ft and ft.n else "–"),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def gap(suite: Suite) -> Table:
    view = [
        col("dataset"),
        col("arch"),
        col("label", "cell"),
        col("Q", fmt=fmt_int),
        col("steps", "T·L", fmt_int),
        Col("Q = T·L", lambda r: "yes" if r["exact"] else "no"),
        col("n", fmt=fmt_int),
        col("ann", "QCFS ANN (%)", fmt_acc),
        *_signed("init_gap", "init gap"),
        *_signed("gap", "final gap"),
        *_signed("finetune", "fine-tuning effect"),
        col("finetune_verdict", "fine-tuning helps"),
        *_signed("converted_gap", "converted gap (T·L steps)"),
    ]
    note = (
        "Open question 1. Gap = accuracy − the QCFS ANN's (Q levels) in points, paired by seed, 95% "
        "t-interval. "
        "Theorem 4.4 makes the gap 0 at initialization when Q = T·L and every layer is initialized exactly "
        "(the exact-init variant); the paper's Algorithm 1 scales only the first layer. Fine-tuning effect = "
        "final − init. The converted IF SNN runs T·L steps (the same budget)."
    )
    return Table(gap_table(suite.runs, suite.cells) if not suite.cells.empty else pd.DataFrame(), note, view)


# ================================================================================================== OQ2
def depth_table(runs: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, family and depth: direct LM-HT (uniform T-GIM, paper's method) at each (L, T) against
    the IF baselines the grid has — at the same L·T budget and at the same T — with the gain and its CI
    (one row per baseline; ``baseline`` says which)."""
    rows = []
    paper = cells[cells["variant_tags"] == ""]
    for _, c in select(paper, mode="direct", neuron="lmht", tgim="uniform").iterrows():
        if c["L"] < 2:
            continue
        family, depth = arch_family_depth(c["arch"])
        in_ds = select(runs, dataset=c["dataset"], arch=c["arch"])
        lmht = seed_values(in_ds, cell=c["cell"])
        baselines = [
            (
                baseline,
                steps,
                select(paper, dataset=c["dataset"], arch=c["arch"], mode="direct", neuron="if", T=steps),
            )
            for baseline, steps in (("same L·T", int(c["L"] * c["T"])), ("same T", int(c["T"])))
        ]
        # one row per IF baseline the grid has; none: one "not run" row (same T)
        for baseline, steps, rival in [b for b in baselines if len(b[2])] or baselines[1:]:
            gain = _diff(lmht, seed_values(in_ds, cell=rival["cell"].iloc[0])) if len(rival) else None
            rows.append(
                dict(
                    dataset=c["dataset"],
                    family=family,
                    depth=depth,
                    arch=c["arch"],
                    L=c["L"],
                    T=c["T"],
                    baseline=baseline,
                    if_T=steps,
                    n=c["n"],
                    lmht_mean=c["top1_mean"],
                    lmht_lo=c["top1_lo"],
                    lmht_hi=c["top1_hi"],
                    if_mean=rival["top1_mean"].iloc[0] if len(rival) else math.nan,
                    gain=gain["delta"] if gain else math.nan,
                    gain_lo=gain["lo"] if gain else math.nan,
                    gain_hi=gain["hi"] if gain else math.nan,
                    verdict=S.ordering_verdict(gain["c"]) if gain else NOT_RUN,
                )
            )
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df.sort_values(
            ["dataset", "family", "L", "T", "baseline", "depth"], na_position="last"
        ).reset_index(drop=True)
    return df


def depth(suite: Suite) -> Table:
    view = [
        col("dataset"),
        col("family"),
        col("depth", fmt=fmt_int),
        col("arch"),
        col("L", fmt=fmt_int),
        col("T", fmt=fmt_int),
        col("n", fmt=fmt_int),
        Col("LM-HT (%) [CI]", lambda r: fmt_mean_ci(r["lmht_mean"], r["lmht_lo"], r["lmht_hi"])),
        col("baseline", "IF at"),
        col("if_T", "IF T", fmt=fmt_int),
        col("if_mean", "IF (%)", fmt_acc),
        *_signed("gain", "gain over IF"),
        col("verdict", "LM-HT > IF"),
    ]
    note = (
        "Open question 2. Direct LM-HT (paper's method, L ≥ 2) against IF at the same L·T budget and at the "
        "same T (where the grid has them), per architecture family ordered by depth: gain = LM-HT − IF in "
        "points, paired by seed, 95% t-interval. A family needs ≥ 3 depths trained the same way (same stem, "
        "same settings, same baseline) for a trend."
    )
    return Table(
        depth_table(suite.runs, suite.cells) if not suite.cells.empty else pd.DataFrame(), note, view
    )


# ================================================================================================== OQ3
def budget_table(runs: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Every (L, T) split of each L·T budget (direct LM-HT with the paper's method; IF for L = 1 per the
    authors' mapping; hybrid cells per Q): mean [CI], Δ to the best split with its CI (paired, Bonferroni
    over the budget's other splits), and whether the split is in the set indistinguishable from the best."""
    paper = cells[(cells["variant_tags"] == "") & (cells["n"] > 0)]
    direct = paper[
        ((paper["mode"] == "direct") & (paper["neuron"] == "lmht") & (paper["tgim"] == "uniform"))
        | ((paper["mode"] == "direct") & (paper["neuron"] == "if"))
    ]
    hybrid = paper[paper["mode"] == "hybrid"]
    rows = []
    for kind, group_cols, pool in (
        ("direct", ["dataset", "arch", "steps"], direct),
        ("hybrid", ["dataset", "arch", "Q", "steps"], hybrid),
    ):
        for _, g in pool.groupby(group_cols, sort=True):
            if g[["L", "T"]].drop_duplicates().shape[0] < 2:
                continue
            g = g.sort_values("top1_mean", ascending=False)
            best = g.iloc[0]
            in_ds = select(runs, dataset=best["dataset"], arch=best["arch"])
            best_vals = seed_values(in_ds, cell=best["cell"])
            diffs = [
                S.compare(seed_values(in_ds, cell=c["cell"]), best_vals) for _, c in g.iloc[1:].iterrows()
            ]
            diffs = [None, *S.family_adjust(diffs)]
            for (_, c), d in zip(g.iterrows(), diffs, strict=True):
                in_best = d is None or not d.decided or d.hi >= 0
                rows.append(
                    dict(
                        kind=kind,
                        dataset=c["dataset"],
                        arch=c["arch"],
                        Q=c["Q"],
                        budget=c["steps"],
                        L=c["L"],
                        T=c["T"],
                        label=cell_label(c),
                        n=c["n"],
                        mean=c["top1_mean"],
                        lo=c["top1_lo"],
                        hi=c["top1_hi"],
                        delta=d.delta if d else 0.0,
                        delta_lo=d.lo if d else math.nan,
                        delta_hi=d.hi if d else math.nan,
                        p=d.p if d else math.nan,
                        best=("best mean" if d is None else "tied with best" if in_best else "worse"),
                        seeds_needed=S.seeds_needed(d)
                        if d is not None and in_best and d.decided
                        else math.nan,
                        note="T = 1: a single step — the T-GIM and the leak have nothing to act on"
                        if c["T"] == 1
                        else ("single-threshold (IF, the authors' L = 1)" if c["neuron"] == "if" else ""),
                    )
                )
    return pd.DataFrame(rows)


def budget(suite: Suite) -> Table:
    view = [
        col("kind"),
        col("dataset"),
        col("arch"),
        col("Q", fmt=fmt_int),
        col("budget", "L·T", fmt_int),
        col("L", fmt=fmt_int),
        col("T", fmt=fmt_int),
        col("label", "cell"),
        col("n", fmt=fmt_int),
        Col("top-1 (%) [CI]", lambda r: fmt_mean_ci(r["mean"], r["lo"], r["hi"])),
        *_signed("delta", "Δ to best"),
        col("p", "p (adj.)", fmt_p),
        col("best", "best set"),
        col("seeds_needed", "seeds to separate", fmt_int),
        col("note"),
    ]
    note = (
        "Open question 3a. For each L·T budget, every (L, T) split the suite trained. Δ to best = split − "
        "the "
        "split with the best mean, paired by seed, 95% t-interval Bonferroni-adjusted over the budget's "
        "splits. 'tied with best': the interval includes 0 — the best set is every split not shown worse, "
        "not one winner; 'seeds to separate' estimates the seeds per cell needed to tell it from the best."
    )
    return Table(
        budget_table(suite.runs, suite.cells) if not suite.cells.empty else pd.DataFrame(), note, view
    )


def _tgim_layers(path: str) -> dict[str, np.ndarray]:
    try:
        layers = json.loads(Path(path).with_name("tgim.json").read_text())
    except (OSError, ValueError):
        return {}
    return {
        k: np.asarray(v["tgim"], dtype=float)
        for k, v in layers.items()
        if isinstance(v, dict) and v.get("tgim") is not None
    }


def tgim_spread(runs: pd.DataFrame) -> dict[tuple, tuple[float, float]]:
    """Per cell: (mean Frobenius distance between seeds' learned T-GIMs, mean distance from the
    initialization), averaged over layers and seed pairs (tgim.json)."""
    out = {}
    for key, g in runs[runs["status"] == "ok"].groupby(["dataset", "arch", "cell"], sort=False):
        seeds = [m for m in (_tgim_layers(p) for p in g["path"]) if m]
        if not seeds:
            continue
        T = next(iter(seeds[0].values())).shape[0]
        init = {"uniform": np.full((T, T), 1.0 / T), "identity": np.eye(T)}.get(g["tgim"].iloc[0])
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


def tgim_table(runs: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """LM-HT cells at the same (L, T) with another T-GIM initialization than the paper's uniform one:
    Δ to uniform (paired, two-sided, Bonferroni over the initializations compared), and the T-GIM's
    stability across seeds."""
    lmht = cells[cells["mode"].isin(["direct"]) & (cells["neuron"] == "lmht") & (cells["n"] > 0)]
    spread = tgim_spread(runs)
    rows = []
    for (ds, arch, L, T), g in lmht.groupby(["dataset", "arch", "L", "T"], sort=False):
        base = g[(g["tgim"] == "uniform") & (g["variant_tags"] == "")]
        if base.empty or g["tgim"].nunique() < 2:
            continue
        in_ds = select(runs, dataset=ds, arch=arch)
        ref = seed_values(in_ds, cell=base["cell"].iloc[0])
        others = g[g["tgim"] != "uniform"]
        diffs = S.family_adjust(
            [S.compare(seed_values(in_ds, cell=c["cell"]), ref) for _, c in others.iterrows()]
        )
        for (_, c), d in zip([*base.iterrows(), *others.iterrows()], [None, *diffs], strict=True):
            seed_dist, drift = spread.get((ds, arch, c["cell"]), (math.nan, math.nan))
            verdict = (
                "reference (paper)"
                if d is None
                else (
                    "better"
                    if d.decided and d.lo > 0
                    else "worse"
                    if d.decided and d.hi < 0
                    else S.INCONCLUSIVE
                )
            )
            rows.append(
                dict(
                    dataset=ds,
                    arch=arch,
                    L=L,
                    T=T,
                    tgim_init=c["tgim"],
                    label=cell_label(c),
                    n=c["n"],
                    mean=c["top1_mean"],
                    lo=c["top1_lo"],
                    hi=c["top1_hi"],
                    delta=d.delta if d else math.nan,
                    delta_lo=d.lo if d else math.nan,
                    delta_hi=d.hi if d else math.nan,
                    p=d.p if d else math.nan,
                    verdict=verdict,
                    seeds_needed=S.seeds_needed(d)
                    if d is not None and verdict == S.INCONCLUSIVE
                    else math.nan,
                    tgim_seed_distance=seed_dist,
                    tgim_drift_from_init=drift,
                )
            )
    return pd.DataFrame(rows)


def tgim(suite: Suite) -> Table:
    view = [
        col("dataset"),
        col("arch"),
        col("L", fmt=fmt_int),
        col("T", fmt=fmt_int),
        col("label", "cell"),
        col("n", fmt=fmt_int),
        Col("top-1 (%) [CI]", lambda r: fmt_mean_ci(r["mean"], r["lo"], r["hi"])),
        *_signed("delta", "Δ to uniform"),
        col("p", "p (adj.)", fmt_p),
        col("verdict"),
        col("seeds_needed", "seeds to decide", fmt_int),
        col("tgim_seed_distance", "T-GIM seed distance", lambda x: f"{x:.3f}"),
        col("tgim_drift_from_init", "T-GIM drift from init", lambda x: f"{x:.3f}"),
    ]
    note = (
        "Open question 3b. T-GIM initializations at the same (L, T) against the paper's uniform one: Δ in "
        "points, paired by seed, 95% t-interval Bonferroni-adjusted over the initializations compared. An "
        "identity T-GIM needs the direct parametrization (named). Seed distance: mean Frobenius distance "
        "between the T-GIMs learned with different seeds (per layer): small = stable across seeds. The "
        "parametrization (sigmoid vs direct) is compared in the variants table."
    )
    return Table(tgim_table(suite.runs, suite.cells) if not suite.cells.empty else pd.DataFrame(), note, view)
