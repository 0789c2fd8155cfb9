"""The leaderboard's table shapes for stages (PRP Table I) and models, and the pieces every table shares; detection
(PRP Table II) is :mod:`hansbench.bench.report.detection_tables`, the explainer rankings
:mod:`hansbench.bench.report.ranking_tables`, the controls :mod:`hansbench.bench.report.controls`.

Each shape is two steps: one scenario's per-seed rows (:func:`hansbench.bench.report.leaderboard.per_seed`) ->
a :class:`~hansbench.bench.report.results.Grid` (the numbers, :mod:`hansbench.bench.report.results`), then the
grid -> a :class:`~hansbench.bench.report.leaderboard.Table` (display strings, sort numbers, the tidy CSV: the
grid's cells written out, caption, note). Rendering reads the grid and computes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hansbench.bench.report import cells, run_facts
from hansbench.bench.report.leaderboard import FALLBACK_MARK, GATE_MARK, SECTIONS, Presentation, Table
from hansbench.bench.report.results import Cell, Column, Grid, cells_by, seeds_of

MINUS = " − "  # column names of values shown relative to the reference (display only; the CSV says relative_to)


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


def input_kinds() -> tuple[set[str], set[str]]:
    """(every non-explanation input kind, those that use no model: the raw-input controls), from the
    ``clusterer_inputs`` registry; {"activations", "pixels"} / {"pixels"} where it is absent."""
    try:
        from hansbench.registry import clusterer_inputs
    except ImportError:
        return {"activations", "pixels"}, {"pixels"}
    names = set(clusterer_inputs.names())
    raw = {n for n in names if not getattr(clusterer_inputs.get(n), "uses_model", True)}
    return names, raw


# -- shared pieces ---------------------------------------------------------------------------------------------
def headline(d: pd.DataFrame, p: Presentation) -> pd.DataFrame:
    """The rows of the presentation's headline values (all rows when it names none)."""
    return d[d.metric.isin(p.headline)] if p.headline else d


def column_name(r: pd.Series, relative: str = "", with_stage: bool = True) -> str:
    """A table column's name: the value, minus the reference when relative, its split, stage and detail."""
    name = r["metric"] + (f"{MINUS}{relative}" if relative else "")
    parts = [name] + [x for x in (r["split"], r["stage"] if with_stage else "", r["coldetail"]) if x]
    return " / ".join(parts)


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


def columns_of(g: pd.DataFrame, names: list[str]) -> tuple[Column, ...]:
    """The value columns ``names`` of ``g`` (rows with a ``column``): each column's first row says what it holds."""
    first = g.groupby("column", sort=False).first()
    return tuple(Column(c, str(r["metric"]), str(r["unit"]), bool(r["higher_is_better"]), bool(r["directed"]),
                        str(r["split"]), str(r["stage"]), str(r["coldetail"]), str(r.get("relative_to", "")),
                        str(r["family"]), bool(r.get("ranked", False)))
                 for c, r in ((c, first.loc[c]) for c in names))


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
    ns = [x.n for x in grid.cells.values()]
    boot = any(x.method == "bootstrap" for x in grid.cells.values())
    how = cells.interval_note(ns, grid.seeds, ctx.dev_seeds, boot)
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
def _method(r: pd.Series, stage_is_column: bool, ctx: Context) -> str:
    parts = [ctx.label(r["explainer"], r["model"]) if r["explainer"] else "", r["clusterer"]]
    name = " + ".join(x for x in parts if x)
    if name:
        return name
    if r["stage"] and not stage_is_column:
        return r["stage"]
    return r["family"]


