"""The faithfulness and localisation ranking tables: one per model kind, explainers as rows, the reference
explainer as a zero line with its raw values in a row of their own, ranks over the columns every ranked
explainer has (never crediting a method the reference beats). Shared pieces: :mod:`hansbench.bench.report.tables`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from hansbench.bench.report import cells
from hansbench.bench.report.leaderboard import FALLBACK_MARK, SECTIONS, Presentation, Table
from hansbench.bench.report.stats import format_number
from hansbench.bench.report.tables import (
    MINUS,
    Context,
    column_name,
    gate_extra,
    gate_suffix,
    header,
    headline,
    intervals,
    make_table,
    meanings,
    oriented,
    series,
    title_of,
)


# -- explainer tables --------------------------------------------------------------------------------------------
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


def explainer_tables(d: pd.DataFrame, ps: list[Presentation], model: str, gates: dict[str, list[str]],
                     table_id: str, ctx: Context) -> list[Table]:
    """Explainers x headline values of one model kind: ranked, tested against the reference, which is a zero
    line with its raw values in a row of their own."""
    g, col_ref = _explainer_rows(d, ps)
    if g.empty:
        return []
    columns = list(dict.fromkeys(g.column))
    first = g.groupby("column", sort=False).first()
    direction, unit, directed = first["higher_is_better"], first["unit"], first["directed"]
    fam_of, ranked_of = first["family"], first["ranked"]
    iv = intervals(g, ["explainer", "column"])
    n_max = max((x.n for x in iv.values()), default=0)
    explainers = list(dict.fromkeys(g.explainer))
    refs = {r for r in col_ref.values() if r}
    candidates = [e for e in explainers if e not in refs]
    means = pd.DataFrame({c: {e: iv[(e, c)].mean if (e, c) in iv else np.nan for e in explainers} for c in columns})
    ranked_table = any(p.ranked for p in ps)
    gated = model in gates

    # paired tests: every candidate vs the reference on each directed column, the best vs the runner-up
    comps: list[cells.Comparison] = []
    sub_of = dict(tuple(g.groupby(["explainer", "column"], sort=False)))
    by = {k: series(sub) for k, sub in sub_of.items()}
    for c in columns:
        if not directed[c] or not ranked_table:
            continue
        ref, higher = col_ref.get(c, ""), bool(direction[c])
        for e in candidates:
            if (e, c) not in by:
                continue
            if ref and (ref, c) in by:
                base = by[(ref, c)]
                comps.append(cells.compare(by[(e, c)], base, who=(e,), column=c, against=ref, mark=cells.SIG_MARK,
                                           higher=higher))
        have = [e for e in candidates if math.isfinite(means.loc[e, c])]
        if len(have) >= 2:
            best, second = sorted(have, key=lambda e: oriented(means.loc[e, c], higher))[:2]
            comps.append(cells.compare(by[(best, c)], by[(second, c)], who=(best,), column=c, against=second,
                                       mark=cells.BEST_MARK, higher=higher))
    marks = cells.marks_of(cells.correct(comps))

    # ranks: only columns every candidate has; each metric family weighs once
    ranked_cols = [c for c in columns if ranked_of[c] and directed[c]]
    complete = [c for c in ranked_cols if means.loc[candidates, c].notna().all()] if candidates else []
    left_out = [c for c in ranked_cols if c not in complete]
    mean_rank = pd.Series(np.nan, index=explainers)
    if complete and len(candidates) > 1 and not gated:
        per_col = {}
        for c in complete:
            ref = col_ref.get(c, "")
            ref_value = means.loc[ref, c] if ref else math.nan
            per_col[c] = _column_ranks(means, candidates, c, bool(direction[c]), ref_value)
        by_family = pd.DataFrame({f: pd.DataFrame({c: per_col[c] for c in complete if fam_of[c] == f}).mean(axis=1)
                                  for f in dict.fromkeys(fam_of[c] for c in complete)})
        mean_rank = by_family.mean(axis=1).reindex(explainers)
    if ranked_cols:
        order = sorted(candidates, key=lambda e: (np.nan_to_num(mean_rank.get(e, np.nan), nan=np.inf),
                                                  explainers.index(e)))
    else:  # unranked tables (timing): by the first column, best first
        c0 = columns[0]
        order = sorted(candidates, key=lambda e: np.nan_to_num(oriented(means.loc[e, c0], bool(direction[c0])),
                                                               nan=np.inf))
    headers = {c: header(c, unit[c], bool(direction[c]), bool(directed[c])) for c in columns}
    suffix = gate_suffix(model, gates, ranked_table)
    rank_col = "mean rank ↓"
    disp, sort, tidy = [], [], []
    relative_cols = [c for c in columns if MINUS in c]

    def cell(e: str, c: str) -> tuple[str, float]:
        if (e, c) not in iv:
            return "", np.nan
        x = iv[(e, c)]
        t = cells.text(x, n_max)
        fb = sub_of[(e, c)].fallback.any()
        t += (" " + marks[(e, c)] if (e, c) in marks else "") + (suffix if cells.shown(x) else "") + \
             (f" {FALLBACK_MARK}" if fb else "")
        return t, x.mean

    for e in order + [r for r in explainers if r in refs]:
        is_ref = e in refs
        label = ctx.label(e, model) + (" (reference: zero line)" if is_ref and relative_cols else
                                       " (reference)" if is_ref else "")
        drow, srow = {"explainer": label}, {"explainer": label}
        for c in columns:
            drow[headers[c]], srow[headers[c]] = cell(e, c)
            if (e, c) in iv:
                p_ref = next((x for x in comps if x.who == (e,) and x.column == c and x.mark == cells.SIG_MARK), None)
                r0 = sub_of[(e, c)].iloc[0]
                tidy.append(cells.tidy(iv[(e, c)], unit[c], bool(direction[c]) if directed[c] else None, model=model,
                                       explainer=e, metric=r0["metric"], relative_to=r0["relative_to"],
                                       split=r0["split"], stage=r0["stage"], column_detail=r0["coldetail"],
                                       p_vs_reference=p_ref.p if p_ref else np.nan,
                                       p_holm_vs_reference=p_ref.p_holm if p_ref else np.nan))
        if ranked_cols:
            mr = mean_rank.get(e, np.nan) if not is_ref else np.nan
            drow[rank_col], srow[rank_col] = format_number(mr, 3), mr
        disp.append(drow)
        sort.append(srow)
        if is_ref and relative_cols:  # its raw values, in a row of their own (not sortable with the differences)
            raw_label = f"{e} raw values"
            drow, srow = {"explainer": raw_label}, {"explainer": raw_label}
            for c in columns:
                raw = sub_of.get((e, c), g.iloc[:0])
                text = cells.text(cells.interval(raw.assign(value=raw["raw"])), n_max) if MINUS in c and len(raw) \
                    else ""
                drow[headers[c]], srow[headers[c]] = text, np.nan
            if ranked_cols:
                drow[rank_col], srow[rank_col] = "", np.nan
            disp.append(drow)
            sort.append(srow)

    extra = [meanings(ps)]
    if relative_cols:
        extra.append(f"Columns '{MINUS.strip()} <reference>': value minus the reference explainer's on the same seed, "
                     "split and model; the reference's row is that zero line, its raw values are the row below "
                     "(not ranked, not sorted with the differences).")
    elif any(p.relative_to_random for p in ps):
        extra.append("No reference explainer in this run: raw values (not comparable across models).")
    if ranked_cols and complete:
        extra.append("Mean rank: ranked per column by the means in the value's direction, averaged within each "
                     "metric, then over metrics (each metric weighs once); a method the reference beats or equals on "
                     "a column shares the bottom ranks there.")
    if left_out:
        extra.append(f"Not in the mean rank (not every method has them): {', '.join(left_out)}.")
    extra += gate_extra(model, gates) if suffix else []
    if g.fallback.any():
        extra.append(f"{FALLBACK_MARK} the clusterer fell back to a simpler procedure.")
    extra += ctx.mark_notes(model, explainers)
    names = {cells.SIG_MARK: "the reference on the same seeds", cells.BEST_MARK: "the runner-up in its column"}
    return [make_table(f"{title_of(table_id)}: {model}", disp, sort, tidy, g, ctx, iv, comps, names, extra, table_id,
                   "explainer", model, SECTIONS["explainer"] if ranked_table else SECTIONS["unranked"])]
