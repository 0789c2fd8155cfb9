"""The verdicts of the detection matrix (PRP Table II, one table per scenario and model) and the rows and values
every detection view reads.

The matrix's rows are detectors (explainer or input kind x clusterer) x flagging rule (rule "" for the values of
the split itself, which no rule decides: ARI, AUROC, the label-matched ACC/F1), its columns one value each; the
trivial floors and the non-explanation baselines are rows of every table. The paired tests (each explanation
detector against the reference and the raw-input control with the same clusterer, the best against the
runner-up, Holm-corrected) are on the first value of the split (rule ""), never on a flag value: which half of a
symmetric split a rule flagged says nothing about whether the detector separated the poison."""

from __future__ import annotations

import math

import pandas as pd

from hansbench.bench.report import cells
from hansbench.bench.report.leaderboard import Presentation
from hansbench.bench.report.results import Column, Comparison, Grid, cells_by, compare, correct, oriented, seeds_of
from hansbench.bench.report.verdicts.common import input_kinds
from hansbench.bench.report.verdicts.protocol import FLAG_VALUES, kind_of

KIND_ORDER = ("explanation", "baseline", "floor", "reference")


def value_groups(ps: list[Presentation]) -> list[tuple[str, tuple[str, ...]]]:
    """(label, values) of the detection values: label-free and label-matched where declared, else the
    headline values."""
    free = tuple(dict.fromkeys(v for p in ps for v in p.label_free))
    matched = tuple(dict.fromkeys(v for p in ps for v in p.label_matched))
    if free or matched:
        return [(lab, vals) for lab, vals in (("label-free", free), ("label-matched, PRP Table II", matched)) if vals]
    return [("", tuple(dict.fromkeys(v for p in ps for v in p.headline)))]


def matrix_values(ps: list[Presentation], g: pd.DataFrame) -> list[str]:
    """The matrix's value columns: the declared values (label-free, label-matched, control, headline; every value
    where a family declares none) and the flag values, those with a finite value in ``g``; the split's values
    (rule "") first, then the rules'."""
    declared = [v for p in ps for v in (*p.label_free, *p.label_matched, *p.control, *p.headline)]
    if not declared:
        declared = list(dict.fromkeys(g.metric))
    have = g[g.value.notna()]
    present = [v for v in dict.fromkeys([*declared, *FLAG_VALUES]) if v in set(have.metric)]
    of_split = set(have[have.rule == ""].metric)
    return [v for v in present if v in of_split] + [v for v in present if v not in of_split]


def _comparisons(grid_cells: dict, first: Column, refs: set[str], kinds: tuple[set[str], set[str]]) -> list[Comparison]:
    """Every explanation detector vs the reference and the raw-input control with its clusterer, on the first
    value of the split (rule ""); the best detector vs the runner-up."""
    by = {k[:2]: x for k, x in grid_cells.items() if k[2] == "" and k[3] == first.name}
    every, raw = kinds
    comps = []
    for (e, c), x in by.items():
        if e in refs or e in every:
            continue
        for base, mark in [((r, c), cells.SIG_MARK) for r in refs] + [((k, c), cells.CONTROL_MARK) for k in raw]:
            if base in by:
                comps.append(compare(x, by[base], who=(e, c, ""), column=first.name, against=base[0], mark=mark,
                                     higher=first.higher))
    ranked = sorted((k for k, x in by.items() if math.isfinite(x.mean)), key=lambda k: oriented(by[k].mean,
                                                                                                  first.higher))
    if len(ranked) >= 2:
        comps.append(compare(by[ranked[0]], by[ranked[1]], who=(*ranked[0], ""), column=first.name,
                             against=" × ".join(ranked[1]), mark=cells.BEST_MARK, higher=first.higher))
    return comps


