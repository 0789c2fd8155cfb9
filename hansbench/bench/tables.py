"""The leaderboard's table shapes: explainer rankings, detection (PRP Table II), stages (PRP Table I), models.

Each builder takes one scenario's per-seed rows (:func:`hansbench.bench.leaderboard.per_seed`) and returns
:class:`~hansbench.bench.leaderboard.Table` objects; cells come from :mod:`hansbench.bench.cells`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from hansbench.bench import cells
from hansbench.bench.leaderboard import FALLBACK_MARK, GATE_MARK, SECTIONS, Presentation, Table
from hansbench.bench.stats import Interval, format_number

MINUS = " − "  # column names of values shown relative to the reference (display only; the CSV says relative_to)


@dataclass
class Context:
    """What every table of a run shares: the run config (seeds) and the explainers' earned marks."""

    config: dict = field(default_factory=dict)
    marks: dict = field(default_factory=dict)

    @property
    def seed_config(self) -> dict:
        return dict(self.config.get("suite", {}) or {})

    def label(self, explainer: str, model: str) -> str:
        symbols = "".join(self.marks.get(model, {}).get(explainer, []))
        return f"{explainer} {symbols}" if symbols else explainer

    def mark_notes(self, model: str, explainers) -> list[str]:
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
    return d[d.metric.isin(p.headline)] if p.headline else d


def column_name(r: pd.Series, relative: str = "", with_stage: bool = True) -> str:
    name = r["metric"] + (f"{MINUS}{relative}" if relative else "")
    parts = [name] + [x for x in (r["split"], r["stage"] if with_stage else "", r["coldetail"]) if x]
    return " / ".join(parts)


def header(column: str, unit: str, higher: bool, directed: bool) -> str:
    """'<column> [unit] ↑': the unit where declared (a 0/1 flag's "bool" is none), an arrow only where better
    exists."""
    u = f" [{unit}]" if unit and unit != "bool" else ""
    return f"{column}{u}{(' ↑' if higher else ' ↓') if directed else ''}"


def gate_suffix(model: str, gates: dict[str, list[str]], ranked: bool = True) -> str:
    return f" {GATE_MARK}" if ranked and model in gates else ""


def gate_extra(model: str, gates: dict[str, list[str]]) -> list[str]:
    if model not in gates:
        return []
    return [f"{GATE_MARK} {model}: {'; '.join(gates[model])}: shown, not ranked."]


def title_of(table_id: str) -> str:
    """A heading from the table id ("cluster-detection" -> "Cluster detection")."""
    return table_id.replace("-", " ").replace("_", " ").capitalize() or "Table"


def meanings(ps: list[Presentation]) -> str:
    text = "; ".join(dict.fromkeys(f"{p.family}: {p.meaning.rstrip('.')}" for p in ps if p.meaning))
    return text + "." if text else ""


def intervals(g: pd.DataFrame, keys: list[str]) -> dict[tuple, Interval]:
    return {k if isinstance(k, tuple) else (k,): cells.interval(sub) for k, sub in g.groupby(keys, sort=False)}


def seeds_of(g: pd.DataFrame) -> list:
    return sorted(dict.fromkeys(int(s) for s in g.seed.dropna()))


def series(g: pd.DataFrame) -> pd.Series:
    """Values by seed (one per seed)."""
    return g.groupby("seed")["value"].mean()


def oriented(x: float, higher: bool) -> float:
    """Lower is better after orientation."""
    return -x if higher else x


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
        t += (" " + marks[(e, c)] if (e, c) in marks else "") + (suffix if t != "–" else "") + \
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
    return [_table(f"{title_of(table_id)}: {model}", disp, sort, tidy, g, ctx, iv, comps, names, extra, table_id,
                   "explainer", model, SECTIONS["explainer"] if ranked_table else SECTIONS["unranked"])]


def _table(title, disp, sort, tidy, g, ctx, iv, comps, names, extra, table_id, shape, model, section) -> Table:
    ns = [x.n for x in iv.values()]
    boot = any(x.method == "bootstrap" for x in iv.values())
    how = cells.interval_note(ns, seeds_of(g), ctx.seed_config, boot)
    tests = cells.tests_note(comps, names)
    caption = " ".join(x for x in (f"{title}.", how, tests) if x)
    note = " ".join(x for x in [how, tests, *extra] if x)
    return Table(title, pd.DataFrame(disp), note, table_id, shape, model, pd.DataFrame(sort), pd.DataFrame(tidy),
                 caption, section)


