"""What a run concludes, as data: cells, comparisons, rankings, computed once from the per-seed rows.

The verdicts step (:mod:`hansbench.bench.report.verdicts`, one module per table shape) computes these records
from a scenario's rows; the table, summary and CSV code (:mod:`~hansbench.bench.report.tables` and its siblings)
calls that step and renders the records, computing nothing of its own; the statistics behind them are
:mod:`hansbench.bench.report.stats`. A verdict is its numbers and the rule it was made under:

- :class:`Cell`: one combination x value column: the mean, the interval (low, high, method; inside the value's
  range, :data:`RANGES`), n and the per-seed values it is made of; bimodal seeds (hit-or-miss outcomes) as
  "k of n seeds reach the level" with the values themselves instead of an interval.
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

from hansbench.bench.report.stats import (
    ALPHA,
    CONFIDENCE,
    Hits,
    Interval,
    bootstrap_interval,
    clipped,
    hits,
    holm,
    is_split,
    paired_test,
    t_interval,
)

BOOT_SEED, BOOT_N = 0, 2000

_FRACTIONS = ("cluster-f1", "cluster-f1-unsup", "flag-f1", "abstained", "cluster-nmi", "auroc", "auprc", "flagged-fraction", "spearman-abs",
              *(f"{b}{v}" for b in ("relevance-mass-acc", "relevance-rank-acc", "pointing-game")
                for v in ("", "-best-view")))
_PERCENTAGES = ("acc-cladec", "acc-refae", "artifact-class-acc", "asr", "clean-acc", "clean-class-acc",
                "clean-to-target", "cluster-acc", "cluster-acc-unsup", "flag-precision", "flag-recall", "flip-rate", "insertion-flip-rate",
                "occlusion-acc-least", "occlusion-acc-most", "roar-acc")
_POINTS = ("acc-gap", "delta-acc", "occlusion-delta-acc", "pair-acc-drop")  # differences of two percentages
RANGES: dict[str, tuple[float, float]] = {
    **{m: (0.0, 1.0) for m in _FRACTIONS}, **{m: (0.0, 100.0) for m in _PERCENTAGES},
    **{m: (-100.0, 100.0) for m in _POINTS}, **{m: (-1.0, 1.0) for m in ("cluster-ari", "tau", "spearman", "ssim")}}
UNIT_RANGES = {"bool": (0.0, 1.0)}  # a 0/1 flag averaged over seeds is a share
# the finest step a unit means anything at: the CPU's peak memory is RSS growth counted in 4 KiB pages (0.0039 MB)
UNIT_RESOLUTION = {"MB": 0.01}
FLOAT_NOISE = 1e-6  # of a range's width: float32 values carry about 7 significant digits


def value_range(metric: str, unit: str = "", relative: bool = False, values=()) -> tuple[float, float] | None:
    """The range a value lies in (:data:`RANGES` by name, :data:`UNIT_RANGES` by unit; a difference of two such
    values, ``relative``, spans minus to plus the width); None where it is not known or where a value lies
    outside it (the name means something else there): such a value keeps its t-interval."""
    r = RANGES.get(metric, UNIT_RANGES.get(unit))
    if r is None:
        return None
    if relative:
        r = (r[0] - r[1], r[1] - r[0])
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return r if not v.size or (v.min() >= r[0] and v.max() <= r[1]) else None


def resolution_of(bounds: tuple[float, float] | None, unit: str = "") -> float:
    """The finest step a value is shown at (0: none known): the unit's (:data:`UNIT_RESOLUTION`), else float
    noise of the range's width."""
    if unit in UNIT_RESOLUTION:
        return UNIT_RESOLUTION[unit]
    return FLOAT_NOISE * (bounds[1] - bounds[0]) if bounds else 0.0


