"""The verdicts of the detection tables (PRP Table II) and the rows and values every detection view reads: a
value group's cells by (explainer, clusterer, value), the paired tests of each explanation detector against the
reference and the raw-input control with the same clusterer and of the best against the runner-up,
Holm-corrected; which values rank the detectors and which rows are a detector's."""

from __future__ import annotations

import math

import pandas as pd

from hansbench.bench.report import cells
from hansbench.bench.report.leaderboard import Presentation
from hansbench.bench.report.results import Column, Comparison, Grid, cells_by, compare, correct, oriented, seeds_of
from hansbench.bench.report.verdicts.common import input_kinds


def value_groups(ps: list[Presentation]) -> list[tuple[str, tuple[str, ...]]]:
    """(label, values) of a detection table's parts: label-free and label-matched where declared, else the
    headline values."""
    free = tuple(dict.fromkeys(v for p in ps for v in p.label_free))
    matched = tuple(dict.fromkeys(v for p in ps for v in p.label_matched))
    if free or matched:
        return [(lab, vals) for lab, vals in (("label-free", free), ("label-matched, PRP Table II", matched)) if vals]
    return [("", tuple(dict.fromkeys(v for p in ps for v in p.headline)))]


def _comparisons(grid_cells: dict, first: Column, refs: set[str], kinds: tuple[set[str], set[str]]) -> list[Comparison]:
    """Every explanation detector vs the reference and the raw-input control with its clusterer, on the first
    value; the best detector vs the runner-up."""
    by = {k[:2]: x for k, x in grid_cells.items() if k[2] == first.name}
    every, raw = kinds
    comps = []
    for (e, c), x in by.items():
        if e in refs or e in every:
            continue
        for base, mark in [((r, c), cells.SIG_MARK) for r in refs] + [((k, c), cells.CONTROL_MARK) for k in raw]:
            if base in by:
                comps.append(compare(x, by[base], who=(e, c), column=first.name, against=base[0], mark=mark,
                                     higher=first.higher))
    ranked = sorted((k for k, x in by.items() if math.isfinite(x.mean)), key=lambda k: oriented(by[k].mean,
                                                                                                  first.higher))
    if len(ranked) >= 2:
        comps.append(compare(by[ranked[0]], by[ranked[1]], who=ranked[0], column=first.name,
                             against=" × ".join(ranked[1]), mark=cells.BEST_MARK, higher=first.higher))
    return comps


def detection_grid(d: pd.DataFrame, ps: list[Presentation], values: tuple[str, ...], tested: bool) -> Grid | None:
    """One value group's results: rows (explainer,) with explanation detectors first, then the non-explanation
    inputs, then the reference; ``columns`` the group's values, the clusterers in ``extra["clusterers"]``; cells
    by (explainer, clusterer, value). ``tested``: whether to run the paired tests (a directed first value and
    a model whose poisoning took)."""
    kinds = input_kinds()
    refs = {p.reference_explainer for p in ps if p.reference_explainer}
    g = d[d.clusterer != ""]
    g = g[g.metric.isin(values)] if values else g
    g = g[g.groupby("metric").value.transform(lambda v: v.notna().any())]
    if g.empty:
        return None
    present = [v for v in (values or dict.fromkeys(g.metric)) if v in set(g.metric)]
    meta = g.groupby("metric", sort=False)[["unit", "higher_is_better", "directed"]].first()
    columns = tuple(Column(v, v, str(meta.loc[v, "unit"]), bool(meta.loc[v, "higher_is_better"]),
                           bool(meta.loc[v, "directed"])) for v in present)
    grid_cells = cells_by(g, ["explainer", "clusterer", "metric"])
    explainers = list(dict.fromkeys(g.explainer))
    explainers = ([e for e in explainers if e not in kinds[0] and e not in refs]
                  + [e for e in explainers if e in kinds[0]] + [e for e in explainers if e in refs])
    first = g[g.metric == present[0]].iloc[0]  # the first value's direction as its first row has it
    head_col = Column(present[0], present[0], "", bool(first["higher_is_better"]), bool(first["directed"]))
    comps = _comparisons(grid_cells, head_col, refs, kinds) if tested and head_col.directed else []
    return Grid(tuple((e,) for e in explainers), columns, grid_cells, seeds_of(g), correct(comps),
                extra={"clusterers": tuple(dict.fromkeys(g.clusterer)), "refs": refs, "kinds": kinds[0],
                       "fallback": bool(g.fallback.any())})


def detection_values(pres: dict[str, Presentation]) -> tuple[list[Presentation], tuple[str, ...], str, tuple[str, ...]]:
    """(detection presentations, the ranking values in order of preference, their group label, the clean-control
    values)."""
    ps = [p for p in pres.values() if p.shape == "detection"]
    groups = value_groups(ps)
    label, values = groups[0] if groups else ("", ())
    control = tuple(dict.fromkeys(v for p in ps for v in p.control))
    return ps, values, label, control


def first_present(seeded: pd.DataFrame, scenario: str, model: str, families: list[str], values: tuple[str, ...]) -> str:
    """The first of the headline group's values that this scenario and model have (e.g. ARI where no row has the
    flagged cluster's F1); the group's first when none has any."""
    return next((v for v in values if detector_rows(seeded, scenario, model, families, v).value.notna().any()),
                values[0] if values else "")


def detector_rows(seeded: pd.DataFrame, scenario: str, model: str, families: list[str], metric: str) -> pd.DataFrame:
    """The detectors' rows (a clusterer set) of one scenario, model kind and value of the ``families``."""
    d = seeded[(seeded.scenario == scenario) & (seeded.model == model) & seeded.family.isin(families)
               & (seeded.metric == metric) & (seeded.clusterer != "")]
    return d
