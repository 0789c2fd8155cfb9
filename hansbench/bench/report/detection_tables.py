"""Detection tables (PRP Table II): explainer (or a non-explanation input, or the reference) x clusterer, each cell
the values of one group (label-free, label-matched) joined by ' / '.

:func:`detection_grid` computes the table's results (cells, the paired tests against the reference and the
raw-input control with the same clusterer and of the best against the runner-up, Holm-corrected);
:func:`detection_tables` renders them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hansbench.bench.report import cells
from hansbench.bench.report.leaderboard import FALLBACK_MARK, SECTIONS, Presentation, Table
from hansbench.bench.report.results import Column, Comparison, Grid, cells_by, compare, correct, oriented, seeds_of
from hansbench.bench.report.tables import (
    Context,
    fallback_note,
    gate_extra,
    gate_suffix,
    head,
    input_kinds,
    make_table,
    meanings,
    title_of,
)

NAMES = {cells.SIG_MARK: "the reference explainer with the same clusterer",
         cells.CONTROL_MARK: "the raw-input control with the same clusterer",
         cells.BEST_MARK: "the runner-up of the table"}


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


def _frames(grid: Grid, model: str, label: str, suffix: str, ctx: Context) -> tuple[list, list, list]:
    """The grid written out: per explainer, per clusterer the group's values joined by ' / ' with the first
    value's marks, the gate and fallback marks; the first value's mean to sort by; a tidy record per value."""
    marks = cells.marks_of(list(grid.comparisons))
    first, n_max = grid.columns[0].name, grid.n_max
    kinds, refs = grid.extra["kinds"], grid.extra["refs"]
    disp, sort, tidy = [], [], []
    for (e,) in grid.rows:
        lab = ctx.label(e, model) + (" (no explanation)" if e in kinds else " (reference)" if e in refs else "")
        drow, srow = {"explainer": lab}, {"explainer": lab}
        for c in grid.extra["clusterers"]:
            parts, fb, any_shown = [], False, False
            for col in grid.columns:
                x = grid.cells.get((e, c, col.name))
                if x is None:
                    parts += ["–"] if parts else []
                    continue
                parts.append(cells.text(x, n_max))
                any_shown, fb = any_shown or cells.shown(x), fb or x.fallback
                tidy.append(cells.tidy(x, col.unit, col.direction, model=model, explainer=e, clusterer=c,
                                       metric=col.name, group=label))
            text = " / ".join(parts) if any_shown else ""
            mk = marks.get((e, c, first), "")
            drow[c] = text + (f" {mk}" if mk and text else "") + (suffix if text else "") + \
                (f" {FALLBACK_MARK}" if fb and text else "")
            srow[c] = grid.cells[(e, c, first)].mean if (e, c, first) in grid.cells else np.nan
        disp.append(drow)
        sort.append(srow)
    return disp, sort, tidy


def detection_tables(d: pd.DataFrame, ps: list[Presentation], model: str, gates: dict[str, list[str]],
                     table_id: str, ctx: Context) -> list[Table]:
    """Explainer (or a non-explanation input) x clusterer, each cell the group's values joined by ' / '."""
    out = []
    for label, values in value_groups(ps):
        grid = detection_grid(d, ps, values, model not in gates)
        if grid is None:
            continue
        written = _frames(grid, model, label, gate_suffix(model, gates), ctx)
        what = " / ".join(head(col) for col in grid.columns)
        extra = [f"Cells: {what}; rows: explainer, a non-explanation input ('no explanation') or the reference; "
                 "columns: clusterer.", meanings(ps)]
        if label.startswith("label-matched"):
            extra.append("Label-matched: the cluster is matched to the poisoned flag with the ground truth (Hungarian), "
                         "which an auditor does not have; the label-free table is the headline.")
        extra += gate_extra(model, gates)
        extra += fallback_note(grid.extra["fallback"])
        extra += ctx.mark_notes(model, [e for (e,) in grid.rows])
        title = f"{title_of(table_id)}{', ' + label if label else ''}: {model}"
        tid = table_id if not label or label == "label-free" else f"{table_id}-label-matched"
        out.append(make_table(title, written, grid, ctx, NAMES, extra, tid, "detection", model, SECTIONS["detection"]))
    return out
