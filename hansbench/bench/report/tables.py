"""The leaderboard's table shapes for stages (PRP Table I) and models, and the pieces every table shares; detection
(PRP Table II) is :mod:`hansbench.bench.report.detection_tables`, the explainer rankings
:mod:`hansbench.bench.report.ranking_tables`, the controls :mod:`hansbench.bench.report.controls`.

Each shape is two steps: one scenario's per-seed rows (:func:`hansbench.bench.report.leaderboard.per_seed`) ->
a :class:`~hansbench.bench.report.results.Grid` (the numbers: the verdicts step,
:mod:`hansbench.bench.report.verdicts`, here :func:`~hansbench.bench.report.verdicts.stages.stages_grid` and
:func:`~hansbench.bench.report.verdicts.stages.model_grid`), then the grid -> a
:class:`~hansbench.bench.report.leaderboard.Table` (display strings, sort numbers, the tidy CSV: the grid's cells
written out, caption, note). Rendering reads the grid and computes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hansbench.bench.report import cells, run_facts
from hansbench.bench.report.leaderboard import (
    FALLBACK_MARK,
    GATE_MARK,
    SECTIONS,
    Presentation,
    Table,
    model_status,
    reliance_axis,
)
from hansbench.bench.report.results import Cell, Column, Grid
from hansbench.bench.report.verdicts.common import (  # noqa: F401  (re-exported: the names importers find here)
    MINUS,
    column_name,
    columns_of,
    headline,
    input_kinds,
)
from hansbench.bench.report.verdicts.stages import model_grid, restore_notes, stages_grid


@dataclass
class Context:
    """What every table of a run shares: the run configuration (read through
    :mod:`hansbench.bench.report.run_facts`) and the explainers' earned marks."""

    config: dict = field(default_factory=dict)
    marks: dict = field(default_factory=dict)

    @property
    def dev_seeds(self) -> list[int]:
        """The seeds the run's settings were tuned on."""
        return run_facts.dev_seeds(self.config)

    def label(self, explainer: str, model: str) -> str:
        """The explainer's name with its marks for this model kind."""
        symbols = "".join(self.marks.get(model, {}).get(explainer, []))
        return f"{explainer} {symbols}" if symbols else explainer

    def mark_notes(self, model: str, explainers) -> list[str]:
        """The notes of the marks these explainers carry, one line each."""
        used = {s for e in explainers for s in self.marks.get(model, {}).get(e, [])}
        notes = self.marks.get("notes", {})
        return [f"{s} {notes[s][0]}." for s in notes if s in used]


# -- shared pieces ---------------------------------------------------------------------------------------------
def header(column: str, unit: str, higher: bool, directed: bool) -> str:
    """'<column> [unit] ↑': the unit where declared (a 0/1 flag's "bool" is none), an arrow only where better
    exists."""
    u = f" [{unit}]" if unit and unit != "bool" else ""
    return f"{column}{u}{(' ↑' if higher else ' ↓') if directed else ''}"


def gate_suffix(model: str, gates: dict[str, list[str]], ranked: bool = True) -> str:
    """The gate mark after a model's name when a gate failed and the table is ranked."""
    return f" {GATE_MARK}" if ranked and model in gates else ""


def gate_extra(model: str, gates: dict[str, list[str]]) -> list[str]:
    """The note line explaining a model's failed gates (empty when none failed)."""
    if model not in gates:
        return []
    return [f"{GATE_MARK} {model}: {'; '.join(gates[model])}: shown, not ranked."]


def title_of(table_id: str) -> str:
    """A heading from the table id ("cluster-detection" -> "Cluster detection")."""
    return table_id.replace("-", " ").replace("_", " ").capitalize() or "Table"


def meanings(ps: list[Presentation]) -> str:
    """The presentations' one-line meanings, joined for the line under a table."""
    text = "; ".join(dict.fromkeys(f"{p.family}: {p.meaning.rstrip('.')}" for p in ps if p.meaning))
    return text + "." if text else ""


def head(col: Column) -> str:
    """A value column's header (:func:`header` of its name, unit and direction)."""
    return header(col.name, col.unit, col.higher, col.directed)


