"""The leaderboard's statistics against scipy (and literal examples) on fixed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from hansbench.bench.report import stats
from hansbench.bench.report.stats import (
    Interval,
    bootstrap_interval,
    format_interval,
    format_number,
    friedman_nemenyi,
    holm,
    kendall_tau_halves,
    paired_test,
    sign_flip_test,
    t_interval,
)


def test_t_interval_is_scipys_and_two_seeds_get_none():
    v = [0.81, 0.74, 0.9, 0.77]
    iv = t_interval(v)
    low, high = st.t.interval(0.95, 3, loc=np.mean(v), scale=st.sem(v))
    assert iv.method == "t" and iv.n == 4
    assert iv.low == pytest.approx(low) and iv.high == pytest.approx(high)
    two = t_interval([1.0, 2.0])
    assert two.n == 2 and not two.has_interval and two.mean == 1.5
    assert t_interval([1.0, np.nan, 3.0]).n == 2  # NaN seeds do not count


def test_bootstrap_with_one_seed_matches_scipys_percentile_bootstrap():
    rng = np.random.default_rng(3)
    x = rng.normal(0.4, 0.2, size=60)
    ours = bootstrap_interval([x], n_boot=20000, seed=1)
    ref = st.bootstrap((x,), np.mean, n_resamples=20000, method="percentile", random_state=1).confidence_interval
    assert ours.method == "bootstrap" and ours.mean == pytest.approx(x.mean())
    assert ours.low == pytest.approx(ref.low, abs=0.01) and ours.high == pytest.approx(ref.high, abs=0.01)


def test_bootstrap_over_seeds_widens_with_seed_spread_and_is_seeded():
    rng = np.random.default_rng(0)
    tight = [rng.normal(0.5, 0.1, 40) for _ in range(4)]
    spread = [rng.normal(m, 0.1, 40) for m in (0.2, 0.4, 0.6, 0.8)]
    a, b = bootstrap_interval(tight, seed=2), bootstrap_interval(spread, seed=2)
    assert (b.high - b.low) > 2 * (a.high - a.low)  # the seed level is resampled, not only images
    assert bootstrap_interval(spread, seed=2) == b and bootstrap_interval(spread, seed=3) != b


@pytest.mark.parametrize("iv, text", [
    (Interval(0.0544, 0.0544 - 0.000115, 0.0544 + 0.000115, 3, "t"), "0.05440 ± 0.00012"),
    (Interval(92.5, 92.5 - 47.4, 92.5 + 47.4, 3, "t"), "93 ± 47"),  # half up
    (Interval(0.835, 0.835 - 0.378, 0.835 + 0.378, 5, "t"), "0.84 ± 0.38"),
    (Interval(0.5, 0.5 - 0.0996, 0.5 + 0.0996, 3, "t"), "0.50 ± 0.10"),  # rounding adds a digit
    (Interval(1234.0, 1234.0 - 1234.0, 1234.0 + 1234.0, 3, "t"), "1200 ± 1200"),
    (Interval(0.5, 0.42, 0.61, 4, "bootstrap"), "0.500 [0.420, 0.610]"),
    (Interval(-0.0001, -0.003, 0.0028, 3, "t"), "-0.0001 ± 0.0029"),
    (Interval(2.5, 2.5, 2.5, 3, "t"), "2.50 ± 0"),  # zero width: the mean's three digits
    (Interval(76.99999809265137, n=2), "77.0"),  # n = 2: no interval, no float noise
    (Interval(0.15, 0.15 - 2.8e-17, 0.15 + 2.8e-17, 3, "t"), "0.150 ± 0"),  # float noise is zero width (issue 29)
    (Interval(0.787878787879, 0.787878787879 - 3.3e-16, 0.787878787879 + 3.3e-16, 3, "t"), "0.788 ± 0"),
    (Interval(0.9, 0.8, 1.0, 3, "t-clipped"), "0.90 [0.80, 1.00]"),  # cut at the range: not symmetric, no "±"
    (Interval(math.nan, n=0), "–"),
])
def test_significant_figures_follow_the_interval(iv, text):
    assert format_interval(iv) == text


@pytest.mark.parametrize("x, text", [(76.99999809265137, "77.0"), (0.0544, "0.0544"), (1234.5, "1235"),
                                     (9.9996, "10.0"), (-0.00049999, "-0.000500"), (0.0, "0"), (math.nan, "–"),
                                     (100.0, "100"), (3.0, "3"), (0.9, "0.900")])
def test_numbers_without_interval_have_three_significant_digits(x, text):
    assert format_number(x) == text


@pytest.mark.parametrize("x, resolution, text", [(-0.0000019073486328125, 2e-4, "0"), (0.00390625, 0.01, "0"),
                                                 (75.9, 0.01, "75.9"), (0.0544, 2e-6, "0.0544"),
                                                 (0.0123, 0.01, "0.01")])
def test_no_digits_below_the_values_resolution(x, resolution, text):
    assert format_number(x, resolution=resolution) == text


def test_exact_sign_flip_matches_scipys_permutation_test():
    a = np.array([0.91, 0.85, 0.88, 0.93, 0.79, 0.9, 0.86])
    b = np.array([0.80, 0.86, 0.71, 0.84, 0.80, 0.79, 0.85])
    ref = st.permutation_test((a, b), lambda x, y: np.mean(x - y), permutation_type="samples",
                              n_resamples=np.inf, alternative="two-sided").pvalue
    assert sign_flip_test(a - b) == pytest.approx(ref)
    t = paired_test(a, b)
    assert t.test == "sign-flip" and t.n == 7 and t.p == pytest.approx(ref) and t.diff == pytest.approx(np.mean(a - b))
    assert sign_flip_test([1.0, 2.0]) == 0.5  # two seeds: the smallest attainable p is 0.5


def test_paired_test_switches_to_wilcoxon_above_ten_pairs():
    rng = np.random.default_rng(4)
    a, b = rng.normal(1, 1, 14), rng.normal(0.5, 1, 14)
    t = paired_test(a, b)
    assert t.test == "wilcoxon" and t.p == pytest.approx(st.wilcoxon(a - b).pvalue)
    assert paired_test([1, 2, 3], [1, 2, 3]).p == 1.0
    with pytest.raises(ValueError, match="one value per seed"):
        paired_test([1, 2], [1])


def test_holm_on_a_literal_example():
    # Holm (1979) step-down: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04,
    # running maximum 0.02, 0.03, 0.06, 0.06; put back in the input order.
    got = holm([0.01, 0.04, 0.03, 0.005])
    assert got == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]  # 0.5 * 2 capped at 1; monotone
    with_nan = holm([0.01, np.nan, 0.02])
    assert math.isnan(with_nan[1]) and with_nan[[0, 2]] == pytest.approx([0.02, 0.02])


def test_holm_matches_statsmodels_where_installed():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = [0.001, 0.2, 0.013, 0.04, 0.6, 0.012]
    assert holm(p) == pytest.approx(multitest.multipletests(p, method="holm")[1])


def test_friedman_and_nemenyi_cd_against_scipy_and_demsar():
    scores = np.array([[0.9, 0.8, 0.7, 0.6], [0.85, 0.82, 0.6, 0.65], [0.95, 0.7, 0.72, 0.5],
                       [0.9, 0.91, 0.8, 0.6], [0.8, 0.7, 0.75, 0.55]])
    r = friedman_nemenyi(scores)
    ref = st.friedmanchisquare(*scores.T)
    assert r.statistic == pytest.approx(ref.statistic) and r.p == pytest.approx(ref.pvalue)
    assert r.avg_ranks == pytest.approx([1.2, 2.2, 2.8, 3.8])  # counted by hand
    # Demšar 2006, Table 5(a): q_0.05 for k = 4 is 2.569
    assert r.q == pytest.approx(2.569, abs=1e-3)
    assert r.cd == pytest.approx(2.569 * math.sqrt(4 * 5 / (6 * 5)), abs=1e-3)
    low = friedman_nemenyi(scores, higher_is_better=False)
    assert low.avg_ranks == pytest.approx(5 - r.avg_ranks)
    with pytest.raises(ValueError, match="every method in every block"):
        friedman_nemenyi(np.array([[1.0, np.nan], [2.0, 1.0]]))


def test_ranking_stability_between_halves_of_the_seeds():
    scores = np.array([[3, 2, 1], [3, 2, 1], [3, 1, 2], [3, 2, 1.0]])
    tau, _ = kendall_tau_halves(scores, [0, 1, 2, 3])
    assert tau == pytest.approx(st.kendalltau([1, 2.5, 2.5], [1, 2, 3]).statistic)
    assert kendall_tau_halves(np.array([[1, 2.0], [2, 1.0]]), [0, 1])[0] == pytest.approx(-1.0)
    assert math.isnan(kendall_tau_halves(scores, [0, 0, 0, 0])[0])


def test_constants_are_the_documented_ones():
    assert stats.CONFIDENCE == 0.95 and stats.ALPHA == 0.05 and stats.EXACT_MAX_PAIRS == 10