# -- detection tables ----------------------------------------------------------------------------------------------
def value_groups(ps: list[Presentation]) -> list[tuple[str, tuple[str, ...]]]:
    """(label, values) of a detection table's parts: label-free and label-matched where declared, else the
    headline values."""
    free = tuple(dict.fromkeys(v for p in ps for v in p.label_free))
    matched = tuple(dict.fromkeys(v for p in ps for v in p.label_matched))
    if free or matched:
        return [(lab, vals) for lab, vals in (("label-free", free), ("label-matched, PRP Table II", matched)) if vals]
    return [("", tuple(dict.fromkeys(v for p in ps for v in p.headline)))]


def detection_tables(d: pd.DataFrame, ps: list[Presentation], model: str, gates: dict[str, list[str]],
                     table_id: str, ctx: Context) -> list[Table]:
    """Explainer (or a non-explanation input) x clusterer, each cell the group's values joined by ' / '."""
    out = []
    kinds, raw_kinds = input_kinds()
    ref_names = {p.reference_explainer for p in ps if p.reference_explainer}
    for label, values in value_groups(ps):
        g = d[d.clusterer != ""]
        g = g[g.metric.isin(values)] if values else g
        g = g[g.groupby("metric").value.transform(lambda v: v.notna().any())]
        if g.empty:
            continue
        values = [v for v in (values or dict.fromkeys(g.metric)) if v in set(g.metric)]
        sub_of = dict(tuple(g.groupby(["explainer", "clusterer", "metric"], sort=False)))
        iv = {k: cells.interval(sub) for k, sub in sub_of.items()}
        n_max = max((x.n for x in iv.values()), default=0)
        explainers = list(dict.fromkeys(g.explainer))
        explainers = ([e for e in explainers if e not in kinds and e not in ref_names]
                      + [e for e in explainers if e in kinds] + [e for e in explainers if e in ref_names])
        clusterers = list(dict.fromkeys(g.clusterer))
        first = values[0]
        meta = g[g.metric == first].iloc[0]
        higher, directed = bool(meta["higher_is_better"]), bool(meta["directed"])
        by = {k: series(sub) for k, sub in g[g.metric == first].groupby(["explainer", "clusterer"], sort=False)}
        comps: list[cells.Comparison] = []
        if directed and model not in gates:
            for (e, c), s in by.items():
                if e in ref_names or e in kinds:
                    continue
                for base, mark in [((r, c), cells.SIG_MARK) for r in ref_names] + [((k, c), cells.CONTROL_MARK)
                                                                                   for k in raw_kinds]:
                    if base in by:
                        comps.append(cells.compare(s, by[base], who=(e, c), column=first, against=base[0], mark=mark,
                                                   higher=higher))
            ranked = sorted((k for k in by if math.isfinite(iv[(*k, first)].mean)),
                            key=lambda k: oriented(iv[(*k, first)].mean, higher))
            if len(ranked) >= 2:
                comps.append(cells.compare(by[ranked[0]], by[ranked[1]], who=ranked[0], column=first,
                                           against=" × ".join(ranked[1]), mark=cells.BEST_MARK, higher=higher))
        marks = cells.marks_of(cells.correct(comps))
        suffix = gate_suffix(model, gates)
        disp, sort, tidy = [], [], []
        for e in explainers:
            lab = ctx.label(e, model) + (" (no explanation)" if e in kinds else " (reference)" if e in ref_names else "")
            drow, srow = {"explainer": lab}, {"explainer": lab}
            for c in clusterers:
                parts, fb = [], False
                for v in values:
                    if (e, c, v) in iv:
                        parts.append(cells.text(iv[(e, c, v)], n_max))
                        sub = sub_of[(e, c, v)]
                        fb = fb or bool(sub.fallback.any())
                        r0 = sub.iloc[0]
                        tidy.append(cells.tidy(iv[(e, c, v)], r0["unit"],
                                               bool(r0["higher_is_better"]) if r0["directed"] else None, model=model,
                                               explainer=e, clusterer=c, metric=v, group=label))
                    elif parts:
                        parts.append("–")
                text = " / ".join(parts) if any(x != "–" for x in parts) else ""
                mk = marks.get((e, c, first), "")
                drow[c] = text + (f" {mk}" if mk and text else "") + (suffix if text else "") + \
                    (f" {FALLBACK_MARK}" if fb and text else "")
                srow[c] = iv[(e, c, first)].mean if (e, c, first) in iv else np.nan
            disp.append(drow)
            sort.append(srow)
        units = g.groupby("metric", sort=False)["unit"].first()
        dirs = g.groupby("metric", sort=False)[["higher_is_better", "directed"]].first()
        what = " / ".join(header(v, units[v], bool(dirs.loc[v, "higher_is_better"]), bool(dirs.loc[v, "directed"]))
                          for v in values)
        extra = [f"Cells: {what}; rows: explainer, a non-explanation input ('no explanation') or the reference; "
                 "columns: clusterer.", meanings(ps)]
        if label.startswith("label-matched"):
            extra.append("Label-matched: the cluster is matched to the poisoned flag with the ground truth (Hungarian), "
                         "which an auditor does not have; the label-free table is the headline.")
        extra += gate_extra(model, gates)
        if g.fallback.any():
            extra.append(f"{FALLBACK_MARK} the clusterer fell back to a simpler procedure on at least one seed.")
        extra += ctx.mark_notes(model, explainers)
        names = {cells.SIG_MARK: "the reference explainer with the same clusterer",
                 cells.CONTROL_MARK: "the raw-input control with the same clusterer",
                 cells.BEST_MARK: "the runner-up of the table"}
        title = f"{title_of(table_id)}{', ' + label if label else ''}: {model}"
        tid = table_id if not label or label == "label-free" else f"{table_id}-label-matched"
        out.append(_table(title, disp, sort, tidy, g, ctx, iv, comps, names, extra, tid, "detection", model,
                          SECTIONS["detection"]))
    return out


