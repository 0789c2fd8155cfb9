"""The leaderboard's statistics: intervals, paired tests, multiplicity correction, rank comparisons.

Pure functions on numpy arrays (no pandas, no I/O), each checked against scipy on fixed numbers in
``tests/bench/report/test_stats.py``; the rules are written out in ``docs/statistics.md``.

- :func:`t_interval`: mean with a 95 % Student-t interval over seeds (n >= 3; n = 2 gets none); :func:`clipped`
  cuts an interval to the value's range (an F1's never passes 1).
- :func:`bootstrap_interval`: a seeded two-stage percentile bootstrap over seeds x images, for rows that
  carry per-image values (``detail["per_image"]``).
- :func:`format_interval` / :func:`format_number`: significant figures follow the interval, never finer than the
  value's resolution (float noise reads 0).
- :func:`is_split` (bimodal seeds) and :func:`hits` ("k of n seeds reach the level", Clopper-Pearson).
- :func:`sign_flip_test` (exact, n <= 10 pairs), :func:`paired_test` (it or Wilcoxon), :func:`holm`,
  :func:`smallest_p` (what n pairs can reach at all).
- :func:`friedman_nemenyi`: Friedman test and the Nemenyi critical difference (Demšar 2006).
- :func:`kendall_tau_halves`: the ranking's stability between two halves of the seeds.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from scipy import stats as st

__all__ = ["Interval", "PairedTest", "FriedmanResult", "Hits", "t_interval", "bootstrap_interval", "clipped",
           "is_split", "hits", "format_number", "format_interval", "sign_flip_test", "paired_test", "holm",
           "smallest_p", "friedman_nemenyi", "kendall_tau_halves", "CONFIDENCE", "ALPHA", "EXACT_MAX_PAIRS"]

CONFIDENCE = 0.95
ALPHA = 0.05
EXACT_MAX_PAIRS = 10  # up to here the sign-flip test enumerates all 2^n sign vectors (1024)


@dataclass(frozen=True)
class Interval:
    """A cell's numbers: ``mean``, the interval ``[low, high]`` (NaN when there is none), ``n`` seeds and the
    ``method`` that gave the interval ("t", "bootstrap", either with "-clipped" when cut to the value's range,
    "split" for bimodal seeds shown as their values, or "none" when n < 3 and no per-image values)."""

    mean: float
    low: float = math.nan
    high: float = math.nan
    n: int = 0
    method: str = "none"

    @property
    def has_interval(self) -> bool:
        """Whether both bounds are defined (one seed gives a mean without an interval)."""
        return not (math.isnan(self.low) or math.isnan(self.high))


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    return v[np.isfinite(v)]


def t_interval(values, confidence: float = CONFIDENCE) -> Interval:
    """Mean and Student-t interval of independent seed values; no interval below 3 values.

    With two seeds a t-interval exists formally (t_{0.975,1} = 12.7) but is too wide to say anything and
    rests on one degree of freedom: the table says "n = 2, no interval" instead (PAPERS.md §8).
    """
    v = _finite(values)
    n = int(v.size)
    if n == 0:
        return Interval(math.nan, n=0)
    mean = float(v.mean())
    if n < 3:
        return Interval(mean, n=n)
    sem = float(st.sem(v))
    if sem == 0:
        return Interval(mean, mean, mean, n, "t")
    low, high = st.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return Interval(mean, float(low), float(high), n, "t")


def bootstrap_interval(per_seed: list, confidence: float = CONFIDENCE, n_boot: int = 2000,
                       seed: int = 0) -> Interval:
    """Two-stage percentile bootstrap of the mean over seeds x images (hand-written: scipy's bootstrap resamples
    one level only; with one seed it is that, and the test compares the two).

    ``per_seed``: one array of per-image values per seed (a seed's row value is its mean). Each replicate draws
    the seeds with replacement, then each drawn seed's images with replacement, and averages the seeds' means;
    the interval is the replicates' (1 - confidence)/2 and (1 + confidence)/2 quantiles.
    """
    groups = [_finite(g) for g in per_seed]
    groups = [g for g in groups if g.size]
    if not groups:
        return Interval(math.nan, n=0)
    mean = float(np.mean([g.mean() for g in groups]))
    rng = np.random.default_rng(seed)
    k = len(groups)
    picks = rng.integers(0, k, size=(n_boot, k))
    reps = np.zeros(n_boot)
    for i in range(k):  # slot i of every replicate: its seed's images redrawn independently
        for j, g in enumerate(groups):
            rows = np.flatnonzero(picks[:, i] == j)
            if rows.size:
                reps[rows] += g[rng.integers(0, g.size, size=(rows.size, g.size))].mean(axis=1)
    reps /= k
    a = (1 - confidence) / 2
    low, high = np.quantile(reps, [a, 1 - a])
    return Interval(mean, float(low), float(high), k, "bootstrap")


def clipped(iv: Interval, bounds: tuple[float, float] | None) -> Interval:
    """``iv`` cut to the value's range ``bounds`` = (low, high): the true mean lies inside it, so the cut removes
    only impossible values and the coverage stays at least the interval's (a t-interval of F1s 0.95, 1, 0.9
    reaches past 1). Method gets "-clipped" when a bound moved; no bounds or no interval: ``iv`` itself."""
    if bounds is None or not iv.has_interval:
        return iv
    low, high = max(iv.low, bounds[0]), min(iv.high, bounds[1])
    if (low, high) == (iv.low, iv.high):
        return iv
    return Interval(iv.mean, low, high, iv.n, f"{iv.method}-clipped")


def is_split(values, bounds: tuple[float, float] | None) -> bool:
    """Whether the seeds' values are bimodal (hit-or-miss): at least 3 values inside a known range and two
    neighbours (sorted) more than half the range apart. Such a gap always contains the range's midpoint, so
    seeds lie on both sides of it: a mean ± t there describes no seed (F1 0, 1, 0, 1, 0.98 is "0.60 ± 0.61")."""
    v = np.sort(_finite(values))
    if bounds is None or v.size < 3:
        return False
    return bool(np.max(np.diff(v)) > (bounds[1] - bounds[0]) / 2)


@dataclass(frozen=True)
class Hits:
    """``k`` of ``n`` seeds reach ``level`` (>= it, or <= it where ``higher`` is False) with the exact
    Clopper-Pearson interval [low, high] of the share at :data:`CONFIDENCE`."""

    k: int
    n: int
    level: float
    low: float
    high: float
    higher: bool = True


def hits(values, level: float, higher: bool = True, confidence: float = CONFIDENCE) -> Hits:
    """How many seeds reach ``level``, with the Clopper-Pearson interval
    (``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``)."""
    v = _finite(values)
    if v.size == 0:
        raise ValueError("hits needs at least one finite value (a seed that reached or missed the level)")
    k = int(np.sum(v >= level) if higher else np.sum(v <= level))
    ci = st.binomtest(k, int(v.size)).proportion_ci(confidence, method="exact")
    return Hits(k, int(v.size), float(level), float(ci.low), float(ci.high), higher)


# -- formatting -------------------------------------------------------------------------------------------
def _decimals_for(x: float, sig: int) -> int:
    """Decimals that show ``x`` with ``sig`` significant digits (0 for large numbers)."""
    if x == 0 or not math.isfinite(x):
        return 0
    return max(0, sig - 1 - math.floor(math.log10(abs(x))))


def _fixed(x: float, decimals: int) -> str:
    """``x`` with ``decimals`` decimals, rounded half up after dropping float noise beyond 12 significant digits
    (0.0544 + 0.000115 - 0.0544 is 0.00011499999...: it shows as 0.00012, not 0.00011)."""
    clean = Decimal(f"{x:.12g}")
    text = str(clean.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))
    if text.startswith("-") and Decimal(text) == 0:
        text = text[1:]  # "-0.00" is 0
    return text


def _finest(resolution: float) -> int:
    """The most decimals a value of this resolution carries (0.01 -> 2, 2e-4 -> 4; none given -> no limit)."""
    if not resolution or not math.isfinite(resolution) or resolution <= 0:
        return 10**6
    return max(0, -math.floor(math.log10(resolution)))


def format_number(x: float, sig: int = 3, resolution: float = 0.0) -> str:
    """A value without an interval: exact integers as integers (3.0 -> "3"), else ``sig`` significant digits with
    trailing zeros kept (76.99999809265137 -> "77.0", 0.0544 -> "0.0544", 0.9 -> "0.900"), numbers of >= ``sig``
    integer digits rounded to an integer (1234.5 -> "1235", half up); NaN -> "–". ``resolution``: the finest step
    the value means anything at (a percentage's float32 noise, a memory reading's page): no decimals below it,
    and a value that rounds to 0 there is "0" (-0.00000191 % -> "0")."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    x = float(x)
    if x == 0:
        return "0"
    if x == int(x) and abs(x) < 1e15:  # an exact integer (a count, a rank, 100 %) is shown as one
        return str(int(x))
    d = _decimals_for(x, sig)
    rounded = float(_fixed(x, d))
    if rounded != 0 and _decimals_for(rounded, sig) < d:  # rounding added a digit (9.9996 -> 10.0)
        d = _decimals_for(rounded, sig)
    d = min(d, _finest(resolution))
    return "0" if float(_fixed(x, d)) == 0 else _fixed(x, d)