@dataclass(frozen=True)
class Cell(Interval):
    """An :class:`~hansbench.bench.report.stats.Interval` (mean, low, high, n, method) with the per-seed values
    it was computed from (``seeds[i]`` gave ``values[i]``), whether a clusterer fell back on any of them, the
    value's range (``bounds``, None: unknown) and display ``resolution``; a bimodal cell (``method`` "split", no
    interval) carries ``hits``: how many seeds reach the range's midpoint, which the gap straddles."""

    seeds: tuple = ()
    values: tuple[float, ...] = ()
    fallback: bool = False
    bounds: tuple[float, float] | None = None
    resolution: float = 0.0
    hits: Hits | None = None

    @property
    def split(self) -> bool:
        """Whether the seeds are bimodal: shown as their values and "k of n", not as an interval."""
        return self.hits is not None

    def by_seed(self) -> pd.Series:
        """One value per seed (a seed's values averaged), indexed by seed: what the paired tests pair."""
        return pd.Series(self.values, index=list(self.seeds), dtype=float).groupby(level=0).mean()


def _first(g: pd.DataFrame, column: str) -> str:
    return str(g[column].iloc[0]) if column in g and len(g) else ""


def finish(iv: Interval, bounds: tuple[float, float] | None, higher: bool = True, unit: str = "", **facts) -> Cell:
    """The cell of interval ``iv`` and its per-seed ``facts``: bimodal seeds (:func:`~.stats.is_split`) as
    "k of n reach the midpoint" without an interval, else the interval cut to ``bounds``."""
    res = resolution_of(bounds, unit)
    if is_split(facts.get("values", ()), bounds):
        k = hits(facts["values"], (bounds[0] + bounds[1]) / 2, higher)
        return Cell(iv.mean, n=iv.n, method="split", bounds=bounds, resolution=res, hits=k, **facts)
    iv = clipped(iv, bounds)
    return Cell(iv.mean, iv.low, iv.high, iv.n, iv.method, bounds=bounds, resolution=res, **facts)


def cell(g: pd.DataFrame) -> Cell:
    """The cell of one combination x value column from its per-seed rows (``value``, optional ``per_image``,
    ``seed``, ``fallback``, ``metric``, ``unit``, ``relative_to``, ``higher_is_better``): a bootstrap over seeds
    x images when every seed carries per-image values, else a t-interval over seeds; bounded and split by
    :func:`finish`."""
    ok = g[g["value"].notna()]
    facts = dict(seeds=tuple(ok["seed"].tolist()) if "seed" in ok else (), values=tuple(ok["value"].tolist()),
                 fallback=bool(g["fallback"].any()) if "fallback" in g else False)
    if ok.empty:
        return Cell(math.nan, n=0, **facts)
    unit = _first(ok, "unit")
    bounds = value_range(_first(ok, "metric"), unit, bool(_first(ok, "relative_to")), facts["values"])
    higher = bool(ok["higher_is_better"].iloc[0]) if "higher_is_better" in ok else True
    images = ok["per_image"].tolist() if "per_image" in ok else [None]  # the frame's column (per_seed)
    if all(isinstance(x, list) and x for x in images):
        iv = bootstrap_interval([np.asarray(x, dtype=float) for x in images], CONFIDENCE, BOOT_N, BOOT_SEED)
        iv = Interval(float(ok["value"].mean()), iv.low, iv.high, iv.n, iv.method)
    else:
        iv = t_interval(ok["value"].to_numpy(dtype=float))
    return finish(iv, bounds, higher, unit, **facts)


def seed_cell(s: pd.Series, bounds: tuple[float, float] | None = None, higher: bool = True) -> Cell:
    """The t-interval cell of values by seed (a Series indexed by seed), inside ``bounds`` (bimodal: split)."""
    ok = s[np.isfinite(s.to_numpy(dtype=float))]
    facts = dict(seeds=tuple(ok.index.tolist()), values=tuple(float(v) for v in ok))
    iv = t_interval(ok.to_numpy(dtype=float))
    if bounds is not None and not all(bounds[0] <= v <= bounds[1] for v in facts["values"]):
        bounds = None  # a value outside the declared range: the name means something else here
    return finish(iv, bounds, higher, **facts)


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