# -- stages and model tables -------------------------------------------------------------------------------------
def _method(r: pd.Series, stage_is_column: bool, ctx: Context) -> str:
    parts = [ctx.label(r["explainer"], r["model"]) if r["explainer"] else "", r["clusterer"]]
    name = " + ".join(x for x in parts if x)
    if name:
        return name
    if r["stage"] and not stage_is_column:
        return r["stage"]
    return r["family"]


def stages_tables(d: pd.DataFrame, ps: list[Presentation], model: str, gates: dict[str, list[str]],
                  table_id: str, ctx: Context) -> list[Table]:
    """An intervention's stages: declared stages as columns (PRP Table I), other stages as rows."""
    stage_cols = tuple(dict.fromkeys(s for p in ps for s in p.stages))
    parts = [headline(d[d.family == p.family], p) for p in ps]
    parts = [x for x in parts if not x.empty]
    if not parts:
        return []
    g = pd.concat(parts, ignore_index=True)
    as_col = g.stage.isin(stage_cols) if stage_cols else pd.Series(False, index=g.index)
    g = g.assign(method=[_method(r, bool(c), ctx) for (_, r), c in zip(g.iterrows(), as_col)])
    if stage_cols:
        g = g.assign(column=[" / ".join(x for x in (r["metric"], r["stage"] if c else "", r["coldetail"]) if x)
                             for (_, r), c in zip(g.iterrows(), as_col)])
        splits = sorted(s for s in g.split.unique() if s) or [""]
        no_split = g[g.split == ""]
        g = pd.concat([g[g.split != ""]] + [no_split.assign(split=s) for s in splits], ignore_index=True)
        index = ["method", "split"]
        order = {s: i for i, s in enumerate(stage_cols)}
        metric_order = list(dict.fromkeys(g.metric))
        columns = sorted(dict.fromkeys(g.column), key=lambda c: (
            metric_order.index(c.split(" / ")[0]), next((order[s] for s in c.split(" / ")[1:] if s in order), -1)))
    else:
        g = g.assign(column=[column_name(r, with_stage=False) for _, r in g.iterrows()])
        index = ["method"]
        columns = list(dict.fromkeys(g.column))
    first = g.groupby("column")[["higher_is_better", "unit", "directed", "metric"]].first()
    sub_of = {k if isinstance(k, tuple) else (k,): sub for k, sub in g.groupby(index + ["column"], sort=False)}
    iv = {k: cells.interval(sub) for k, sub in sub_of.items()}
    n_max = max((x.n for x in iv.values()), default=0)
    rows = list(dict.fromkeys(tuple(r) for r in g[index].itertuples(index=False)))
    suffix = gate_suffix(model, gates)
    headers = {c: header(c, first.loc[c, "unit"], bool(first.loc[c, "higher_is_better"]),
                         bool(first.loc[c, "directed"])) for c in columns}
    disp, sort, tidy = [], [], []
    for key in rows:
        drow = dict(zip(index, key))
        srow = dict(drow)
        for c in columns:
            k = (*key, c)
            if k in iv:
                t = cells.text(iv[k], n_max)
                fb = sub_of[k].fallback.any()
                drow[headers[c]] = t + (suffix if t != "–" else "") + (f" {FALLBACK_MARK}" if fb else "")
                srow[headers[c]] = iv[k].mean
                tidy.append(cells.tidy(iv[k], first.loc[c, "unit"], bool(first.loc[c, "higher_is_better"])
                                       if first.loc[c, "directed"] else None, model=model,
                                       **dict(zip(index, key)), metric=first.loc[c, "metric"], column=c))
            else:
                drow[headers[c]], srow[headers[c]] = "", np.nan
        disp.append(drow)
        sort.append(srow)
    extra = [meanings(ps)] + gate_extra(model, gates)
    if g.fallback.any():
        extra.append(f"{FALLBACK_MARK} the clusterer fell back to a simpler procedure on at least one seed.")
    extra += ctx.mark_notes(model, set(g.explainer))
    return [_table(f"{title_of(table_id)}: {model}", disp, sort, tidy, g, ctx, iv, [], {}, extra, table_id, "stages",
                   model, SECTIONS["stages"])]