def _noise_width(iv: Interval, resolution: float) -> bool:
    """Whether the interval's width is float noise (all seeds equal up to the last bits: 0.15 ± 2.8e-17) or
    below the value's resolution: then it is shown as zero width."""
    half = (iv.high - iv.low) / 2
    scale = max(abs(iv.low), abs(iv.high), abs(iv.mean))
    return half <= 1e-9 * scale or (resolution > 0 and half < resolution)


def interval_place(iv: Interval) -> int:
    """The decimal place of the cell: that of the half-width's second significant digit (0.000115 -> -5,
    47.4 -> 0, 1234 -> 2); a zero-width interval: the mean's third significant digit."""
    half = (iv.high - iv.low) / 2
    x, sig = (half, 2) if half > 0 and math.isfinite(half) else (iv.mean, 3)
    if x == 0 or not math.isfinite(x):
        return 0
    place = math.floor(math.log10(abs(x))) - (sig - 1)
    if abs(float(_fixed(x / 10.0 ** place, 0))) >= 10 ** sig:  # rounding added a digit (0.0996 -> 0.10)
        place += 1
    return place


def _at(x: float, place: int) -> str:
    """``x`` rounded to 10^place: decimals when place < 0, else an integer with trailing zeros."""
    if place < 0:
        return _fixed(x, -place)
    return _fixed(float(_fixed(x / 10.0 ** place, 0)) * 10.0 ** place, 0)


