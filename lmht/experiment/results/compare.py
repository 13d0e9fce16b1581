"""Comparisons between cells, each with n, Δ, CI, p and a verdict (conventions in :mod:`.stats`).

Two kinds:

* **The paper's orderings** (:func:`orderings`): every place the suite lets us check a qualitative claim
  of the paper, on cells that run the paper's method (no variant). One family per claim; the family's
  comparisons share a Bonferroni-adjusted CI level.
* **Our variants against the paper's method** (:func:`variant_effects`): every pair of cells that differ
  only in one variant key; two-sided (no claimed direction).

Multi-level claims use LM-HT cells with L ≥ 2 only: an L = 1 cell is a single-threshold neuron and is
no evidence that multi-level neurons win.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

from lmht.experiment.variants import VARIANTS

from . import stats as S
from .load import select

__all__ = ["FAMILIES", "Family", "comparison_rows", "orderings", "seed_values", "variant_effects"]


@dataclass(frozen=True)
class Family:
    """A claim checked wherever the suite allows it.

    Attributes:
        key: short id (column ``family``).
        claim: the claim as a sentence (a vs b).
        kind: ``greater`` (a > b), ``noninferior`` (a ≥ b − tol), ``equivalent`` (|a − b| ≤ tol),
            ``two-sided`` (which one is better, if any).
        source: where the paper makes the claim.
    """

    key: str
    claim: str
    kind: str
    source: str


FAMILIES = {
    f.key: f
    for f in (
        Family(
            "lmht_vs_if_same_T",
            "LM-HT beats IF at the same number of time steps",
            "greater",
            "Table 3 / §5 (headline: 2 time steps)",
        ),
        Family(
            "lmht_vs_if_same_budget",
            "LM-HT beats IF at the same L·T budget",
            "greater",
            "Table 1 (L=2, T=2 vs L=1, T=4; the paper's fair comparison)",
        ),
        Family(
            "tgim_helps",
            "T-GIM helps: LM-HT beats M-HT without T-GIM at the same (L, T)",
            "greater",
            "Table 1 (LM-HT vs M-HT rows)",
        ),
        Family(
            "hybrid_vs_convert_same_T",
            "Hybrid LM-HT beats the converted QCFS SNN at the same T",
            "greater",
            "Table 4",
        ),
        Family(
            "hybrid_vs_convert_same_budget",
            "Hybrid LM-HT beats the converted QCFS SNN at the same L·T budget",
            "greater",
            "Table 4 (the stricter comparison: the converted SNN runs T·L steps)",
        ),
        Family(
            "finetune_helps",
            "STBP fine-tuning improves on the hybrid initialization",
            "greater",
            "§4.5 / Algorithm 1",
        ),
        Family(
            "hybrid_near_ann",
            "Hybrid LM-HT is at most `tol` points below its QCFS ANN",
            "noninferior",
            "Table 4 (hybrid vs QCFS ANN rows)",
        ),
        Family(
            "reparam_keeps_accuracy",
            "Reparameterization keeps accuracy (|Δ| ≤ `tol`)",
            "equivalent",
            'Table 2 ("almost identical")',
        ),
    )
}


def seed_values(
    runs: pd.DataFrame, metric: str | Callable[[pd.Series], float] = "top1", **where
) -> dict[int, float]:
    """seed -> value of the ok runs whose columns equal ``where`` (a metric column or a function of the
    row)."""
    sel = select(runs[runs["status"] == "ok"], **where)
    out = {}
    for _, r in sel.iterrows():
        v = metric(r) if callable(metric) else r[metric]
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            out[int(r["seed"])] = float(v)
    return out


def curve_at(step: int) -> Callable[[pd.Series], float]:
    """The accuracy of a run's accuracy-vs-step curve after ``step`` steps (NaN past its end)."""

    def value(row: pd.Series) -> float:
        curve = row["top1_per_step"]
        return float(curve[step - 1]) if isinstance(curve, list) and 1 <= step <= len(curve) else math.nan

    return value


def _verdict(family: Family, c: S.Comparison, tol: float) -> str:
    if family.kind == "greater":
        return S.ordering_verdict(c)
    if family.kind == "noninferior":
        return S.ordering_verdict(c, margin=tol)
    if family.kind == "equivalent":
        return S.equivalence_verdict(c, tol)
    if not c.decided:
        return S.INCONCLUSIVE
    return "a better" if c.lo > 0 else "b better" if c.hi < 0 else S.INCONCLUSIVE


