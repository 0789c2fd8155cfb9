"""What a run concludes, as data: cells, comparisons, rankings, computed once from the per-seed rows.

The table, summary and CSV code renders these records and computes nothing of its own; the statistics behind
them are :mod:`hansbench.bench.report.stats`. A verdict is its numbers and the rule it was made under:

- :class:`Cell`: one combination x value column: the mean, the interval (low, high, method), n and the per-seed
  values it is made of.
- :class:`Comparison`: one paired test by seed: the difference, p, the Holm-adjusted p within its table, the
  test, and the mark it earns when significant in its row's favour.
- :class:`Ranks`: a table's mean ranks, the columns they are over and the rule.
- :class:`Grid`: one table's cells in reading order with its comparisons and ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from hansbench.bench.report.stats import ALPHA, CONFIDENCE, Interval, bootstrap_interval, holm, paired_test, t_interval

BOOT_SEED, BOOT_N = 0, 2000


@dataclass(frozen=True)
class Cell(Interval):
    """An :class:`~hansbench.bench.report.stats.Interval` (mean, low, high, n, method) with the per-seed values
    it was computed from (``seeds[i]`` gave ``values[i]``) and whether a clusterer fell back on any of them."""

    seeds: tuple = ()
    values: tuple[float, ...] = ()
    fallback: bool = False

    def by_seed(self) -> pd.Series:
        """One value per seed (a seed's values averaged), indexed by seed: what the paired tests pair."""
        return pd.Series(self.values, index=list(self.seeds), dtype=float).groupby(level=0).mean()


def cell(g: pd.DataFrame) -> Cell:
    """The cell of one combination x value column from its per-seed rows (``value``, optional ``per_image``,
    ``seed``, ``fallback``): a bootstrap over seeds x images when every seed carries per-image values, else a
    t-interval over seeds."""
    ok = g[g["value"].notna()]
    facts = dict(seeds=tuple(ok["seed"].tolist()) if "seed" in ok else (), values=tuple(ok["value"].tolist()),
                 fallback=bool(g["fallback"].any()) if "fallback" in g else False)
    if ok.empty:
        return Cell(math.nan, n=0, **facts)
    images = ok["per_image"].tolist() if "per_image" in ok else [None]  # the frame's column (per_seed)
    if all(isinstance(x, list) and x for x in images):
        iv = bootstrap_interval([np.asarray(x, dtype=float) for x in images], CONFIDENCE, BOOT_N, BOOT_SEED)
        return Cell(float(ok["value"].mean()), iv.low, iv.high, iv.n, iv.method, **facts)
    iv = t_interval(ok["value"].to_numpy(dtype=float))
    return Cell(iv.mean, iv.low, iv.high, iv.n, iv.method, **facts)


def seed_cell(s: pd.Series) -> Cell:
    """The t-interval cell of values by seed (a Series indexed by seed)."""
    iv = t_interval(s.to_numpy(dtype=float))
    ok = s[np.isfinite(s.to_numpy(dtype=float))]
    return Cell(iv.mean, iv.low, iv.high, iv.n, iv.method, seeds=tuple(ok.index.tolist()),
                values=tuple(float(v) for v in ok))


def cells_by(g: pd.DataFrame, keys: list[str]) -> dict[tuple, Cell]:
    """The cell of each group of ``g`` by ``keys`` (keys always tuples), in the groups' order of appearance."""
    return {k if isinstance(k, tuple) else (k,): cell(sub) for k, sub in g.groupby(keys, sort=False)}


# -- paired comparisons ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """One paired test of a table: ``who`` (row key) on ``column`` against ``against`` (a name), its mark when
    significant and in ``who``'s favour; ``p_holm`` once corrected within its table (:func:`correct`)."""

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


def compare(a: pd.Series | Cell, b: pd.Series | Cell, **kw) -> Comparison:
    """a vs b paired by the index (seeds); cells by their per-seed values; ``kw``: the Comparison's identity."""
    a, b = (x.by_seed() if isinstance(x, Cell) else x for x in (a, b))
    idx = a.index.intersection(b.index)
    t = paired_test(a.loc[idx].to_numpy(dtype=float), b.loc[idx].to_numpy(dtype=float))
    return Comparison(p=t.p, test=t.test, n=t.n, diff=t.diff, **kw)


def correct(comparisons: list[Comparison]) -> tuple[Comparison, ...]:
    """Holm within the table: the comparisons with their adjusted p."""
    adj = holm([c.p for c in comparisons])
    return tuple(replace(c, p_holm=float(p)) for c, p in zip(comparisons, adj))


# -- a table's results -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """A value column: its name, the value it shows and how (unit, direction), and where the value comes from."""

    name: str
    metric: str
    unit: str
    higher: bool
    directed: bool
    split: str = ""
    stage: str = ""
    detail: str = ""
    relative_to: str = ""
    family: str = ""
    ranked: bool = False

    @property
    def direction(self) -> bool | None:
        """The better side for the CSV (None: a value with no better side)."""
        return self.higher if self.directed else None


@dataclass(frozen=True)
class Ranks:
    """A table's mean ranks (NaN: not ranked) over the ``complete`` columns (every candidate has them);
    ``left_out``: the ranked columns some candidate lacks."""

    mean: dict[str, float]
    complete: tuple[str, ...]
    left_out: tuple[str, ...]
    rule: str = ("ranked per column by the means in the value's direction, averaged within each metric, then over "
                 "metrics; a method the reference beats or equals on a column shares the bottom ranks there")


@dataclass(frozen=True)
class Grid:
    """One table's results: ``rows`` (row keys in reading order), ``columns``, ``cells`` by ``(*row, column
    name)``, the Holm-corrected ``comparisons``, the ``seeds`` of its rows and, for ranked tables, ``ranks``."""

    rows: tuple[tuple, ...]
    columns: tuple[Column, ...]
    cells: dict[tuple, Cell]
    seeds: tuple = ()
    comparisons: tuple[Comparison, ...] = ()
    ranks: Ranks | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_max(self) -> int:
        """The table's n: the most seeds any cell has."""
        return max((x.n for x in self.cells.values()), default=0)

    def comparison(self, who: tuple, column: str, mark: str) -> Comparison | None:
        """The comparison of ``who`` on ``column`` made for ``mark`` (None when there is none)."""
        return next((c for c in self.comparisons if c.who == who and c.column == column and c.mark == mark), None)


def seeds_of(g: pd.DataFrame) -> tuple:
    """The sorted distinct seeds of ``g``."""
    return tuple(sorted(dict.fromkeys(int(s) for s in g.seed.dropna())))


def oriented(x: float, higher: bool) -> float:
    """Lower is better after orientation."""
    return -x if higher else x