def format_interval(iv: Interval, resolution: float = 0.0) -> str:
    """"mean ± half-width" for a t-interval, "mean [low, high]" for a bootstrap or clipped one, both rounded to
    the place of the half-width's second significant digit (0.0544 ± 0.000115 -> "0.05440 ± 0.00012", 1234 ±
    1234 -> "1200 ± 1200"), never finer than ``resolution``; a width of float noise is zero ("0.150 ± 0");
    no interval: the mean by :func:`format_number`."""
    if iv.n == 0 or not math.isfinite(iv.mean):
        return "–"
    if not iv.has_interval:
        return format_number(iv.mean, resolution=resolution)
    if iv.high == iv.low or _noise_width(iv, resolution):  # every seed gave the same value
        m = format_number(iv.mean, resolution=resolution)
        return f"{m} ± 0" if iv.method == "t" else f"{m} [{m}, {m}]"
    p = max(interval_place(iv), -_finest(resolution))
    if iv.method == "t":
        return f"{_at(iv.mean, p)} ± {_at((iv.high - iv.low) / 2, p)}"
    return f"{_at(iv.mean, p)} [{_at(iv.low, p)}, {_at(iv.high, p)}]"


# -- paired tests -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairedTest:
    """A paired comparison of a and b over seeds: ``p`` (two-sided), ``test`` (its name), ``n`` pairs,
    ``diff`` the mean of a - b."""

    p: float
    test: str
    n: int
    diff: float


def sign_flip_test(diffs) -> float:
    """Exact two-sided sign-flip permutation test of mean(diffs) = 0 (hand-written: scipy's permutation_test
    gives the same p, checked in the tests, but at 100x the cost per call).

    Under H0 each paired difference is symmetric about 0, so all 2^n sign vectors are equally likely;
    p = share of them whose |mean| >= the observed |mean| (a relative tolerance absorbs float noise).
    """
    d = _finite(diffs)
    n = d.size
    if n == 0:
        return math.nan
    if n > 20:
        raise ValueError(f"the exact sign-flip test enumerates 2^n sign vectors; n = {n} pairs is too many "
                         "(use paired_test, which switches to Wilcoxon above 10 pairs)")
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    means = np.abs(signs @ d) / n
    observed = abs(d.mean())
    return float(np.mean(means >= observed * (1 - 1e-12) - 1e-15))


