"""Rendering a leaderboard cell: its text, its tidy CSV record, the marks its comparisons earned and the notes
that say how cells and tests were made. The numbers are :mod:`hansbench.bench.report.results` (re-exported
here: ``interval``, ``Comparison``, ``compare``, ``correct``); the statistics :mod:`hansbench.bench.report.stats`.
"""

from __future__ import annotations

import math

from hansbench.bench.report import run_facts
from hansbench.bench.report.results import BOOT_N, BOOT_SEED, Comparison, compare, correct  # noqa: F401  (re-exported)
from hansbench.bench.report.results import cell as interval  # noqa: F401  (re-exported: cells.interval)
from hansbench.bench.report.stats import (
    ALPHA,
    CONFIDENCE,
    EXACT_MAX_PAIRS,
    Interval,
    format_interval,
    format_number,
    smallest_p,
)
from hansbench.bench.suite.seeds import seed_list
from hansbench.metrics import detail as detail_keys
from hansbench.metrics.detail import PER_IMAGE  # noqa: F401  (re-exported: cells.PER_IMAGE)

SIG_MARK = "*"  # better than the reference (random) on the same seeds, Holm-corrected within the table
CONTROL_MARK = "+"  # better than the raw-input control (the same clusterer on the input itself)
BEST_MARK = "!"  # the best in its column and better than the runner-up
TIDY = ["mean", "ci_low", "ci_high", "n", "interval", "k", "k_ci_low", "k_ci_high", "reach_level", "per_seed",
        "unit", "higher_is_better"]
SPLIT_RULE = ("a cell whose seeds are bimodal (two neighbouring seed values more than half the value's range apart) "
              "shows 'k of n seeds' reaching the range's midpoint, which that gap straddles, with the 95 % "
              "Clopper-Pearson interval of the share, then the seeds' values, instead of an interval")


def per_image(detail: str) -> list[float] | None:
    """The row's per-image values (``detail["per_image"]``, :data:`hansbench.metrics.detail.PER_IMAGE`), or None."""
    if PER_IMAGE not in str(detail):
        return None
    v = detail_keys.parse(detail).get(PER_IMAGE)
    if not isinstance(v, list) or not v:
        return None
    return [float(x) if x is not None else math.nan for x in v]


def shown(iv: Interval) -> bool:
    """Whether the cell has a value to show (its text is not the "–" of an undefined one): decided on the
    numbers, never by reading the text back."""
    return iv.n > 0 and math.isfinite(iv.mean)


LISTED_SEEDS = 10  # a bimodal cell lists its seeds' values up to this many (twenty would overrun a printed column)


def split_text(iv: Interval) -> str:
    """A bimodal cell: "0.596; 3 of 5 seeds >= 0.5 [0.15, 0.95]: 0, 1, 0, 1, 0.98" (mean; k of n with its
    Clopper-Pearson interval; the values by seed, up to :data:`LISTED_SEEDS` of them: beyond, the values are in the
    CSV's ``per_seed`` and the HTML's strip of dots)."""
    h, res = iv.hits, getattr(iv, "resolution", 0.0)
    head = (f"{format_number(iv.mean, resolution=res)}; {h.k} of {h.n} seeds {'≥' if h.higher else '≤'} "
            f"{h.level:g} [{h.low:.2f}, {h.high:.2f}]")
    if len(iv.values) > LISTED_SEEDS:
        return head
    return head + ": " + ", ".join(format_number(v, 2, res) for v in iv.values)


def text(iv: Interval, n_max: int) -> str:
    """The cell's text: the interval's (at the cell's resolution), with "(n=k)" where k differs from the table's
    n; a bimodal cell's values (:func:`split_text`)."""
    if getattr(iv, "hits", None) is not None:
        return split_text(iv)
    return format_interval(iv, getattr(iv, "resolution", 0.0)) + (f" (n={iv.n})" if shown(iv) and iv.n != n_max
                                                                  else "")


def tidy(iv: Interval, unit: str, higher: bool | None, **keys) -> dict:
    """One tidy CSV record: the keys, then :data:`TIDY`: ``mean, ci_low, ci_high, n, interval``, for a bimodal
    cell ``k`` of n seeds reaching ``reach_level`` with the share's Clopper-Pearson interval, ``per_seed`` (the
    values by seed, ';'-joined), then ``unit, higher_is_better`` (empty for values with no better side)."""
    h = getattr(iv, "hits", None)
    values = getattr(iv, "values", ())
    return {**keys, "mean": iv.mean, "ci_low": iv.low, "ci_high": iv.high, "n": iv.n, "interval": iv.method,
            "k": h.k if h else "", "k_ci_low": h.low if h else math.nan, "k_ci_high": h.high if h else math.nan,
            "reach_level": h.level if h else math.nan, "per_seed": ";".join(f"{v:.6g}" for v in values),
            "unit": unit, "higher_is_better": "" if higher is None else bool(higher)}


