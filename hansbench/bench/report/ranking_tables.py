"""The faithfulness and localisation ranking tables: one per model kind, explainers as rows, the reference
explainer as a zero line with its raw values in a row of their own, ranks over the columns every ranked
explainer has (never crediting a method the reference beats). Shared pieces: :mod:`hansbench.bench.report.tables`.

:func:`~hansbench.bench.report.verdicts.explainers.explainer_grid` (the verdicts step) computes a table's
results (cells, the paired tests against the reference and of the best against the runner-up, Holm-corrected;
the mean ranks and the row order they give); :func:`explainer_tables` renders them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hansbench.bench.report import cells
from hansbench.bench.report.leaderboard import SECTIONS, Presentation, Table
from hansbench.bench.report.results import Cell, Column, Grid
from hansbench.bench.report.stats import format_number
from hansbench.bench.report.tables import (
    Context,
    fallback_note,
    fallback_suffix,
    frames,
    gate_extra,
    gate_suffix,
    head,
    make_table,
    meanings,
    title_of,
)
from hansbench.bench.report.verdicts.common import MINUS
from hansbench.bench.report.verdicts.explainers import explainer_grid

RANK_COLUMN = "mean rank ↓"
NAMES = {cells.SIG_MARK: "the reference on the same seeds", cells.BEST_MARK: "the runner-up in its column"}


def _frames(grid: Grid, model: str, suffix: str, ctx: Context) -> tuple[list, list, list]:
    """The grid written out: marked cells, the mean rank, each reference's raw values in a row below it."""
    marks, n_max, refs = cells.marks_of(list(grid.comparisons)), grid.n_max, grid.extra["refs"]
    relative = any(MINUS in c.name for c in grid.columns)

    def label(row: tuple) -> dict:
        tag = (" (reference: zero line)" if relative else " (reference)") if row[0] in refs else ""
        return {"explainer": ctx.label(row[0], model) + tag}

    def text(row: tuple, col: Column, x: Cell) -> str:
        mk = marks.get((*row, col.name), "")
        return cells.text(x, n_max) + (f" {mk}" if mk else "") + (suffix if cells.shown(x) else "") + fallback_suffix(x)

    def keys(row: tuple, col: Column) -> dict:
        p_ref = grid.comparison(row, col.name, cells.SIG_MARK)
        return dict(model=model, explainer=row[0], metric=col.metric, relative_to=col.relative_to, split=col.split,
                    stage=col.stage, column_detail=col.detail, p_vs_reference=p_ref.p if p_ref else np.nan,
                    p_holm_vs_reference=p_ref.p_holm if p_ref else np.nan)

    disp, sort, tidy = frames(grid, label, text, keys)
    out_d, out_s = [], []
    for (e,), drow, srow in zip(grid.rows, disp, sort):
        rows = [(drow, srow)]
        if grid.ranks is not None:
            mr = grid.ranks.mean[e] if e not in refs else np.nan
            drow[RANK_COLUMN], srow[RANK_COLUMN] = format_number(mr, 3), mr
        if e in refs and relative:  # its raw values, in a row of their own (not sortable with the differences)
            rd = {"explainer": f"{e} raw values"}
            rs = dict(rd)
            for col in grid.columns:
                x = grid.extra["raw"].get((e, col.name))
                rd[head(col)], rs[head(col)] = cells.text(x, n_max) if x is not None else "", np.nan
            if grid.ranks is not None:
                rd[RANK_COLUMN], rs[RANK_COLUMN] = "", np.nan
            rows.append((rd, rs))
        out_d += [r[0] for r in rows]
        out_s += [r[1] for r in rows]
    return out_d, out_s, tidy


def _notes(grid: Grid, ps: list[Presentation], model: str, gates: dict[str, list[str]], suffix: str,
           ctx: Context) -> list[str]:
    """The lines under the table: meanings, the reference's zero line, the rank rule, the gates, the marks."""
    extra = [meanings(ps)]
    if any(MINUS in c.name for c in grid.columns):
        extra.append(f"Columns '{MINUS.strip()} <reference>': value minus the reference explainer's on the same seed, "
                     "split and model; the reference's row is that zero line, its raw values are the row below "
                     "(not ranked, not sorted with the differences).")
    elif any(p.relative_to_random for p in ps):
        extra.append("No reference explainer in this run: raw values (not comparable across models).")
    if grid.ranks is not None and grid.ranks.complete:
        extra.append("Mean rank: ranked per column by the means in the value's direction, averaged within each "
                     "metric, then over metrics (each metric weighs once); a method the reference beats or equals on "
                     "a column shares the bottom ranks there.")
    if grid.ranks is not None and grid.ranks.left_out:
        extra.append(f"Not in the mean rank (not every method has them): {', '.join(grid.ranks.left_out)}.")
    extra += gate_extra(model, gates) if suffix else []
    extra += fallback_note(grid.extra["fallback"], "")
    return extra + ctx.mark_notes(model, [e for (e,) in grid.rows])


def explainer_tables(d: pd.DataFrame, ps: list[Presentation], model: str, gates: dict[str, list[str]],
                     table_id: str, ctx: Context) -> list[Table]:
    """Explainers x headline values of one model kind: ranked, tested against the reference, which is a zero
    line with its raw values in a row of their own."""
    grid = explainer_grid(d, ps, model in gates)
    if grid is None:
        return []
    ranked = grid.extra["ranked"]
    suffix = gate_suffix(model, gates, ranked)
    written = _frames(grid, model, suffix, ctx)
    return [make_table(f"{title_of(table_id)}: {model}", written, grid, ctx, NAMES, _notes(grid, ps, model, gates,
                                                                                           suffix, ctx),
                       table_id, "explainer", model, SECTIONS["explainer"] if ranked else SECTIONS["unranked"])]
