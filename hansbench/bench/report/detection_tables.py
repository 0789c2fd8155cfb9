"""The detection matrix (PRP Table II, issue 29): one table per scenario and model kind, rows detector (explainer
or input kind x clusterer) x flagging rule, a column with its own header per value.

Rule "–" rows hold the values of the split itself (ARI, NMI, AUROC/AUPRC of the detector's own score, and the
label-matched ACC/F1: an analyst who picks the right cluster); a rule's rows hold what that rule flags (flag F1,
precision, recall, the share flagged, on how many seeds it abstained). The trivial floors and the baselines (an
input that is no explanation) are rows of every table, marked so.

:func:`~hansbench.bench.report.verdicts.detection.detection_grid` (the verdicts step) computes the matrix's
results (cells, the paired tests on the split's first value); :func:`detection_tables` renders them.
"""

from __future__ import annotations

import math

import pandas as pd

from hansbench.bench.report import cells, tables
from hansbench.bench.report.explorer.links import explorer_href
from hansbench.bench.report.leaderboard import FALLBACK_MARK, SECTIONS, Presentation, Table
from hansbench.bench.report.results import Cell, Column, Grid
from hansbench.bench.report.tables import Context, fallback_note, gate_extra, gate_suffix, head, meanings
from hansbench.bench.report.verdicts.detection import detection_grid
from hansbench.bench.report.verdicts.protocol import ABSTAINED, ANALYST_NAME, OLD_NOTE, OLD_RULE

NAMES = {cells.SIG_MARK: "the reference explainer with the same clusterer",
         cells.CONTROL_MARK: "the raw-input control with the same clusterer",
         cells.BEST_MARK: "the runner-up of the table"}
KIND_LABEL = {"baseline": "baseline: no explanation", "floor": "floor: no explanation, no clustering",
              "reference": "reference", "explanation": "explanation detector"}
NO_RULE = "–"  # the rule column of the split's own values


def abstained_text(x: Cell) -> str:
    """An ``abstained`` cell (1.0 on a seed whose rule abstained): "abstained on k of n seeds"."""
    k = sum(1 for v in x.values if math.isfinite(v) and v >= 0.5)
    return f"abstained on {k} of {x.n} seed{'s' if x.n != 1 else ''}"


def header_of(col: Column, matched: set[str]) -> str:
    """A value's header (:func:`~.tables.head`), a label-matched value named for what it is."""
    return head(col) + (f" (label-matched: {ANALYST_NAME})" if col.name in matched else "")


def _frames(grid: Grid, model: str, suffix: str, ctx: Context) -> tuple[list, list, list]:
    """The matrix written out: per row the detector, its kind, the rule, then one cell per value (with the first
    value's marks, the gate and fallback marks); the means to sort by; a tidy record per cell."""
    marks = cells.marks_of(list(grid.comparisons))
    n_max, matched, tested_on = grid.n_max, grid.extra["matched"], grid.extra["tested_on"]
    disp, sort, tidy = [], [], []
    for e, c, r in grid.rows:
        start = {"explainer": ctx.label(e, model), "clusterer": c, "kind": KIND_LABEL[grid.extra["kind"][(e, c)]],
                 "rule": r or NO_RULE}
        drow, srow = dict(start), dict(start)
        for col in grid.columns:
            h, x = header_of(col, matched), grid.cells.get((e, c, r, col.name))
            if x is None or not cells.shown(x):
                drow[h], srow[h] = ("–" if x is not None else ""), math.nan
                continue
            text = abstained_text(x) if col.name == ABSTAINED else cells.text(x, n_max)
            mk = marks.get((e, c, r, col.name), "") if col.name == tested_on else ""
            drow[h] = text + (f" {mk}" if mk else "") + suffix + (f" {FALLBACK_MARK}" if x.fallback else "")
            srow[h] = x.mean
            tidy.append(cells.tidy(x, col.unit, col.direction, model=model, explainer=e, clusterer=c, rule=r,
                                   metric=col.name))
        disp.append(drow)
        sort.append(srow)
    return disp, sort, tidy


def detection_tables(d: pd.DataFrame, ps: list[Presentation], model: str, gates: dict[str, list[str]],
                     table_id: str, ctx: Context) -> list[Table]:
    """The detection matrix of one scenario and model kind (one table, a header per value)."""
    grid = detection_grid(d, ps, model not in gates)
    if grid is None:
        return []
    written = _frames(grid, model, gate_suffix(model, gates), ctx)
    extra = [f"Rows: detector (explainer or input kind x clusterer) x flagging rule; rule '{NO_RULE}': the split's "
             "own values, which no rule decides (ARI, AUROC of the detector's own score); a rule's rows: what it "
             "flags without labels (an abstaining rule flags nothing: flag F1 0). 'kind': floors (prediction ≠ "
             "label, training loss, random filter) and baselines (activations, raw input) set what an explanation "
             "must beat. Label-matched values pick the cluster with the ground truth, which an auditor does not "
             f"have ({ANALYST_NAME}). Marks and tests on {grid.extra['tested_on'] or 'no value'} only.", meanings(ps)]
    if any(r == OLD_RULE for _, _, r in grid.rows):
        extra.append(OLD_NOTE)
    extra += gate_extra(model, gates)
    extra += fallback_note(grid.extra["fallback"])
    extra += ctx.mark_notes(model, [e for e, _, _ in grid.rows])
    title = f"Detection matrix: {model}"
    if len(d) and grid.seeds:  # every cell links to its detector's view in the explorer, on the first seed
        grid.extra["links"] = {(i, header_of(col, grid.extra["matched"])): explorer_href(
            str(d.scenario.iloc[0]), model, min(grid.seeds), e, c) for i, (e, c, r) in enumerate(grid.rows)
            for col in grid.columns if (e, c, r, col.name) in grid.cells}
    return [tables.make_table(title, written, grid, ctx, NAMES, extra, table_id, "detection", model,
                              SECTIONS["detection"])]
