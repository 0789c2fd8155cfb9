"""The verdicts of the stages tables (PRP Table I: rows method [x split], declared stages as columns) and the
model tables (one row per model kind): their cells, from one scenario's per-seed rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from hansbench.bench.report.leaderboard import Presentation
from hansbench.bench.report.results import Grid, cells_by, seeds_of
from hansbench.bench.report.verdicts.common import column_name, columns_of, headline

if TYPE_CHECKING:
    from hansbench.bench.report.tables import Context


def _method(r: pd.Series, stage_is_column: bool, ctx: Context) -> str:
    parts = [ctx.label(r["explainer"], r["model"]) if r["explainer"] else "", r["clusterer"], r.get("rule", "")]
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


def restore_notes(d: pd.DataFrame) -> list[str]:
    """In words, where the perfect filter does not restore the model (``oracle-restores`` 0 on some seed): no filter
    can be judged there, so the table says so beside its rows (issue 28), with the first such seed's clean
    affected-class accuracy after the perfect filter against the poisoned model's."""
    r = d[d.metric == "oracle-restores"]
    failed = r[r.value.astype(float) == 0.0]
    if failed.empty:
        return []
    seed = int(failed.seed.min())
    acc = d[(d.metric == "class-acc") & (d.split == "clean_test") & (d.seed == seed)].groupby("stage").value.mean()
    said = (f": the perfect filter leaves {acc['oracle']:.1f} % clean accuracy on the affected class, the poisoned "
            f"model {acc['none']:.1f} %" if {"oracle", "none"} <= set(acc.index) else "")
    n, k = int(r.seed.nunique()), int(failed.seed.nunique())
    return [f"The perfect filter does not restore the model on {k} of {n} seeds (seed {seed}{said}); no filter's "
            "cleaning can be judged against it there."]


def model_grid(d: pd.DataFrame, ps: list[Presentation]) -> Grid | None:
    """One row per model kind, the families' headline values as columns."""
    parts = [headline(d[d.family == p.family], p) for p in ps]
    g = pd.concat(parts, ignore_index=True) if parts else d.iloc[:0]
    if g.empty:
        return None
    g = g.assign(column=[column_name(r) for _, r in g.iterrows()])
    return Grid(tuple((m,) for m in dict.fromkeys(g.model)), columns_of(g, list(dict.fromkeys(g.column))),
                cells_by(g, ["model", "column"]), seeds_of(g))
