"""What the leaderboard shows for a sweep: per axis (:class:`hansbench.bench.suite.sweep.SweepAxis`, one swept field
with the sweep's other fields held fixed) a figure of reliance and label-free detection against the swept value,
and a breakdown table: the smallest swept value at which each detector reaches the axis' level.

A sweep's scenarios are ordinary scenarios with their own sections; this module reads across them. Which values
are drawn comes from the metrics' metadata, as everywhere on the leaderboard: the reliance family's ``gates``
(did the poisoning take: the hollow markers and the points the breakdown skips), the detection family's first
label-free value present (the summary's headline, :func:`hansbench.bench.report.verdicts.detection.first_present`)
and, where rows have it, the threshold-free :data:`SCORE_VALUE`. Its section of the page is :func:`sweep_page`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hansbench.bench.report import cells, run_facts
from hansbench.bench.report.csv_files import csv_name, tidy_csv
from hansbench.bench.report.document import Block, FigureBlock, Section, TableBlock
from hansbench.bench.report.escape import slug
from hansbench.bench.report.figures.base import Figure
from hansbench.bench.report.figures.sweep import SCORE_VALUE, sweep_figure
from hansbench.bench.report.leaderboard import (
    SECTIONS,
    Presentation,
    Table,
    gate_notes,
    seeded_rows,
)
from hansbench.bench.report.stats import Interval, format_number
from hansbench.bench.report.verdicts.common import input_kinds
from hansbench.bench.suite.sweep import value_text

NEVER = "never in the range"


# -- the breakdown rule (pure) -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reached:
    """Where a detector reaches the level along an axis: ``at`` the indices of the points (numeric axis: the first
    only), ``breakdown`` the cell (the value(s), or :data:`NEVER`), ``holds`` whether every larger point stays at
    the level ("yes", "no: <mean> at <x>"; "" on a categorical axis or when never reached)."""

    at: tuple[int, ...]
    breakdown: str
    holds: str


def breakdown(points: list[tuple[Any, float, bool]], level: float, numeric: bool = True) -> Reached:
    """The breakdown of one detector along one axis.

    ``points``: (swept value, mean headline over seeds, the poisoning took on every seed) in the axis' order.
    Only points where the poisoning took and the mean is a number count. Numeric axis: the first of them whose
    mean is >= ``level`` ("holds above": every later one also is, else the first that is not); categorical: every
    one that is. None: :data:`NEVER`.
    """
    ok = [i for i, (_, m, took) in enumerate(points) if took and m is not None and math.isfinite(m)]
    hit = [i for i in ok if points[i][1] >= level]
    if not hit:
        return Reached((), NEVER, "")
    if not numeric:
        return Reached(tuple(hit), ", ".join(value_text(points[i][0]) for i in hit), "")
    first = hit[0]
    drop = next((i for i in ok if i > first and points[i][1] < level), None)
    holds = "yes" if drop is None else f"no: {format_number(points[drop][1])} at {value_text(points[drop][0])}"
    return Reached((first,), value_text(points[first][0]), holds)


# -- reading the rows along an axis --------------------------------------------------------------------------------
@dataclass
class AxisData:
    """One axis' per-seed rows and what is read from them: the model kinds, per model the points' gate failures,
    the detection value(s) drawn, the reliance gate values."""

    axis: Any
    seeded: pd.DataFrame
    pres: dict[str, Presentation]
    scenarios: list[str]
    models: list[str]
    failed: dict[tuple[str, str], list[str]]  # (scenario, model) -> gate notes ("poisoning did not take (seed 1)")
    headline: dict[str, str]  # model -> the label-free value drawn in (b) and used by the breakdown
    label: str  # the headline's group label ("label-free" where declared)
    score: dict[str, str]  # model -> SCORE_VALUE where any of its rows has it
    gates: dict[str, list[tuple[str, str, bool]]]  # model -> [(family, gate value, higher is better)] with numbers
    effect: dict[str, tuple[str, str, str]]  # model -> (family, value, unit): the first declared effect with rows

    def took(self, scenario: str, model: str) -> bool:
        return (scenario, model) not in self.failed

    def detection(self, model: str, value: str) -> pd.DataFrame:
        families = [p.family for p in self.pres.values() if p.shape == "detection"]
        d = self.seeded
        d = d[(d.model == model) & d.family.isin(families) & (d.metric == value) & (d.clusterer != "")
              & d.value.notna()]
        return d[d.rule == ""] if "rule" in d else d  # the split's own value: no flagging rule decides it


def _first_present(seeded: pd.DataFrame, model: str, families: list[str], values: tuple[str, ...]) -> str:
    """The summary's rule (first value of the group that has rows) over all the axis' scenarios at once."""
    from hansbench.bench.report.verdicts.detection import first_present

    return first_present(seeded.assign(scenario="axis"), "axis", model, families, values)


def axis_data(rows: pd.DataFrame, axis: Any) -> AxisData | None:
    """The axis' rows (normalised, per seed); None when none of its scenarios has rows yet."""
    from hansbench.bench.report.verdicts.detection import detection_values

    scenarios = [str(name) for _, name in axis.points]
    rows = rows[rows.scenario.astype(str).isin(scenarios)]
    if rows.empty:
        return None
    _, pres, seeded = seeded_rows(rows)
    models = list(dict.fromkeys(seeded.model))
    failed: dict[tuple[str, str], list[str]] = {}
    for sc in scenarios:
        s = seeded[seeded.scenario == sc]
        for m, notes in gate_notes(s, {f: pres[f] for f in dict.fromkeys(s.family)}).items():
            failed[(sc, m)] = notes
    ps, values, label, _ = detection_values(pres)
    fams = [p.family for p in ps]
    headline, score, gates = {}, {}, {}
    declared = {x for p in ps for x in (*p.label_free, *p.headline)}
    for m in models:
        dm = seeded[seeded.model == m]
        v = _first_present(dm, m, fams, values) if values else ""
        if v and dm[(dm.metric == v) & dm.family.isin(fams) & (dm.clusterer != "")].value.notna().any():
            headline[m] = v
        if SCORE_VALUE in declared and SCORE_VALUE != headline.get(m) and \
                dm[(dm.metric == SCORE_VALUE) & dm.family.isin(fams)].value.notna().any():
            score[m] = SCORE_VALUE
        gates[m] = [(f, g, bool(dm[(dm.family == f) & (dm.metric == g)].higher_is_better.iloc[0]))
                    for f, p in pres.items() for g in p.gates
                    if dm[(dm.family == f) & (dm.metric == g)].value.notna().any()]
    effect = {}
    for m in models:
        dm = seeded[(seeded.model == m) & seeded.value.notna()]
        for f, p in pres.items():
            v = next((v for v in p.effect if ((dm.family == f) & (dm.metric == v)).any()), "")
            if v:
                effect[m] = (f, v, str(dm[(dm.family == f) & (dm.metric == v)].unit.iloc[0]))
                break
    return AxisData(axis, seeded, pres, scenarios, models, failed, headline, label, score, gates, effect)