def model_tables(d: pd.DataFrame, ps: list[Presentation], gates: dict[str, list[str]], table_id: str, ctx: Context,
                 status: bool = False) -> list[Table]:
    """One row per model kind: the headline values (reliance: with its status from the gates)."""
    parts = [headline(d[d.family == p.family], p) for p in ps]
    g = pd.concat(parts, ignore_index=True) if parts else d.iloc[:0]
    if g.empty:
        return []
    g = g.assign(column=[column_name(r) for _, r in g.iterrows()])
    columns = list(dict.fromkeys(g.column))
    first = g.groupby("column")[["higher_is_better", "unit", "directed", "metric", "split", "stage"]].first()
    iv = intervals(g, ["model", "column"])
    n_max = max((x.n for x in iv.values()), default=0)
    headers = {c: header(c, first.loc[c, "unit"], bool(first.loc[c, "higher_is_better"]),
                         bool(first.loc[c, "directed"])) for c in columns}
    disp, sort, tidy = [], [], []
    for m in dict.fromkeys(g.model):
        drow, srow = {"model": m}, {"model": m}
        if status:
            drow["status"] = srow["status"] = "; ".join(gates[m]) if m in gates else "ranked"
        for c in columns:
            if (m, c) in iv:
                drow[headers[c]], srow[headers[c]] = cells.text(iv[(m, c)], n_max), iv[(m, c)].mean
                r0 = first.loc[c]
                tidy.append(cells.tidy(iv[(m, c)], r0["unit"], bool(r0["higher_is_better"]) if r0["directed"] else None,
                                       model=m, metric=r0["metric"], split=r0["split"], stage=r0["stage"]))
            else:
                drow[headers[c]], srow[headers[c]] = "", np.nan
        disp.append(drow)
        sort.append(srow)
    extra = [meanings(ps)]
    if status:
        extra.append("A model whose poisoning did not take, or that is near chance, is shown but not ranked.")
    return [_table(title_of(table_id), disp, sort, tidy, g, ctx, iv, [], {}, extra, table_id,
                   "reliance" if status else "model", "", SECTIONS["reliance" if status else "model"])]
