"""The detection verdict that opens the page, per scenario and model kind: *does the detector separate the
poison?* by a label-free value no flagging rule decides (:func:`separability_groups`: the ARI of a partition, the
AUROC of a score or set detector's own score; a plugin's first label-free value where neither is there), with
the best explanation detector and the best baseline, the paired tests of the best against every other
explanation detector and against the baseline (Holm-corrected together), the detectors not told apart from the
best, the margin over the reference with the same clusterer, the cells on the label-flip and clean controls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from hansbench.bench.report import cells as cell_text
from hansbench.bench.report.leaderboard import Presentation
from hansbench.bench.report.results import Cell, Comparison, compare, correct, oriented, seed_cell, value_range
from hansbench.bench.report.verdicts.common import input_kinds
from hansbench.bench.report.verdicts.detection import detector_rows
from hansbench.bench.report.verdicts.protocol import SEPARABILITY, detects_by

Detector = tuple[str, str]  # (explainer or input kind, clusterer)


@dataclass(frozen=True)
class DetectionVerdict:
    """One scenario and model kind's detection verdict by ``value``: the best explanation detector and the best
    baseline with their cells (by seed), the paired tests of the best against every other explanation detector
    (``ties``) and against the baseline, Holm-corrected together; the detectors not told apart from the best
    (``tied``, the best first); the paired difference to the reference with the same clusterer (``margin``); the
    best's and the baseline's cells on the label-flip and the clean controls; the paired differences best - other
    with their intervals (``differences``); why no verdict can be given (``withheld``, "" when one can)."""

    value: str
    n: int  # the most seeds any detector has
    best: Detector | None = None
    baseline: Detector | None = None
    cells: dict[Detector, Cell] = field(default_factory=dict)
    ties: tuple[Comparison, ...] = ()
    versus_baseline: Comparison | None = None
    tied: tuple[Detector, ...] = ()
    margin: Cell | None = None
    reference: Detector | None = None
    label_flip: dict[Detector, Cell] = field(default_factory=dict)
    clean: dict[Detector, Cell] = field(default_factory=dict)
    differences: dict[Detector, Cell] = field(default_factory=dict)
    withheld: str = ""

    @property
    def ahead(self) -> bool:
        """Whether the best explanation detector's mean is ahead of the best baseline's."""
        v = self.versus_baseline
        return v is not None and oriented(self.cells[self.best].mean, v.higher) < \
            oriented(self.cells[self.baseline].mean, v.higher)


def _by_seed(d: pd.DataFrame) -> dict[Detector, pd.Series]:
    return {k: g.groupby("seed")["value"].mean() for k, g in d.groupby(["explainer", "clusterer"], sort=False)}


def _control_cells(seeded: pd.DataFrame, scenario: str | None, model: str, families: list[str], value: str,
                   keys: tuple) -> dict[Detector, Cell]:
    """The cells (by seed) of ``keys`` on a control scenario ({} without one), inside the value's range."""
    if scenario is None or not value:
        return {}
    d = detector_rows(seeded, scenario, model, families, value)
    bounds = value_range(value, str(d.unit.iloc[0]) if len(d) else "")
    by = _by_seed(d)
    return {k: seed_cell(by[k], bounds, bool(d.higher_is_better.iloc[0])) for k in (*keys, *by) if k in by}


def _paired_cell(a: pd.Series, b: pd.Series, bounds, higher: bool) -> Cell:
    """The cell of a - b on their common seeds (a difference of two values of range r spans -|r| to |r|)."""
    idx = a.index.intersection(b.index)
    return seed_cell(a.loc[idx] - b.loc[idx], bounds, higher)