# -- the breakdown table ------------------------------------------------------------------------------------------
def _at_points(axis: Any, res: Reached, cell) -> str:
    """The cell(s) at the point(s) the level is reached ("x: cell; ..." on a categorical axis), "–" where none."""
    return "; ".join((f"{value_text(axis.points[i][0])}: " if not axis.numeric else "") + cell(axis.points[i][1])
                     for i in res.at) or "–"


def breakdown_table(data: AxisData, dev_seeds: list[int] | None = None) -> Table | None:
    """Per model kind x detector: where its mean label-free headline reaches the axis' level (:func:`breakdown`)."""
    axis = data.axis
    kinds, _ = input_kinds()
    field = axis.field
    values = list(dict.fromkeys(data.headline.values()))
    head = values[0] if len(values) == 1 else "headline"
    effects = list(dict.fromkeys(v for _, v, _ in data.effect.values()))
    gate_name = "/".join(effects) or next((g[0][1] for g in data.gates.values() if g), "")
    col_b, col_v, col_h = f"breakdown {field}", f"{head} there", "holds above"
    col_r = f"reliance there ({gate_name})" if gate_name else "reliance there"
    found, ns, seeds = [], [], set()
    for m in data.models:
        value = data.headline.get(m)
        if not value:
            continue
        d = data.detection(m, value)
        gate = [data.effect[m]] if m in data.effect else data.gates.get(m, [])[:1]
        rel: dict[str, Interval] = {}
        if gate:
            f, g, _ = gate[0]
            r = data.seeded[(data.seeded.model == m) & (data.seeded.family == f) & (data.seeded.metric == g)]
            rel = {sc: cells.interval(x) for sc, x in r.groupby("scenario")}
        per_model = []
        for (e, c), g in d.groupby(["explainer", "clusterer"], sort=False):
            iv = {sc: cells.interval(x) for sc, x in g.groupby("scenario", sort=False)}
            ns += [x.n for x in iv.values()]
            seeds |= {int(s) for s in g.seed}
            points = [(v, iv[sc].mean if sc in iv else math.nan, data.took(sc, m)) for v, sc in axis.points]
            per_model.append((m, value, d, gate, rel, e, c, breakdown(points, axis.level, axis.numeric), iv))
        per_model.sort(key=lambda t: (t[7].at[0] if t[7].at else len(axis.points), t[5] in kinds))
        found += per_model
    n_max = max(ns, default=0)
    disp, sort, tidy = [], [], []
    for m, value, d, gate, rel, e, c, res, iv in found:
        base = e in kinds
        method = f"{e} × {c}" + (" (baseline)" if base else "")
        there = [axis.points[i][1] for i in res.at]
        disp.append({"model": m, "method": method, col_b: res.breakdown,
                     col_v: _at_points(axis, res, lambda sc, iv=iv: cells.text(iv[sc], n_max)),
                     col_r: _at_points(axis, res, lambda sc, rel=rel: cells.text(rel[sc], n_max) if sc in rel else "–"),
                     **({col_h: res.holds or "–"} if axis.numeric else {})})
        sort.append({"model": m, "method": method,
                     col_b: float(axis.points[res.at[0]][0]) if res.at and axis.numeric else np.nan,
                     col_v: iv[there[0]].mean if there else np.nan,
                     col_r: rel[there[0]].mean if there and there[0] in rel else np.nan,
                     **({col_h: np.nan} if axis.numeric else {})})
        for i, sc in (zip(res.at, there) if there else [(None, None)]):
            x = iv[sc] if sc else Interval(math.nan)
            tidy.append(cells.tidy(x, d.unit.iloc[0], bool(d.higher_is_better.iloc[0]), sweep=axis.sweep,
                                   field=field, fixed="; ".join(f"{k} = {value_text(v)}" for k, v in axis.fixed),
                                   level=axis.level, model=m, explainer=e, clusterer=c, baseline=base,
                                   metric=value, breakdown=axis.points[i][0] if sc else None, reached=bool(sc),
                                   scenario_there=sc or "", reliance_value=gate[0][1] if gate else "",
                                   reliance_there=rel[sc].mean if sc in rel else math.nan,
                                   holds_above=res.holds if axis.numeric else ""))
    if not disp:
        return None
    how = cells.interval_note(ns, sorted(seeds), dev_seeds or [])
    rule = (f"smallest swept {field} at which the detector's mean {head} over seeds reaches the level "
            f"{axis.level:g} (>=)" if axis.numeric else
            f"every {field} at which the detector's mean {head} over seeds reaches the level {axis.level:g} (>=)")
    skipped = [f"{sc} ({m}: {'; '.join(n)})" for (sc, m), n in data.failed.items()]
    note = (f"Breakdown: the {rule}, counting only points where the poisoning took on every seed (no reliance gate "
            f"failed{'; left out: ' + ', '.join(skipped) if skipped else ''}); '{NEVER}': no such point reaches "
            f"it. '{col_v}': the cell at that point; '{col_r}': how strongly the poisoning took there, the mean "
            f"over seeds of {gate_name or '(none: no reliance rows)'}"
            + ("; 'holds above': yes when every larger such point stays at the level, else the first that does not"
               if axis.numeric else "") + f". {how}")
    title = f"Breakdown: {axis.title}"
    return Table(title, pd.DataFrame(disp), note, "breakdown", "detection", "", pd.DataFrame(sort),
                 pd.DataFrame(tidy), f"{title}. {how}", SECTIONS["detection"])


