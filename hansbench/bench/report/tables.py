"""The leaderboard's table shapes: detection (PRP Table II), stages (PRP Table I), models, and the pieces every
table shares; the explainer rankings are in :mod:`hansbench.bench.report.ranking_tables`.

Each builder takes one scenario's per-seed rows (:func:`hansbench.bench.report.leaderboard.per_seed`) and returns
:class:`~hansbench.bench.report.leaderboard.Table` objects; cells come from :mod:`hansbench.bench.report.cells`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hansbench.bench.report import cells
from hansbench.bench.report.leaderboard import FALLBACK_MARK, GATE_MARK, SECTIONS, Presentation, Table
from hansbench.bench.report.stats import Interval

MINUS = " − "  # column names of values shown relative to the reference (display only; the CSV says relative_to)


@dataclass
class Context:
    """What every table of a run shares: the run config (seeds) and the explainers' earned marks."""

    config: dict = field(default_factory=dict)
    marks: dict = field(default_factory=dict)

    @property
    def seed_config(self) -> dict:
        """The suite's ``[suite]`` table (seeds, dev_seeds) from the run config."""
        return dict(self.config.get("suite", {}) or {})

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


def intervals(g: pd.DataFrame, keys: list[str]) -> dict[tuple, Interval]:
    """The interval of each group of ``g`` by ``keys`` (keys always tuples)."""
    return {k if isinstance(k, tuple) else (k,): cells.interval(sub) for k, sub in g.groupby(keys, sort=False)}


def seeds_of(g: pd.DataFrame) -> list:
    """The sorted distinct seeds of ``g``."""
    return sorted(dict.fromkeys(int(s) for s in g.seed.dropna()))


def series(g: pd.DataFrame) -> pd.Series:
    """Values by seed (one per seed)."""
    return g.groupby("seed")["value"].mean()


def oriented(x: float, higher: bool) -> float:
    """Lower is better after orientation."""
    return -x if higher else x


def make_table(title, disp, sort, tidy, g, ctx, iv, comps, names, extra, table_id, shape, model, section) -> Table:
    """A :class:`Table` with its caption and note: how the intervals were made (n, seeds) and the tests."""
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
                parts, fb, any_shown = [], False, False
                for v in values:
                    if (e, c, v) in iv:
                        parts.append(cells.text(iv[(e, c, v)], n_max))
                        any_shown = any_shown or cells.shown(iv[(e, c, v)])
                        sub = sub_of[(e, c, v)]
                        fb = fb or bool(sub.fallback.any())
                        r0 = sub.iloc[0]
                        tidy.append(cells.tidy(iv[(e, c, v)], r0["unit"],
                                               bool(r0["higher_is_better"]) if r0["directed"] else None, model=model,
                                               explainer=e, clusterer=c, metric=v, group=label))
                    elif parts:
                        parts.append("–")
                text = " / ".join(parts) if any_shown else ""
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
        out.append(make_table(title, disp, sort, tidy, g, ctx, iv, comps, names, extra, tid, "detection", model,
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
                drow[headers[c]] = t + (suffix if cells.shown(iv[k]) else "") + (f" {FALLBACK_MARK}" if fb else "")
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
    return [make_table(f"{title_of(table_id)}: {model}", disp, sort, tidy, g, ctx, iv, [], {}, extra, table_id, "stages",
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
    return [make_table(title_of(table_id), disp, sort, tidy, g, ctx, iv, [], {}, extra, table_id,
                   "reliance" if status else "model", "", SECTIONS["reliance" if status else "model"])]