def _stage_columns(g: pd.DataFrame, stage_cols: tuple[str, ...]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The stages' rows with their ``column``, the row index and the column order: declared stages as columns
    (rows without a split repeated for every split), others by their value's name."""
    as_col = g.stage.isin(stage_cols) if stage_cols else pd.Series(False, index=g.index)
    if not stage_cols:
        g = g.assign(column=[column_name(r, with_stage=False) for _, r in g.iterrows()])
        return g, ["method"], list(dict.fromkeys(g.column))
    g = g.assign(column=[" / ".join(x for x in (r["metric"], r["stage"] if c else "", r["coldetail"]) if x)
                         for (_, r), c in zip(g.iterrows(), as_col)])
    splits = sorted(s for s in g.split.unique() if s) or [""]
    no_split = g[g.split == ""]
    g = pd.concat([g[g.split != ""]] + [no_split.assign(split=s) for s in splits], ignore_index=True)
    order = {s: i for i, s in enumerate(stage_cols)}
    metric_order = list(dict.fromkeys(g.metric))
    columns = sorted(dict.fromkeys(g.column), key=lambda c: (
        metric_order.index(c.split(" / ")[0]), next((order[s] for s in c.split(" / ")[1:] if s in order), -1)))
    return g, ["method", "split"], columns


def stages_grid(d: pd.DataFrame, ps: list[Presentation], ctx: Context) -> tuple[Grid, list[str], pd.DataFrame] | None:
    """An intervention's stages as a grid (rows: method [x split]), its row index names and its rows."""
    stage_cols = tuple(dict.fromkeys(s for p in ps for s in p.stages))
    parts = [x for x in (headline(d[d.family == p.family], p) for p in ps) if not x.empty]
    if not parts:
        return None
    g = pd.concat(parts, ignore_index=True)
    as_col = g.stage.isin(stage_cols) if stage_cols else pd.Series(False, index=g.index)
    g = g.assign(method=[_method(r, bool(c), ctx) for (_, r), c in zip(g.iterrows(), as_col)])
    g, index, columns = _stage_columns(g, stage_cols)
    rows = tuple(dict.fromkeys(tuple(r) for r in g[index].itertuples(index=False)))
    return Grid(rows, columns_of(g, columns), cells_by(g, index + ["column"]), seeds_of(g)), index, g


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
    extra = [meanings(ps)] + gate_extra(model, gates) + fallback_note(bool(g.fallback.any())) + ctx.mark_notes(model, set(g.explainer))
    return [make_table(f"{title_of(table_id)}: {model}", written, grid, ctx, {}, extra, table_id, "stages", model,
                       SECTIONS["stages"])]


def model_grid(d: pd.DataFrame, ps: list[Presentation]) -> Grid | None:
    """One row per model kind, the families' headline values as columns."""
    parts = [headline(d[d.family == p.family], p) for p in ps]
    g = pd.concat(parts, ignore_index=True) if parts else d.iloc[:0]
    if g.empty:
        return None
    g = g.assign(column=[column_name(r) for _, r in g.iterrows()])
    return Grid(tuple((m,) for m in dict.fromkeys(g.model)), columns_of(g, list(dict.fromkeys(g.column))),
                cells_by(g, ["model", "column"]), seeds_of(g))


def model_tables(d: pd.DataFrame, ps: list[Presentation], gates: dict[str, list[str]], table_id: str, ctx: Context,
                 status: bool = False) -> list[Table]:
    """One row per model kind: the headline values (reliance: with its status from the gates)."""
    grid = model_grid(d, ps)
    if grid is None:
        return []
    n_max = grid.n_max

    def start(row: tuple) -> dict:
        return {"model": row[0], **({"status": "; ".join(gates[row[0]]) if row[0] in gates else "ranked"}
                                    if status else {})}

    written = frames(grid, start, lambda row, col, x: cells.text(x, n_max),
                     lambda row, col: dict(model=row[0], metric=col.metric, split=col.split, stage=col.stage))
    extra = [meanings(ps)]
    if status:
        extra.append("A model whose poisoning did not take, or that is near chance, is shown but not ranked.")
    shape = "reliance" if status else "model"
    return [make_table(title_of(table_id), written, grid, ctx, {}, extra, table_id, shape, "", SECTIONS[shape])]
