"""Detection tables (PRP Table II): explainer (or a non-explanation input, or the reference) x clusterer, each cell
the values of one group (label-free, label-matched) joined by ' / '.

:func:`~hansbench.bench.report.verdicts.detection.detection_grid` (the verdicts step) computes the table's
results (cells, the paired tests against the reference and the raw-input control with the same clusterer and of
the best against the runner-up, Holm-corrected); :func:`detection_tables` renders them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hansbench.bench.report import cells, tables
from hansbench.bench.report.leaderboard import FALLBACK_MARK, SECTIONS, Presentation, Table
from hansbench.bench.report.results import Grid
from hansbench.bench.report.tables import (
    Context,
    fallback_note,
    gate_extra,
    gate_suffix,
    head,
    meanings,
    title_of,
)
from hansbench.bench.report.verdicts.detection import detection_grid, value_groups

NAMES = {cells.SIG_MARK: "the reference explainer with the same clusterer",
         cells.CONTROL_MARK: "the raw-input control with the same clusterer",
         cells.BEST_MARK: "the runner-up of the table"}


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
        out.append(tables.make_table(title, written, grid, ctx, NAMES, extra, tid, "detection", model,
                                     SECTIONS["detection"]))
    return out