def frames(grid: Grid, start: Callable[[tuple], dict], text: Callable[[tuple, Column, Cell], str],
           keys: Callable[[tuple, Column], dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """The grid written out: per row, the display strings (``start(row)`` then each column's ``text``), the sort
    numbers (the cells' means) and the tidy records (each cell with ``keys(row, column)``)."""
    disp, sort, tidy = [], [], []
    for row in grid.rows:
        drow = start(row)
        srow = dict(drow)
        for col in grid.columns:
            h, x = head(col), grid.cells.get((*row, col.name))
            if x is None:
                drow[h], srow[h] = "", np.nan
                continue
            drow[h], srow[h] = text(row, col, x), x.mean
            tidy.append(cells.tidy(x, col.unit, col.direction, **keys(row, col)))
        disp.append(drow)
        sort.append(srow)
    return disp, sort, tidy


def make_table(title: str, written: tuple[list, list, list], grid: Grid, ctx: Context, names: dict[str, str],
               extra: list[str], table_id: str, shape: str, model: str, section: str) -> Table:
    """A :class:`Table` of ``grid`` with its caption and note: how the cells were made (n, seeds) and the tests."""
    disp, sort, tidy = written
    how = cells.cells_note([x.n for x in grid.cells.values()], grid.seeds, ctx.dev_seeds, grid.cells.values())
    tests = cells.tests_note(list(grid.comparisons), names)
    caption = " ".join(x for x in (f"{title}.", how, tests) if x)
    note = " ".join(x for x in [how, tests, *extra] if x)
    return Table(title, pd.DataFrame(disp), note, table_id, shape, model, pd.DataFrame(sort), pd.DataFrame(tidy),
                 caption, section, result=grid)


def fallback_note(fell_back: bool, text: str = " on at least one seed") -> list[str]:
    """The fallback mark's note when a clusterer fell back on any of the table's rows."""
    return [f"{FALLBACK_MARK} the clusterer fell back to a simpler procedure{text}."] if fell_back else []


def fallback_suffix(x: Cell) -> str:
    """The fallback mark after a cell whose clusterer fell back on any seed."""
    return f" {FALLBACK_MARK}" if x.fallback else ""


# -- stages and model tables -------------------------------------------------------------------------------------
def stages_tables(d: pd.DataFrame, ps: list[Presentation], model: str, gates: dict[str, list[str]],
                  table_id: str, ctx: Context) -> list[Table]:
    """An intervention's stages: declared stages as columns (PRP Table I), other stages as rows."""
    found = stages_grid(d, ps, ctx)
    if found is None:
        return []
    grid, index, g = found
    suffix, n_max = gate_suffix(model, gates), grid.n_max
    written = frames(grid, lambda row: dict(zip(index, row)),
                     lambda row, col, x: cells.text(x, n_max) + (suffix if cells.shown(x) else "") + fallback_suffix(x),
                     lambda row, col: dict(model=model, **dict(zip(index, row)), metric=col.metric, column=col.name))
    extra = ([meanings(ps)] + restore_notes(d) + gate_extra(model, gates) + fallback_note(bool(g.fallback.any()))
             + ctx.mark_notes(model, set(g.explainer)))
    return [make_table(f"{title_of(table_id)}: {model}", written, grid, ctx, {}, extra, table_id, "stages", model,
                       SECTIONS["stages"])]


def model_tables(d: pd.DataFrame, ps: list[Presentation], gates: dict[str, list[str]], table_id: str, ctx: Context,
                 status: bool = False) -> list[Table]:
    """One row per model kind: the headline values (reliance: with its status from the gates)."""
    grid = model_grid(d, ps)
    if grid is None:
        return []
    n_max = grid.n_max

    axis = reliance_axis(d, {p.family: p for p in ps}) if status else {}

    def start(row: tuple) -> dict:
        return {"model": row[0], **({"status": model_status(row[0], gates, axis)} if status else {})}

    written = frames(grid, start, lambda row, col, x: cells.text(x, n_max),
                     lambda row, col: dict(model=row[0], metric=col.metric, split=col.split, stage=col.stage))
    extra = [meanings(ps)]
    if status:
        extra.append("A model whose poisoning did not take, or that is near chance, is shown but not ranked.")
    shape = "reliance" if status else "model"
    return [make_table(title_of(table_id), written, grid, ctx, {}, extra, table_id, shape, "", SECTIONS[shape])]
