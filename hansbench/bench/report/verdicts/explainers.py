"""The verdicts of the faithfulness and localisation ranking tables: one model kind's explainers x headline
values, relative families as value minus the reference's on the same seed; the paired tests against the
reference and of the best against the runner-up, Holm-corrected within the table; the mean ranks over the
columns every ranked explainer has (never crediting a method the reference beats) and the row order they give.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from hansbench.bench.report import cells
from hansbench.bench.report.leaderboard import Presentation
from hansbench.bench.report.results import (
    Cell,
    Column,
    Comparison,
    Grid,
    Ranks,
    cell,
    cells_by,
    compare,
    correct,
    oriented,
    seeds_of,
)
from hansbench.bench.report.verdicts.common import MINUS, column_name, columns_of, headline


def _explainer_rows(d: pd.DataFrame, ps: list[Presentation]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The headline rows with a ``column`` each; relative families as value minus the reference's on the same
    seed, split and model (the reference itself at 0: its zero line). Returns (rows, column -> reference)."""
    parts, refs = [], {}
    key = ["seed", "metric", "split", "stage", "coldetail"]
    for p in ps:
        g = headline(d[d.family == p.family], p)
        if g.empty:
            continue
        ref = p.reference_explainer if p.reference_explainer and (g.explainer == p.reference_explainer).any() else ""
        if ref and p.relative_to_random:
            base = g[g.explainer == ref][key + ["value"]].rename(columns={"value": "ref"})
            g = g.merge(base, on=key, how="left")
            g = g.assign(raw=g["value"], value=np.where(g.explainer == ref, 0.0, g["value"] - g["ref"]),
                         relative_to=ref, per_image=None)
        else:
            g = g.assign(raw=g["value"], relative_to="")
        g = g.assign(column=[column_name(r, r["relative_to"]) for _, r in g.iterrows()], family=p.family,
                     ranked=p.ranked)
        refs.update({c: ref for c in g.column.unique()})
        parts.append(g)
    return (pd.concat(parts, ignore_index=True) if parts else d.iloc[:0]), refs


def _column_ranks(means: pd.DataFrame, candidates: list[str], col: str, higher: bool, ref_value: float) -> pd.Series:
    """Ranks of the candidates on one column (1 = best, ties averaged); a candidate the reference beats or
    equals is never better than one it does not: all such candidates share the bottom ranks."""
    o = pd.Series({e: oriented(means.loc[e, col], higher) for e in candidates})
    beaten = o >= oriented(ref_value, higher) if math.isfinite(ref_value) else pd.Series(False, index=o.index)
    ranks = pd.Series(np.nan, index=o.index)
    ok = o[~beaten]
    if len(ok):
        ranks[ok.index] = rankdata(ok.to_numpy())
    if beaten.any():
        ranks[beaten] = (len(ok) + 1 + len(o)) / 2  # the mean of ranks len(ok)+1 .. len(o)
    return ranks


def _comparisons(grid_cells: dict[tuple, Cell], columns: tuple[Column, ...], candidates: list[str],
                 col_ref: dict[str, str]) -> list[Comparison]:
    """Per directed column: every candidate vs the reference, the best vs the runner-up."""
    comps = []
    for col in (c for c in columns if c.directed):
        c, ref = col.name, col_ref.get(col.name, "")
        for e in candidates:
            if (e, c) in grid_cells and ref and (ref, c) in grid_cells:
                comps.append(compare(grid_cells[(e, c)], grid_cells[(ref, c)], who=(e,), column=c, against=ref,
                                     mark=cells.SIG_MARK, higher=col.higher))
        have = [e for e in candidates if (e, c) in grid_cells and math.isfinite(grid_cells[(e, c)].mean)]
        if len(have) >= 2:
            best, second = sorted(have, key=lambda e: oriented(grid_cells[(e, c)].mean, col.higher))[:2]
            comps.append(compare(grid_cells[(best, c)], grid_cells[(second, c)], who=(best,), column=c,
                                 against=second, mark=cells.BEST_MARK, higher=col.higher))
    return comps


def _ranks(means: pd.DataFrame, columns: tuple[Column, ...], candidates: list[str], col_ref: dict[str, str],
           explainers: list[str], gated: bool) -> Ranks | None:
    """The mean ranks over the ranked columns every candidate has, each metric family weighing once (None when
    the table has no ranked column)."""
    ranked_cols = [c for c in columns if c.ranked and c.directed]
    if not ranked_cols:
        return None
    complete = [c for c in ranked_cols if means.loc[candidates, c.name].notna().all()] if candidates else []
    mean_rank = pd.Series(np.nan, index=explainers)
    if complete and len(candidates) > 1 and not gated:
        per_col = {}
        for c in complete:
            ref = col_ref.get(c.name, "")
            per_col[c.name] = _column_ranks(means, candidates, c.name, c.higher,
                                            means.loc[ref, c.name] if ref else math.nan)
        by_family = pd.DataFrame({f: pd.DataFrame({c.name: per_col[c.name] for c in complete if c.family == f}).mean(
            axis=1) for f in dict.fromkeys(c.family for c in complete)})
        mean_rank = by_family.mean(axis=1).reindex(explainers)
    return Ranks({e: float(mean_rank.get(e, np.nan)) for e in explainers}, tuple(c.name for c in complete),
                 tuple(c.name for c in ranked_cols if c not in complete))


def explainer_grid(d: pd.DataFrame, ps: list[Presentation], gated: bool) -> Grid | None:
    """Explainers x headline values of one model kind: the cells, the tests (ranked tables only), the mean ranks
    and the rows in their order (candidates by mean rank, or by the first column in unranked tables; the
    references last); the references' raw values in ``extra["raw"]``."""
    g, col_ref = _explainer_rows(d, ps)
    if g.empty:
        return None
    columns = columns_of(g, list(dict.fromkeys(g.column)))
    grid_cells = cells_by(g, ["explainer", "column"])
    explainers = list(dict.fromkeys(g.explainer))
    refs = {r for r in col_ref.values() if r}
    candidates = [e for e in explainers if e not in refs]
    means = pd.DataFrame({c.name: {e: grid_cells[(e, c.name)].mean if (e, c.name) in grid_cells else np.nan
                                   for e in explainers} for c in columns})
    ranked_table = any(p.ranked for p in ps)
    comps = _comparisons(grid_cells, columns, candidates, col_ref) if ranked_table else []
    ranks = _ranks(means, columns, candidates, col_ref, explainers, gated)
    if ranks is not None:
        order = sorted(candidates, key=lambda e: (np.nan_to_num(ranks.mean[e], nan=np.inf), explainers.index(e)))
    else:  # unranked tables (timing): by the first column, best first
        c0 = columns[0]
        order = sorted(candidates, key=lambda e: np.nan_to_num(oriented(means.loc[e, c0.name], c0.higher),
                                                               nan=np.inf))
    raw = {(e, c): cell(sub.assign(value=sub["raw"])) for (e, c), sub in g.groupby(["explainer", "column"], sort=False)
           if e in refs and MINUS in c and len(sub)}
    return Grid(tuple((e,) for e in order + [r for r in explainers if r in refs]), columns, grid_cells, seeds_of(g),
                correct(comps), ranks, extra={"refs": refs, "raw": raw, "ranked": ranked_table,
                                              "fallback": bool(g.fallback.any())})
