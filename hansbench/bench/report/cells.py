"""Leaderboard cells: per-seed values -> a mean with its interval, its text, its tidy CSV record, and the
paired tests behind the marks in a table's cells (the statistics themselves are :mod:`hansbench.bench.report.stats`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hansbench.bench.report.stats import (
    ALPHA,
    CONFIDENCE,
    EXACT_MAX_PAIRS,
    Interval,
    bootstrap_interval,
    format_interval,
    holm,
    paired_test,
    t_interval,
)
from hansbench.metrics import detail as detail_keys
from hansbench.metrics.detail import PER_IMAGE  # noqa: F401  (re-exported: cells.PER_IMAGE)

BOOT_SEED, BOOT_N = 0, 2000
SIG_MARK = "*"  # better than the reference (random) on the same seeds, Holm-corrected within the table
CONTROL_MARK = "+"  # better than the raw-input control (the same clusterer on the input itself)
BEST_MARK = "!"  # the best in its column and better than the runner-up
TIDY = ["mean", "ci_low", "ci_high", "n", "interval", "unit", "higher_is_better"]


def per_image(detail: str) -> list[float] | None:
    """The row's per-image values (``detail["per_image"]``, :data:`hansbench.metrics.detail.PER_IMAGE`), or None."""
    if PER_IMAGE not in str(detail):
        return None
    v = detail_keys.parse(detail).get(PER_IMAGE)
    if not isinstance(v, list) or not v:
        return None
    return [float(x) if x is not None else math.nan for x in v]


def interval(g: pd.DataFrame) -> Interval:
    """The cell of one combination x value column from its per-seed rows (``value``, optional ``per_image``):
    a bootstrap over seeds x images when every seed carries per-image values, else a t-interval over seeds."""
    ok = g[g["value"].notna()]
    if ok.empty:
        return Interval(math.nan, n=0)
    images = ok["per_image"].tolist() if "per_image" in ok else [None]  # the frame's column (per_seed)
    if all(isinstance(x, list) and x for x in images):
        iv = bootstrap_interval([np.asarray(x, dtype=float) for x in images], CONFIDENCE, BOOT_N, BOOT_SEED)
        return Interval(float(ok["value"].mean()), iv.low, iv.high, iv.n, iv.method)
    return t_interval(ok["value"].to_numpy(dtype=float))


def shown(iv: Interval) -> bool:
    """Whether the cell has a value to show (its text is not the "–" of an undefined one): decided on the
    numbers, never by reading the text back."""
    return iv.n > 0 and math.isfinite(iv.mean)


def text(iv: Interval, n_max: int) -> str:
    """The cell's text: the interval's, with "(n=k)" where k differs from the table's n."""
    return format_interval(iv) + (f" (n={iv.n})" if shown(iv) and iv.n != n_max else "")


def tidy(iv: Interval, unit: str, higher: bool | None, **keys) -> dict:
    """One tidy CSV record: the keys, then ``mean, ci_low, ci_high, n, interval, unit, higher_is_better``
    (``higher_is_better`` empty for values with no better side)."""
    return {**keys, "mean": iv.mean, "ci_low": iv.low, "ci_high": iv.high, "n": iv.n, "interval": iv.method,
            "unit": unit, "higher_is_better": "" if higher is None else bool(higher)}


def interval_note(ns: list[int], seeds: list, config_seeds: dict | None = None, bootstrap: bool = False) -> str:
    """What the cells are: n, the seeds (evaluation seeds where the run config names tuning seeds), the interval."""
    n_max = max(ns) if ns else 0
    seed_text = ", ".join(str(s) for s in seeds)
    dev = [int(s) for s in (config_seeds or {}).get("dev_seeds", []) or []]
    if dev:
        overlap = sorted(set(dev) & {int(s) for s in seeds})
        which = (f"evaluation seeds {seed_text} (settings tuned on {', '.join(map(str, dev))})" if not overlap else
                 f"seeds {seed_text}, including the tuning seeds {', '.join(map(str, overlap))}")
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
    return how + "."


# -- paired tests behind the marks --------------------------------------------------------------------------
@dataclass
class Comparison:
    """One paired test of a table: ``who`` (row key) on ``column`` against ``against`` (a name), its mark when
    significant and in ``who``'s favour."""

    who: tuple
    column: str
    against: str
    mark: str
    p: float
    test: str
    n: int
    diff: float
    higher: bool
    p_holm: float = math.nan

    @property
    def significant(self) -> bool:
        """Better than the reference in the right direction, with a Holm-adjusted p below ``ALPHA``."""
        better = self.diff > 0 if self.higher else self.diff < 0
        return better and math.isfinite(self.p_holm) and self.p_holm < ALPHA


def compare(a: pd.Series, b: pd.Series, **kw) -> Comparison:
    """a vs b paired by the index (seeds); ``kw``: the Comparison's identity fields."""
    idx = a.index.intersection(b.index)
    t = paired_test(a.loc[idx].to_numpy(dtype=float), b.loc[idx].to_numpy(dtype=float))
    return Comparison(p=t.p, test=t.test, n=t.n, diff=t.diff, **kw)


def correct(comparisons: list[Comparison]) -> list[Comparison]:
    """Holm within the table: every comparison's adjusted p."""
    adj = holm([c.p for c in comparisons])
    for c, p in zip(comparisons, adj):
        c.p_holm = float(p)
    return comparisons


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
    note = (f"Marks: {marks} (paired by seed, two-sided {used}, Holm-corrected over the table's "
            f"{len(comparisons)} tests, alpha = {ALPHA}).")
    if n and n <= 2:
        note += f" With n = {n} seeds the smallest attainable p is {0.5 if n == 2 else 1.0}: no difference can be significant."
    return note