def separability_groups(seeded: pd.DataFrame, scenario: str, model: str, families: list[str],
                        label_free: tuple[str, ...]) -> list[tuple[str, frozenset[Detector]]]:
    """(value, the detectors it ranks) for the first question: each detector by the first value of
    :data:`~.protocol.SEPARABILITY` for its ``detects_by`` that it has (ARI for a partition, AUROC for a score or
    set detector), else by the first declared label-free value it has; values in the order first used. Only the
    split's rows (rule ""): which half a rule flags never enters."""
    pool = [v for v in dict.fromkeys([*SEPARABILITY["clusters"], *SEPARABILITY["scores"], *label_free])]
    have: dict[str, set[Detector]] = {}
    for v in pool:
        d = detector_rows(seeded, scenario, model, families, v)
        have[v] = set(zip(d[d.value.notna()].explainer, d[d.value.notna()].clusterer))
    groups: dict[str, set[Detector]] = {}
    for k in dict.fromkeys(x for v in pool for x in sorted(have[v])):
        prefs = [*SEPARABILITY.get(detects_by(k[1]), ()), *label_free]
        v = next((v for v in prefs if k in have.get(v, ())), None)
        if v is not None:
            groups.setdefault(v, set()).add(k)
    order = [v for v in pool if v in groups]
    return [(v, frozenset(groups[v])) for v in order]


def detection_verdict(seeded: pd.DataFrame, scenario: str, model: str, ps: list[Presentation], value: str,
                      controls: dict[str, str], control_value: str,
                      only: frozenset[Detector] | None = None) -> DetectionVerdict:
    """The verdict of one model kind (see :class:`DetectionVerdict`); ``only``: the detectors it compares (all
    that have ``value`` where None)."""
    kinds, _ = input_kinds()
    refs = {p.reference_explainer for p in ps if p.reference_explainer}
    fams = [p.family for p in ps]
    d = detector_rows(seeded, scenario, model, fams, value) if value else seeded.iloc[:0]
    if only is not None:
        d = d[pd.Series([k in only for k in zip(d.explainer, d.clusterer)], index=d.index, dtype=bool)]
    by = _by_seed(d[d.value.notna()])
    if not by:
        return DetectionVerdict(value, 0)
    higher = bool(d[d.value.notna()].higher_is_better.iloc[0])
    unit = str(d.unit.iloc[0])
    bounds, diff_bounds = value_range(value, unit), value_range(value, unit, relative=True)
    explained = sorted((k for k in by if k[0] not in kinds and k[0] not in refs),
                       key=lambda k: oriented(by[k].mean(), higher))
    baselines = sorted((k for k in by if k[0] in kinds), key=lambda k: oriented(by[k].mean(), higher))
    best = explained[0] if explained else None
    base = baselines[0] if baselines else None
    comps = [compare(by[best], by[k], who=best, column=value, against=" × ".join(k), mark="tie", higher=higher)
             for k in explained[1:]]
    if best and base:
        comps.append(compare(by[best], by[base], who=best, column=value, against=" × ".join(base), mark="baseline",
                             higher=higher))
    comps = correct(comps)
    ties = comps[:len(explained[1:])]
    tied = []
    if best:  # the ties come first in comps: zip stops before the baseline's test
        tied = [best] + [k for k, c in zip(explained[1:], comps) if not c.significant]
    ref = next(((r, best[1]) for r in refs if (r, best[1]) in by), None) if best else None
    margin = _paired_cell(by[best], by[ref], diff_bounds, higher) if ref else None
    keys = tuple(k for k in (best, base) if k)
    diffs = {k: _paired_cell(by[best], by[k], diff_bounds, higher) for k in (*explained[1:], base) if best and k}
    return DetectionVerdict(
        value, max((len(s) for s in by.values()), default=0), best, base,
        {k: seed_cell(s, bounds, higher) for k, s in by.items()},
        ties, comps[-1] if best and base else None, tuple(tied), margin, ref,
        _control_cells(seeded, controls.get("label-flip"), model, fams, value, keys),
        _control_cells(seeded, controls.get("clean"), model, fams, control_value, keys), diffs,
        cell_text.withheld(max((c.n for c in comps), default=0), len(comps)))