def paired_test(a, b) -> PairedTest:
    """a vs b paired by seed (NaN pairs dropped): the exact sign-flip test for n <= 10 pairs, else Wilcoxon's
    signed-rank test (scipy.stats.wilcoxon, two-sided). All-equal pairs give p = 1."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired test needs one value per seed on both sides, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = int(d.size)
    if n == 0:
        return PairedTest(math.nan, "none", 0, math.nan)
    diff = float(d.mean())
    if np.all(d == 0):
        return PairedTest(1.0, "sign-flip" if n <= EXACT_MAX_PAIRS else "wilcoxon", n, diff)
    if n <= EXACT_MAX_PAIRS:
        return PairedTest(sign_flip_test(d), "sign-flip", n, diff)
    return PairedTest(float(st.wilcoxon(d).pvalue), "wilcoxon", n, diff)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (hand-written: scipy.stats has no Holm; statsmodels' multipletests
    'holm' is the reference, checked in the tests on a literal example). NaN stays NaN and is not counted.

    Sorted ascending, p_(i) * (m - i) for i = 0..m-1, made monotone by a running maximum, capped at 1.
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(adjusted, 1.0)
    return out


def smallest_p(n: int, m: int = 1) -> float:
    """The smallest p any paired test here can give with ``n`` pairs, times ``m`` for Holm over ``m`` tests (its
    first, strictest step; capped at 1): every difference of one sign gives 2 / 2^n, in the exact sign-flip test
    and in Wilcoxon's exact null alike. Where this is not below alpha no test can be significant (n = 3: 0.25),
    so a verdict would only repeat the sample size."""
    if n < 1:
        return 1.0
    return min(1.0, m * 2.0 / 2.0 ** n)


# -- ranks across blocks ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FriedmanResult:
    """Average ranks (1 = best) of k methods over N blocks, Friedman's chi-square and p, and the Nemenyi
    critical difference at ``alpha``: two methods whose average ranks differ by less are not told apart."""

    avg_ranks: np.ndarray
    statistic: float
    p: float
    cd: float
    q: float
    n_blocks: int
    alpha: float


def block_ranks(scores, higher_is_better: bool = True) -> np.ndarray:
    """Ranks within each block (row): 1 = best, ties get the average rank (scipy.stats.rankdata)."""
    s = np.asarray(scores, dtype=float)
    return st.rankdata(-s if higher_is_better else s, axis=1)


def friedman_nemenyi(scores, higher_is_better: bool = True, alpha: float = ALPHA) -> FriedmanResult:
    """Friedman test (scipy.stats.friedmanchisquare) over ``scores[N blocks, k methods]`` and Nemenyi's
    CD = q_alpha * sqrt(k (k + 1) / (6 N)), q_alpha = studentized_range.ppf(1 - alpha, k, inf) / sqrt(2)
    (Demšar 2006, Sec. 3.2.2). Needs k >= 3 methods for Friedman (scipy); with k = 2 p is NaN."""
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.shape[0] < 2 or s.shape[1] < 2:
        raise ValueError(f"friedman_nemenyi needs >= 2 blocks x >= 2 methods, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("friedman_nemenyi needs a value for every method in every block (drop incomplete ones)")
    n, k = s.shape
    ranks = block_ranks(s, higher_is_better)
    if k >= 3:
        with np.errstate(invalid="ignore", divide="ignore"):  # every block tied throughout: no statistic (NaN)
            res = st.friedmanchisquare(*s.T)
        stat, p = float(res.statistic), float(res.pvalue)
    else:
        stat, p = math.nan, math.nan
    q = float(st.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))
    cd = q * math.sqrt(k * (k + 1) / (6.0 * n))
    return FriedmanResult(ranks.mean(axis=0), stat, p, cd, q, n, alpha)


def kendall_tau_halves(scores, block_seeds, higher_is_better: bool = True) -> tuple[float, float]:
    """Kendall's tau (scipy.stats.kendalltau) between the average-rank orders of the methods computed from
    the blocks of the first and of the second half of the seeds (sorted); (NaN, NaN) with < 2 seeds.

    Returns (tau, p). tau = 1: both halves rank the methods alike; near 0: the ranking is noise."""
    s = np.asarray(scores, dtype=float)
    seeds = np.asarray(block_seeds)
    uniq = np.unique(seeds)
    if uniq.size < 2 or s.shape[1] < 2:
        return math.nan, math.nan
    first = np.isin(seeds, uniq[: uniq.size // 2])
    r1 = block_ranks(s[first], higher_is_better).mean(axis=0)
    r2 = block_ranks(s[~first], higher_is_better).mean(axis=0)
    res = st.kendalltau(r1, r2)
    return float(res.statistic), float(res.pvalue)
