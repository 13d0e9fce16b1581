"""Verdict rules of lmht.experiment.results.stats on constructed data: clear win, clear loss, noise, n = 1."""

import math

import numpy as np
import pytest
from scipy import stats as st

from lmht.experiment.results import stats as S

SEEDS = range(5)


def seeds(values):
    return dict(zip(SEEDS, values, strict=False))


def test_clear_win_clear_loss_noise_and_a_single_seed():
    base = [80.0, 81.0, 79.5, 80.5, 80.2]
    win = S.compare(seeds([b + 2.0 + 0.1 * i for i, b in enumerate(base)]), seeds(base))
    assert win.paired and win.n == 5 and win.lo > 0 and S.ordering_verdict(win) == S.HOLDS
    loss = S.compare(seeds([b - 2.0 + 0.1 * i for i, b in enumerate(base)]), seeds(base))
    assert loss.hi < 0 and S.ordering_verdict(loss) == S.CONTRADICTED
    noise = S.compare(seeds([80.5, 80.6, 79.4, 80.9, 80.0]), seeds(base))
    assert noise.lo < 0 < noise.hi and S.ordering_verdict(noise) == S.INCONCLUSIVE
    assert math.isfinite(S.seeds_needed(noise)) and S.seeds_needed(noise) > 5
    single = S.compare({0: 85.0}, {0: 80.0})
    assert not single.decided and S.ordering_verdict(single) == S.INCONCLUSIVE
    assert math.isnan(S.seeds_needed(single))


def test_paired_interval_is_the_t_interval_of_the_differences():
    a, b = [84.1, 85.3, 84.2, 83.9], [82.6, 82.9, 82.4, 82.8]
    c = S.compare(dict(enumerate(a)), dict(enumerate(b)))
    d = np.subtract(a, b)
    half = st.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert c.paired and c.delta == pytest.approx(d.mean())
    assert (c.lo, c.hi) == pytest.approx((d.mean() - half, d.mean() + half))
    assert c.p == pytest.approx(st.ttest_rel(a, b).pvalue)


def test_unpaired_when_the_seeds_differ_uses_welch():
    a, b = {0: 84.1, 1: 85.3, 2: 84.2}, {3: 82.6, 4: 82.9, 5: 82.4, 6: 82.0}
    c = S.compare(a, b)
    assert not c.paired and c.p == pytest.approx(
        st.ttest_ind(list(a.values()), list(b.values()), equal_var=False).pvalue
    )
    assert c.lo > 0  # a clear difference


def test_paired_on_the_common_seeds_when_one_cell_ran_more():
    a = {0: 84.1, 1: 85.3, 2: 84.2, 3: 83.9, 4: 84.6}
    b = {0: 82.6, 1: 82.9, 2: 82.4}
    c = S.compare(a, b)
    assert c.paired and c.n == 3
    assert c.p == pytest.approx(st.ttest_rel([84.1, 85.3, 84.2], [82.6, 82.9, 82.4]).pvalue)


def test_family_adjustment_widens_the_interval_and_multiplies_p():
    a, b = [84.1, 85.3, 84.2, 83.9], [83.0, 84.1, 83.5, 83.6]
    c = S.compare(dict(enumerate(a)), dict(enumerate(b)))
    adjusted = S.family_adjust([c, c, c, c])
    assert adjusted[0].m == 4 and adjusted[0].level == pytest.approx(1 - 0.05 / 4)
    assert adjusted[0].lo < c.lo and adjusted[0].hi > c.hi
    assert adjusted[0].p == pytest.approx(min(1.0, 4 * c.p))
    assert S.family_adjust([c]) == [c]


def test_non_inferiority_and_equivalence():
    tol = 1.0
    near = S.compare(seeds([79.6, 80.7, 79.2, 80.1, 79.9]), seeds([80.0, 81.0, 79.5, 80.5, 80.2]))
    assert S.ordering_verdict(near, margin=tol) == S.HOLDS  # a ≥ b − 1
    assert S.equivalence_verdict(near, tol) == S.HOLDS
    far = S.compare(seeds([76.0, 77.1, 75.6, 76.4, 76.3]), seeds([80.0, 81.0, 79.5, 80.5, 80.2]))
    assert S.ordering_verdict(far, margin=tol) == S.CONTRADICTED
    assert S.equivalence_verdict(far, tol) == S.CONTRADICTED


def test_paper_claim_verdicts():
    assert S.claim_verdict(S.estimate([81.6, 81.7, 81.5]), 81.76, 1.0) == S.REPRODUCED
    assert S.claim_verdict(S.estimate([78.0, 78.2, 77.9]), 81.76, 1.0) == S.BELOW
    assert S.claim_verdict(S.estimate([85.0, 85.2, 84.9]), 81.76, 1.0) == S.ABOVE
    assert S.claim_verdict(S.estimate([81.7]), 81.76, 1.0) == S.SINGLE
    assert S.claim_verdict(S.estimate([]), 81.76, 1.0) == S.NOT_RUN
    # a noisy mean far from the paper is still consistent when its interval (widened) reaches the paper
    assert S.claim_verdict(S.estimate([70.0, 90.0]), 81.76, 1.0) == S.REPRODUCED


def test_estimate_and_seeds_needed_follow_the_t_distribution():
    e = S.estimate([1.0, 2.0, 3.0])
    half = st.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (e.n, e.mean, e.std) == (3, 2.0, 1.0) and (e.lo, e.hi) == pytest.approx((2 - half, 2 + half))
    c = S.Comparison(n=3, paired=True, delta=0.5, sd=1.0, lo=-1, hi=2, p=0.5, level=0.95, df=2)
    n = int(S.seeds_needed(c))
    power = lambda k: st.nct.sf(st.t.ppf(0.975, k - 1), k - 1, 0.5 * math.sqrt(k))  # noqa: E731
    assert power(n) >= 0.8 > power(n - 1)