def _row_order(g: pd.DataFrame, refs: set[str], inputs: set[str]) -> tuple[tuple[str, str, str], ...]:
    """Rows (explainer, clusterer, rule): explanation detectors, baselines, floors, the reference; each detector's
    split (rule "") first, then its rules in the order they appear."""
    detectors = list(dict.fromkeys(zip(g.explainer, g.clusterer)))
    detectors.sort(key=lambda k: KIND_ORDER.index(kind_of(*k, inputs, refs)))
    rules = {k: sorted(set(sub.rule), key=lambda r: (r != "", list(dict.fromkeys(g.rule)).index(r)))
             for k, sub in g.groupby(["explainer", "clusterer"], sort=False)}
    return tuple((e, c, r) for e, c in detectors for r in rules[(e, c)])


def detection_grid(d: pd.DataFrame, ps: list[Presentation], tested: bool) -> Grid | None:
    """One scenario and model's detection matrix: rows (explainer, clusterer, rule) (:func:`_row_order`), one
    column per value (:func:`matrix_values`), cells by (explainer, clusterer, rule, value); ``extra["kind"]``
    each detector's kind (explanation, baseline, floor, reference). ``tested``: whether to run the paired tests
    (a model whose poisoning took)."""
    kinds = input_kinds()
    refs = {p.reference_explainer for p in ps if p.reference_explainer}
    g = d[d.clusterer != ""]
    values = matrix_values(ps, g) if not g.empty else []
    g = g[g.metric.isin(values)]
    if g.empty:
        return None
    meta = g.groupby("metric", sort=False)[["unit", "higher_is_better", "directed"]].first()
    columns = tuple(Column(v, v, str(meta.loc[v, "unit"]), bool(meta.loc[v, "higher_is_better"]),
                           bool(meta.loc[v, "directed"])) for v in values)
    grid_cells = cells_by(g, ["explainer", "clusterer", "rule", "metric"])
    split_cols = [c for c in columns if ((g.metric == c.name) & (g.rule == "")).any()]
    head_col = split_cols[0] if split_cols else None
    comps = _comparisons(grid_cells, head_col, refs, kinds) if tested and head_col and head_col.directed else []
    rows = _row_order(g, refs, kinds[0])
    return Grid(rows, columns, grid_cells, seeds_of(g), correct(comps),
                extra={"refs": refs, "kinds": kinds[0], "fallback": bool(g.fallback.any()),
                       "kind": {(e, c): kind_of(e, c, kinds[0], refs) for e, c, _ in rows},
                       "matched": {v for p in ps for v in p.label_matched}, "tested_on": head_col.name if head_col
                       else ""})


def detection_values(pres: dict[str, Presentation]) -> tuple[list[Presentation], tuple[str, ...], str, tuple[str, ...]]:
    """(detection presentations, the ranking values in order of preference, their group label, the clean-control
    values), the last three of the split's own values (rule ""), the flag values left out."""
    ps = [p for p in pres.values() if p.shape == "detection"]
    groups = value_groups(ps)
    label, values = groups[0] if groups else ("", ())
    control = tuple(dict.fromkeys(v for p in ps for v in p.control))
    # the split's values only: the flag values are a rule's (:mod:`.flagging`), never the ranking's
    return ps, tuple(v for v in values if v not in FLAG_VALUES), label, tuple(v for v in control if v not in FLAG_VALUES)


def first_present(seeded: pd.DataFrame, scenario: str, model: str, families: list[str], values: tuple[str, ...],
                  rule: str | None = "") -> str:
    """The first of ``values`` that this scenario and model have (on rows of ``rule``; None: any rule); the
    first of them when none has any."""
    return next((v for v in values if detector_rows(seeded, scenario, model, families, v, rule).value.notna().any()),
                values[0] if values else "")


def detector_rows(seeded: pd.DataFrame, scenario: str, model: str, families: list[str], metric: str,
                  rule: str | None = "") -> pd.DataFrame:
    """The detectors' rows (a clusterer set) of one scenario, model kind and value of the ``families``, of the
    flagging ``rule`` ("" the split's own values, which no rule decides; None: every rule)."""
    d = seeded[(seeded.scenario == scenario) & (seeded.model == model) & seeded.family.isin(families)
               & (seeded.metric == metric) & (seeded.clusterer != "")]
    if rule is not None and "rule" in d:
        d = d[d.rule == rule]
    return d
