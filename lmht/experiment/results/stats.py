"""Statistics behind every verdict: paired/unpaired differences with t confidence intervals, verdicts
that can say "inconclusive", family-wise error control, and the seeds a decision would need.

All distributions come from ``scipy.stats``. Conventions (stated in every table that uses them):

* **Δ = a − b** in accuracy points; its **95 % CI** is t-based: from the per-seed differences when the
  design pairs the two cells by seed (same seeds: same data order, same initial weights where the
  networks allow), else Welch's (unequal variances, Welch–Satterthwaite degrees of freedom).
* **Families**: the comparisons of one claim across the suite are a family; their CIs are widened to
  the Bonferroni level ``1 − 0.05/m`` and their p-values multiplied by ``m`` (capped at 1), so CI and p
  always agree. ``m`` is shown.
* **Ordering verdicts** (the claim says a > b): **holds** when the CI excludes 0 above it,
  **contradicted** when it excludes 0 below it, **inconclusive** otherwise (also for n < 2: no CI).
  Non-inferiority (a ≥ b − tol) and equivalence (|a − b| ≤ tol) claims use the same CI against ±tol.
* **Paper claims** (one number): our CI is widened by the tolerance; **reproduced** when it contains the
  paper's value, **below**/**above** when it lies entirely below/above it, **single seed** when n = 1.
* **Seeds needed**: for an inconclusive comparison, the smallest n (seeds per cell) at which a two-sided
  t-test at the family's level would detect the observed Δ with 80 % power, at the observed standard
  deviation (noncentral t). Reported as a planning number, not a promise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

__all__ = [
    "ALPHA",
    "POWER",
    "Comparison",
    "Estimate",
    "claim_verdict",
    "compare",
    "equivalence_verdict",
    "estimate",
    "family_adjust",
    "ordering_verdict",
    "seeds_needed",
]

ALPHA = 0.05
POWER = 0.8
#: n above which "seeds needed" is reported as "> MAX_SEEDS".
MAX_SEEDS = 1000

HOLDS, CONTRADICTED, INCONCLUSIVE = "holds", "contradicted", "inconclusive"
REPRODUCED, BELOW, ABOVE, SINGLE, NOT_RUN = "reproduced", "below", "above", "single seed", "not run"


def _finite(values: Sequence[float] | None) -> np.ndarray:
    arr = np.asarray([] if values is None else list(values), dtype=float)
    return arr[np.isfinite(arr)]


@dataclass(frozen=True)
class Estimate:
    """Mean of one cell over its seeds, with a t-based CI (NaN bounds when n < 2)."""

    n: int
    mean: float
    std: float
    lo: float
    hi: float


def estimate(values: Sequence[float], level: float = 1 - ALPHA) -> Estimate:
    """Mean, sample std and the t confidence interval of the finite ``values``."""
    v = _finite(values)
    n = v.size
    if n == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if n == 1:
        return Estimate(1, mean, math.nan, math.nan, math.nan)
    std = float(v.std(ddof=1))
    half = float(st.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return Estimate(n, mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class Comparison:
    """Δ = a − b with its CI and test.

    Attributes:
        n: pairs (paired) or min(n_a, n_b) (unpaired).
        paired: whether the seeds paired the two cells.
        delta: mean difference (paired) or difference of means.
        sd: standard deviation of the differences (paired) or the pooled sd (unpaired); NaN if unknown.
        lo, hi: CI of Δ at ``level``.
        p: two-sided p-value (after the family adjustment once :func:`family_adjust` ran).
        level: confidence level of [lo, hi].
        df: t degrees of freedom.
        m: size of the family the CI and p are adjusted for (1 = unadjusted).
    """

    n: int
    paired: bool
    delta: float
    sd: float
    lo: float
    hi: float
    p: float
    level: float
    df: float
    m: int = 1

    @property
    def decided(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)


def compare(
    a: dict[int, float] | Sequence[float], b: dict[int, float] | Sequence[float], level: float = 1 - ALPHA
) -> Comparison:
    """Compare two cells. ``a``/``b`` map seed -> value, paired on the seeds both ran when there are ≥ 2
    of them (a seed pairs data order and initialization; a cell's extra seeds are left out of this
    comparison, ``n`` says how many pairs), else unpaired (Welch); plain sequences are unpaired."""
    if isinstance(a, dict) and isinstance(b, dict):
        a = {k: v for k, v in a.items() if v is not None and math.isfinite(v)}
        b = {k: v for k, v in b.items() if v is not None and math.isfinite(v)}
        common = sorted(set(a) & set(b))
        if len(common) >= 2:
            d = np.asarray([a[k] - b[k] for k in common])
            return _paired(d, level)
        a, b = list(a.values()), list(b.values())
    return _welch(_finite(a), _finite(b), level)


def _paired(d: np.ndarray, level: float) -> Comparison:
    n = d.size
    delta = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        return Comparison(n, True, delta, sd, math.nan, math.nan, math.nan, level, math.nan)
    if sd == 0:  # identical differences: a degenerate but exact CI
        p = 0.0 if delta != 0 else 1.0
        return Comparison(n, True, delta, 0.0, delta, delta, p, level, n - 1)
    se = sd / math.sqrt(n)
    half = float(st.t.ppf(0.5 + level / 2, n - 1)) * se
    p = float(st.ttest_1samp(d, 0.0).pvalue)
    return Comparison(n, True, delta, sd, delta - half, delta + half, p, level, n - 1)


def _welch(a: np.ndarray, b: np.ndarray, level: float) -> Comparison:
    n = int(min(a.size, b.size))
    if a.size == 0 or b.size == 0:
        return Comparison(0, False, math.nan, math.nan, math.nan, math.nan, math.nan, level, math.nan)
    delta = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return Comparison(n, False, delta, math.nan, math.nan, math.nan, math.nan, level, math.nan)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    if se == 0:
        p = 0.0 if delta != 0 else 1.0
        return Comparison(n, False, delta, 0.0, delta, delta, p, level, a.size + b.size - 2)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(st.t.ppf(0.5 + level / 2, df)) * se
    p = float(st.ttest_ind(a, b, equal_var=False).pvalue)
    return Comparison(n, False, delta, pooled, delta - half, delta + half, p, level, float(df))


def family_adjust(comparisons: Sequence[Comparison], alpha: float = ALPHA) -> list[Comparison]:
    """Bonferroni over a family: CIs at level 1 − alpha/m and p × m (capped at 1), m = family size."""
    m = len(comparisons)
    if m <= 1:
        return list(comparisons)
    level = 1 - alpha / m
    out = []
    for c in comparisons:
        if not c.decided or c.sd == 0:
            out.append(
                Comparison(c.n, c.paired, c.delta, c.sd, c.lo, c.hi, min(1.0, c.p * m), level, c.df, m)
            )
            continue
        se = (c.hi - c.lo) / (2 * float(st.t.ppf(0.5 + c.level / 2, c.df)))
        half = float(st.t.ppf(0.5 + level / 2, c.df)) * se
        out.append(
            Comparison(
                c.n,
                c.paired,
                c.delta,
                c.sd,
                c.delta - half,
                c.delta + half,
                min(1.0, c.p * m),
                level,
                c.df,
                m,
            )
        )
    return out


def ordering_verdict(c: Comparison, margin: float = 0.0) -> str:
    """a > b − margin: holds / contradicted / inconclusive (margin 0: a beats b; tol: non-inferiority)."""
    if not c.decided:
        return INCONCLUSIVE
    if c.lo > -margin:
        return HOLDS
    if c.hi < -margin:
        return CONTRADICTED
    return INCONCLUSIVE


def equivalence_verdict(c: Comparison, tol: float) -> str:
    """|a − b| ≤ tol: holds when the CI lies inside [−tol, tol], contradicted when entirely outside."""
    if not c.decided:
        return INCONCLUSIVE
    if -tol <= c.lo and c.hi <= tol:
        return HOLDS
    if c.lo > tol or c.hi < -tol:
        return CONTRADICTED
    return INCONCLUSIVE


def claim_verdict(e: Estimate, paper: float, tol: float) -> str:
    """One paper number vs our cell: our CI widened by ``tol`` contains it / lies below / lies above."""
    if e.n == 0:
        return NOT_RUN
    if e.n == 1:
        return SINGLE
    if e.hi + tol < paper:
        return BELOW
    if e.lo - tol > paper:
        return ABOVE
    return REPRODUCED


def seeds_needed(c: Comparison, alpha: float = ALPHA, power: float = POWER) -> float:
    """Seeds per cell for a two-sided t-test at level ``alpha / c.m`` to detect ``c.delta`` with ``power``,
    at the observed sd (paired: one-sample t on the differences; unpaired: two-sample, equal n).
    NaN when sd is unknown (n < 2) or Δ = 0; inf beyond MAX_SEEDS."""
    if not (math.isfinite(c.sd) and math.isfinite(c.delta)) or c.delta == 0:
        return math.nan
    if c.sd == 0:
        return 2.0
    a = alpha / max(c.m, 1)
    effect = abs(c.delta) / c.sd
    for n in range(2, MAX_SEEDS + 1):
        if c.paired:
            df, nc = n - 1, effect * math.sqrt(n)
        else:
            df, nc = 2 * n - 2, effect * math.sqrt(n / 2)
        crit = float(st.t.ppf(1 - a / 2, df))
        achieved = float(st.nct.sf(crit, df, nc) + st.nct.cdf(-crit, df, nc))
        if achieved >= power:
            return float(n)
    return math.inf