# -- into the page --------------------------------------------------------------------------------------------------
@dataclass
class SweepSection:
    """One axis on the page: its figure, its breakdown table and the table's CSV (a file name in ``out``)."""

    axis: Any
    figures: list[Figure]
    table: Table | None
    csv: str = ""


def sweep_sections(rows: pd.DataFrame, config: dict | None, out: Path, axes: list | None = None) -> list[SweepSection]:
    """Per axis with rows: its figure (written into ``out``), breakdown table and tidy CSV."""
    axes = run_facts.sweep_axes_of(config) if axes is None else axes
    if not axes or rows.empty:
        return []
    out = Path(out)
    found = []
    for axis in axes:
        data = axis_data(rows, axis)
        if data is None:
            continue
        t = breakdown_table(data, run_facts.dev_seeds(config))
        csv = ""
        if t is not None and t.tidy is not None and not t.tidy.empty:
            csv = csv_name(axis.stem, "breakdown")
            lead = ["sweep", "field", "fixed", "level", "model", "explainer", "clusterer", "baseline", "metric",
                    "reached", "breakdown"]
            tidy_csv(t.tidy[lead + [c for c in t.tidy.columns if c not in lead]], out / csv)
        found.append(SweepSection(axis, [sweep_figure(data, out)], t, csv))
    return found


def sweep_page(rows: pd.DataFrame, config: dict | None, out: Path) -> list[Section]:
    """The page's "Sweeps" section (none without sweeps): per axis its figure and its breakdown table."""
    axes = []
    for s in sweep_sections(rows, config, out):
        blocks: list[Block] = [FigureBlock(f.file, f.caption, f.vector, drawn=True) for f in s.figures]
        if s.table is not None:
            blocks.append(TableBlock(s.table, f"t-{slug(s.axis.stem)}-breakdown", s.table.caption, csv=s.csv))
        axes.append(Section(s.axis.title, 3, blocks, anchor=slug(s.axis.stem)))
    return [Section("Sweeps", 2, axes, anchor="sweeps", new_page=True)] if axes else []