def comparison_rows(family: Family, pairs: list[dict], tol: float) -> list[dict]:
    """Compare each ``{"a": seed->value, "b": seed->value, **labels}`` of a family; adjust over the family
    (pairs where either side did not run are reported as not run and are not counted in m)."""
    ran = [p for p in pairs if p["a"] and p["b"]]
    raw = [S.compare(p["a"], p["b"]) for p in ran]
    adjusted = iter(S.family_adjust(raw))
    rows = []
    for p in pairs:
        base = {k: v for k, v in p.items() if k not in ("a", "b")}
        base.update(family=family.key, claim=family.claim.replace("`tol`", f"{tol:g}"), kind=family.kind)
        if not (p["a"] and p["b"]):
            missing = "a" if not p["a"] else "b"
            rows.append(
                {**base, "n": 0, "verdict": S.NOT_RUN, "reason": f"{base[missing + '_label']} did not run"}
            )
            continue
        c = next(adjusted)
        a, b = S.estimate(list(p["a"].values())), S.estimate(list(p["b"].values()))
        verdict = _verdict(family, c, tol)
        rows.append(
            {
                **base,
                "n": c.n,
                "paired": c.paired,
                "a_mean": a.mean,
                "b_mean": b.mean,
                "delta": c.delta,
                "ci_lo": c.lo,
                "ci_hi": c.hi,
                "level": c.level,
                "p": c.p,
                "m": c.m,
                "verdict": verdict,
                "seeds_needed": S.seeds_needed(c) if verdict == S.INCONCLUSIVE else math.nan,
                "reason": "" if c.decided else "n < 2: no confidence interval",
            }
        )
    return rows


