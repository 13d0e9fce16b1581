"""The report's answers, written from the data: every sentence carries its numbers (n, Δ, CI, verdict),
and findings that go against the paper are stated as plainly as those that support it.

:func:`answers` returns, per report section (the keys of :data:`lmht.experiment.catalog.SECTIONS`), a
list of sentences (plain text). Built from the already-computed tables, so the prose and the tables
cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from scipy import stats as st

from .render import fmt_acc, fmt_ci, fmt_int

__all__ = ["answers", "summary_counts"]


def _dci(delta, lo, hi) -> str:
    """``+2.12 points [+0.96, +3.28]``."""
    ci = fmt_ci(lo, hi, sign=True)
    return f"{fmt_acc(delta, sign=True)} points" + ("" if ci == "–" else f" {ci}")


def summary_counts(runs: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> dict:
    """What ran and what the verdicts say: cells, runs by status, seeds per cell, verdict counts per table."""
    cells = runs.drop_duplicates(["dataset", "arch", "cell"]) if not runs.empty else runs
    status = runs["status"].value_counts().to_dict() if not runs.empty else {}
    seeds = (
        runs.groupby(["dataset", "arch", "cell"])["seed"].nunique()
        if not runs.empty
        else pd.Series(dtype=int)
    )
    verdicts = {
        name: df["verdict"].value_counts().to_dict()
        for name, df in tables.items()
        if isinstance(df, pd.DataFrame) and "verdict" in df and not df.empty
    }
    failed = runs[runs["status"] != "ok"] if not runs.empty else runs
    return {
        "cells": len(cells),
        "runs": len(runs),
        "ok": int(status.get("ok", 0)),
        "failed": int(status.get("failed", 0)),
        "missing": int(status.get("missing", 0)),
        "seeds": sorted({int(s) for s in runs["seed"].dropna()}) if not runs.empty else [],
        "seeds_per_cell": (int(seeds.min()), int(seeds.max())) if len(seeds) else (0, 0),
        "verdicts": verdicts,
        "failures": [
            f"{r['dataset']}/{r['arch']}/{r['cell']} seed {r['seed']}: {r['reason']}"
            for _, r in failed.iterrows()
        ],
    }


def _claims_sentences(orderings: pd.DataFrame, claims: pd.DataFrame) -> list[str]:
    out = []
    if not claims.empty:
        counts = claims["verdict"].value_counts().to_dict()
        parts = [
            f"{counts.get(v, 0)} {v}" for v in ("reproduced", "below", "above", "single seed", "not run")
        ]
        out.append(f"Paper numbers ({len(claims)} rows of paper-claims.csv): " + ", ".join(parts) + ".")
    if orderings.empty:
        return [*out, "No ordering of the paper could be checked on this suite."]
    ran = orderings[orderings["verdict"] != "not run"]
    for verdict in ("contradicted", "holds", "inconclusive"):
        for _, r in ran[ran["verdict"] == verdict].iterrows():
            text = (
                f"{r['claim']} ({r['dataset']}/{r['arch']}, {r['setting']}): {verdict.upper()}, "
                f"Δ = {_dci(r['delta'], r['ci_lo'], r['ci_hi'])} ({100 * r['level']:.1f}% CI, n = "
                f"{fmt_int(r['n'])}, {'paired' if r['paired'] else 'Welch'}, p = {r['p']:.2g}, m = {r['m']})"
            )
            if verdict == "inconclusive" and not pd.isna(r.get("seeds_needed")):
                text += f"; about {fmt_int(r['seeds_needed'])} seeds per cell would decide it"
            out.append(text + ".")
    return out


def _oq1(gap: pd.DataFrame) -> list[str]:
    if gap.empty:
        return [
            "The suite has no hybrid cell (or no QCFS ANN with Q = L·T for a direct cell): open question 1 "
            "is not answered."
        ]
    out = []
    for _, r in gap.iterrows():
        what = (
            f"{r['label']} on {r['dataset']}/{r['arch']} (Q = {fmt_int(r['Q'])}, T·L = {fmt_int(r['steps'])}"
            + (", the exact-equivalence setting Q = T·L)" if r["exact"] else ")")
        )
        parts = []
        if not pd.isna(r["init_gap"]):
            parts.append(
                f"at initialization it is {_dci(r['init_gap'], r['init_gap_lo'], r['init_gap_hi'])} from "
                "its QCFS ANN"
            )
        parts.append(f"after training {_dci(r['gap'], r['gap_lo'], r['gap_hi'])}")
        if not pd.isna(r["finetune"]):
            parts.append(
                f"fine-tuning changed it by {_dci(r['finetune'], r['finetune_lo'], r['finetune_hi'])} "
                f"(fine-tuning helps: {r['finetune_verdict']})"
            )
        if not pd.isna(r["converted_gap"]):
            parts.append(
                f"the converted IF SNN at the same {fmt_int(r['steps'])} steps is "
                f"{_dci(r['converted_gap'], r['converted_gap_lo'], r['converted_gap_hi'])}"
            )
        out.append(f"{what}: " + "; ".join(parts) + f" (n = {fmt_int(r['n'])}).")
    return out


def _trend(depth: pd.DataFrame) -> list[str]:
    """Per family with ≥ 3 depths: the slope of the gain over IF per 10 layers (linear regression on the
    per-cell gains, t-interval of the slope)."""
    out = []
    for (ds, family, L, T, baseline), g in depth.groupby(
        ["dataset", "family", "L", "T", "baseline"], sort=False
    ):
        g = g.dropna(subset=["depth", "gain"])
        if g["depth"].nunique() < 3:
            out.append(
                f"{family} on {ds} (L={L}, T={T}, IF at the {baseline}): {g['depth'].nunique()} depth(s) "
                "with a gain — fewer than 3, so no trend is estimated."
            )
            continue
        fit = st.linregress(g["depth"].astype(float), g["gain"].astype(float))
        half = float(st.t.ppf(0.975, len(g) - 2)) * fit.stderr
        slope, lo, hi = 10 * fit.slope, 10 * (fit.slope - half), 10 * (fit.slope + half)
        trend = (
            "grows with depth"
            if lo > 0
            else "shrinks with depth"
            if hi < 0
            else "shows no detectable trend with depth"
        )
        out.append(
            f"{family} on {ds} (L={L}, T={T}, depths {', '.join(str(int(d)) for d in g['depth'])}): the "
            f"gain of LM-HT over IF at the {baseline} {trend}: {fmt_acc(slope, sign=True)} points per 10 "
            f"layers {fmt_ci(lo, hi, sign=True)} (least squares over {len(g)} architectures, 95% t-interval)."
        )
    return out


def _oq2(depth: pd.DataFrame) -> list[str]:
    if depth.empty:
        return ["The suite has no direct LM-HT cell with an IF baseline: open question 2 is not answered."]
    out = []
    for _, r in depth.iterrows():
        out.append(
            f"{r['arch']} (depth {fmt_int(r['depth'])}, {r['dataset']}, L={r['L']}, T={r['T']}): LM-HT − IF "
            f"at the {r['baseline']} (T={fmt_int(r['if_T'])}) = "
            f"{_dci(r['gain'], r['gain_lo'], r['gain_hi'])}, {r['verdict']} (n = {fmt_int(r['n'])})."
        )
    return out + _trend(depth)


def _oq3(budget: pd.DataFrame, tgim: pd.DataFrame, variants: pd.DataFrame) -> list[str]:
    out = []
    if budget.empty:
        out.append(
            "The suite has no budget with two or more (L, T) splits: open question 3a is not answered."
        )
    groups = budget.groupby(["kind", "dataset", "arch", "budget"], sort=False) if not budget.empty else []
    for (kind, ds, arch, b), g in groups:
        best = g[g["best"] != "worse"]
        worse = g[g["best"] == "worse"]
        tied = ", ".join(f"L={r['L']},T={r['T']} ({fmt_acc(r['mean'])})" for _, r in best.iterrows())
        text = f"{kind} {ds}/{arch}, L·T = {b}: best set (not shown worse than the best mean) = {tied}"
        if not worse.empty:
            text += "; worse: " + ", ".join(
                f"L={r['L']},T={r['T']} ({_dci(r['delta'], r['delta_lo'], r['delta_hi'])})"
                for _, r in worse.iterrows()
            )
        if (best["T"] == 1).any():
            text += (
                ". Note: a T = 1 split in the best set has no temporal dynamics (one step: T-GIM, leak idle)"
            )
        out.append(text + ".")
    for _, r in tgim[tgim["verdict"] != "reference (paper)"].iterrows() if not tgim.empty else []:
        out.append(
            f"T-GIM init {r['label']} on {r['dataset']}/{r['arch']}: Δ to uniform = "
            f"{_dci(r['delta'], r['delta_lo'], r['delta_hi'])}, {r['verdict']}; seed distance of the learned "
            f"T-GIM {r['tgim_seed_distance']:.3f}."
        )
    if not variants.empty:
        sel = variants[(variants["family"] == "variant_tgim_param") & (variants["verdict"] != "not run")]
        words = {"a better": "direct better", "b better": "sigmoid (paper) better"}
        for _, r in sel.iterrows():
            out.append(
                f"T-GIM parametrization, {r['setting']} on {r['dataset']}/{r['arch']}: direct − sigmoid = "
                f"{_dci(r['delta'], r['ci_lo'], r['ci_hi'])}, {words.get(r['verdict'], r['verdict'])}."
            )
    return out


def _variants(variants: pd.DataFrame) -> list[str]:
    if variants.empty:
        return ["No cell of this suite runs one of our variants next to the paper's method."]
    out = []
    for _, r in variants[variants["verdict"] != "not run"].iterrows():
        verdict = {"a better": f"{r['a_label']} better", "b better": f"{r['b_label']} better"}.get(
            r["verdict"], r["verdict"]
        )
        out.append(
            f"{r['a_label']} vs {r['b_label']}, {r['setting']} on {r['dataset']}/{r['arch']}: Δ = "
            f"{_dci(r['delta'], r['ci_lo'], r['ci_hi'])} (n = {fmt_int(r['n'])}), {verdict}."
        )
    return out


def answers(tables: Mapping[str, pd.DataFrame]) -> dict[str, list[str]]:
    """Sentences per report section from the built tables (names of the catalog)."""
    get = lambda name: tables.get(name, pd.DataFrame())  # noqa: E731
    return {
        "claims": _claims_sentences(get("orderings"), get("claims")),
        "variants": _variants(get("variants")),
        "oq1": _oq1(get("gap")),
        "oq2": _oq2(get("depth")),
        "oq3": _oq3(get("budget"), get("tgim"), get("variants")),
    }