def interval_note(ns: list[int], seeds, dev_seeds=None, bootstrap: bool = False, clipped: bool = False,
                  split: bool = False) -> str:
    """What the cells are: n, the seeds (evaluation seeds where the run names tuning seeds), the interval.

    ``dev_seeds``: the tuning seeds (:func:`hansbench.bench.report.run_facts.dev_seeds`), or the run
    configuration's ``[suite]`` table they are read from."""
    n_max = max(ns) if ns else 0
    seed_text = seed_list([int(s) for s in seeds])  # "3-22", not twenty numbers in every caption
    dev = run_facts.dev_seeds({"suite": dev_seeds}) if isinstance(dev_seeds, dict) else list(dev_seeds or [])
    if dev:
        overlap = sorted(set(dev) & {int(s) for s in seeds})
        which = (f"evaluation seeds {seed_text} (settings tuned on {seed_list(dev)})" if not overlap else
                 f"seeds {seed_text}, including the tuning seeds {seed_list(overlap)}")
    else:
        which = f"seeds {seed_text}"
    if n_max >= 3:
        how = f"mean ± half-width of the {CONFIDENCE:.0%} Student-t interval over n = {n_max} {which}"
    elif n_max == 2:
        how = f"mean over n = 2 {which}: two seeds give no honest interval, so none is shown"
    else:
        how = f"one seed ({which}): no interval"
    if bootstrap:
        how += (f"; cells 'mean [low, high]': {CONFIDENCE:.0%} percentile bootstrap over seeds x images "
                f"({BOOT_N} replicates, seed {BOOT_SEED})")
    if clipped:
        how += "; an interval that would pass the value's range is cut at its end and shown as 'mean [low, high]'"
    if split:
        how += f"; {SPLIT_RULE}"
    return how + "."


def cells_note(ns: list[int], seeds, dev_seeds, cells_) -> str:
    """:func:`interval_note` for these cells: which kinds of interval they use."""
    methods = {x.method for x in cells_}
    return interval_note(ns, seeds, dev_seeds, any(m.startswith("bootstrap") for m in methods),
                         any(m.endswith("-clipped") for m in methods), "split" in methods)


def withheld(n: int, m: int) -> str:
    """Why no verdict can be given ("" when one can): with ``n`` pairs and Holm over ``m`` tests the smallest
    attainable adjusted p (:func:`~hansbench.bench.report.stats.smallest_p`) is not below alpha."""
    if n < 1 or smallest_p(n, m) < ALPHA:
        return ""
    one = smallest_p(n, 1)
    holm_part = f", x {m} for Holm over {m} tests = {format_number(smallest_p(n, m), 2)}" if m > 1 else ""
    return (f"the smallest p with n = {n} paired seed{'s' if n != 1 else ''} is {format_number(one, 2)} "
            f"(2/2^n){holm_part}: not below alpha = {ALPHA}, so no test can be significant")


# -- the marks and the tests behind them -------------------------------------------------------------------
def marks_of(comparisons: list[Comparison]) -> dict[tuple, str]:
    """(who..., column) -> the marks of its significant comparisons, in the order *, +, !."""
    out: dict[tuple, str] = {}
    order = (SIG_MARK, CONTROL_MARK, BEST_MARK)
    for c in comparisons:
        if c.significant:
            key = (*c.who, c.column)
            out[key] = "".join(m for m in order if m in out.get(key, "") + c.mark)
    return out


def tests_note(comparisons: list[Comparison], names: dict[str, str]) -> str:
    """The caption's sentence on the tests: which, how many, Holm, what each mark means."""
    if not comparisons:
        return ""
    tests = sorted({c.test for c in comparisons if c.test != "none"})
    n = max((c.n for c in comparisons), default=0)
    which = {"sign-flip": f"exact sign-flip permutation test (n <= {EXACT_MAX_PAIRS} pairs)",
             "wilcoxon": "Wilcoxon signed-rank test"}
    used = " and ".join(which.get(t, t) for t in tests) or "no test (no paired seeds)"
    marks = "; ".join(f"{m} better than {names[m]}" for m in (SIG_MARK, CONTROL_MARK, BEST_MARK) if m in names
                      and any(c.mark == m for c in comparisons))
    why = withheld(n, len(comparisons))
    if why:
        return f"No marks, no verdict: {why} (paired by seed, two-sided {used})."
    return (f"Marks: {marks} (paired by seed, two-sided {used}, Holm-corrected over the table's "
            f"{len(comparisons)} tests, alpha = {ALPHA}).")