def _paper(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs of cells with the paper's method (no variant)."""
    return runs[runs["variant_tags"] == ""]


def _cells(runs: pd.DataFrame, **where) -> pd.DataFrame:
    return select(runs, **where).drop_duplicates("cell")


def orderings(runs: pd.DataFrame, tol: float) -> pd.DataFrame:
    """Every comparison of :data:`FAMILIES` the suite allows, with its verdict."""
    paper = _paper(runs)
    pairs: dict[str, list[dict]] = {k: [] for k in FAMILIES}

    def add(family, ds, arch, setting, a_label, a, b_label, b):
        pairs[family].append(
            dict(dataset=ds, arch=arch, setting=setting, a_label=a_label, b_label=b_label, a=a, b=b)
        )

    for (ds, arch), g in paper.groupby(["dataset", "arch"], sort=False):
        lmht = _cells(g, mode="direct", neuron="lmht", tgim="uniform")
        for _, c in lmht[lmht["L"] >= 2].iterrows():
            a = seed_values(g, cell=c["cell"])
            label = f"LM-HT L={c['L']}, T={c['T']}"
            for family, steps in (("lmht_vs_if_same_T", c["T"]), ("lmht_vs_if_same_budget", c["L"] * c["T"])):
                for _, b in _cells(g, mode="direct", neuron="if", T=steps).iterrows():
                    add(
                        family,
                        ds,
                        arch,
                        f"L={c['L']},T={c['T']} vs IF T={steps}",
                        label,
                        a,
                        f"IF T={steps}",
                        seed_values(g, cell=b["cell"]),
                    )
            for _, b in _cells(g, mode="direct", neuron="mht", L=c["L"], T=c["T"]).iterrows():
                add(
                    "tgim_helps",
                    ds,
                    arch,
                    f"L={c['L']},T={c['T']}",
                    label,
                    a,
                    f"M-HT L={c['L']}, T={c['T']}",
                    seed_values(g, cell=b["cell"]),
                )
        for _, h in _cells(g, mode="hybrid").iterrows():
            a = seed_values(g, cell=h["cell"])
            label = f"hybrid Q={h['Q']}, L={h['L']}, T={h['T']}"
            conv = _cells(g, mode="convert", Q=h["Q"])
            for family, steps in (
                ("hybrid_vs_convert_same_T", h["T"]),
                ("hybrid_vs_convert_same_budget", h["L"] * h["T"]),
            ):
                for _, b in conv.iterrows():
                    add(
                        family,
                        ds,
                        arch,
                        f"Q={h['Q']}, L={h['L']},T={h['T']} vs IF T={steps}",
                        label,
                        a,
                        f"converted Q={h['Q']}, T={steps}",
                        seed_values(g, curve_at(int(steps)), cell=b["cell"]),
                    )
            add(
                "finetune_helps",
                ds,
                arch,
                f"Q={h['Q']}, L={h['L']},T={h['T']}",
                "after fine-tuning",
                a,
                "at initialization",
                seed_values(g, "init_top1", cell=h["cell"]),
            )
            for _, b in _cells(g, mode="ann", Q=h["Q"]).iterrows():
                add(
                    "hybrid_near_ann",
                    ds,
                    arch,
                    f"Q={h['Q']}, L={h['L']},T={h['T']}",
                    label,
                    a,
                    f"QCFS ANN Q={h['Q']}",
                    seed_values(g, cell=b["cell"]),
                )
        for _, r in _cells(g, mode="reparam").iterrows():
            add(
                "reparam_keeps_accuracy",
                ds,
                arch,
                f"{r['source']} L={r['L']},T={r['T']} -> T={r['L'] * r['T']}",
                "after",
                seed_values(g, "after_top1", cell=r["cell"]),
                "before",
                seed_values(g, "before_top1", cell=r["cell"]),
            )
    rows = [row for key, family in FAMILIES.items() for row in comparison_rows(family, pairs[key], tol)]
    return pd.DataFrame(rows)


#: Cell columns that must agree for two cells to differ only in a variant.
_IDENTITY = ("dataset", "arch", "mode", "neuron", "L", "T", "tgim", "Q", "source")


def variant_effects(runs: pd.DataFrame, tol: float) -> pd.DataFrame:
    """Every variant value against the paper's default on otherwise identical cells (two-sided), on the
    final accuracy, and for ``hybrid_init`` also right after the initialization."""
    cells = runs.drop_duplicates("cell")
    rows = []
    for key, variant in VARIANTS.items():
        family = Family(
            f"variant_{key}",
            f"{key}: our variant vs the paper's {variant.default}",
            "two-sided",
            variant.paper,
        )
        pairs = []
        # reparam cells are left out: a reparameterized network has its source's accuracy (checked by
        # reparam_keeps_accuracy), so they would repeat the source's comparison and widen the family
        candidates = cells[cells[key].isin(list(variant.alternatives)) & (cells["mode"] != "reparam")]
        for _, c in candidates.iterrows():
            base = cells[cells[key] == variant.default]
            for column in (*_IDENTITY, *VARIANTS):
                if column != key:
                    value = c[column]
                    same = (base[column] == value).fillna(False).astype(bool)
                    base = base[same | (base[column].isna() & pd.isna(value))]
            for _, b in base.iterrows():
                metrics = [("top1", "final")]
                if key == "hybrid_init" and c["mode"] == "hybrid":
                    metrics.insert(0, ("init_top1", "at initialization"))
                for metric, when in metrics:
                    pairs.append(
                        dict(
                            dataset=c["dataset"],
                            arch=c["arch"],
                            setting=f"{c['method']} L={c['L']},T={c['T']}"
                            + (f", Q={c['Q']}" if pd.notna(c["Q"]) else "")
                            + f" ({when})",
                            a_label=f"{key}={c[key]}",
                            b_label=f"{key}={variant.default} (paper)",
                            a=seed_values(runs, metric, cell=c["cell"], dataset=c["dataset"], arch=c["arch"]),
                            b=seed_values(runs, metric, cell=b["cell"], dataset=b["dataset"], arch=b["arch"]),
                        )
                    )
        rows += comparison_rows(family, pairs, tol)
    return pd.DataFrame(rows)


def verdict_counts(frames: Iterable[pd.DataFrame]) -> dict[str, int]:
    """How many rows of each verdict across tables (for the report's landing summary)."""
    counts: dict[str, int] = {}
    for df in frames:
        if "verdict" in df:
            for v, n in df["verdict"].value_counts().items():
                counts[str(v)] = counts.get(str(v), 0) + int(n)
    return counts
