"""Leaderboard tables: views over the tidy metric rows (written by :mod:`hansbench.bench.publish`).

Every table is built from the metrics' own presentation metadata (``hansbench.metrics.base.Metric``:
``table``, ``table_shape``, ``headline``, ``relative_to_random``, ``reference_explainer``, ``ranked``,
``meaning``, ``stages``, ``column_detail``, ``gates``, ``supersedes``) looked up by the rows' ``family``;
no metric or method is named here. A family nobody registered (rows of an uninstalled plugin) gets
a table of its own from the defaults. The runner's timer (family :data:`TIMING_FAMILY`) is described by
:data:`TIMING`, the one place bench says how its rows are shown.

Per scenario: the reliance summary (did the poisoning take? it gates the ranks), one explainer table
per model kind (the reference explainer as a row of its own; raw scores as value minus reference),
the explainer x clusterer detection tables (PRP Table II), intervention stages (PRP Table I, data
cleaning), per-model tables, timing, and what was not computed and why. Every cell is the mean ±
std over seeds (n shown where it is not the table's); ranks use the means.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

TIMING_FAMILY = "timing"  # the family the runner gives its timing rows (graph.Planner.timing)
SHAPES = ("reliance", "explainer", "detection", "stages", "model")
STR_COLUMNS = ("scenario", "model", "explainer", "clusterer", "family", "metric", "split", "stage", "detail", "unit")
FALLBACK_MARK = "†"
GATE_MARK = "‡"


@dataclass(frozen=True)
class Presentation:
    """How one family's rows are shown (the metric's class attributes, with defaults filled in)."""

    family: str
    table: str
    shape: str
    headline: tuple[str, ...] = ()
    relative_to_random: bool = False
    reference_explainer: str = ""
    ranked: bool = True
    meaning: str = ""
    stages: tuple[str, ...] = ()
    column_detail: str = ""
    gates: dict = field(default_factory=dict)
    supersedes: tuple[str, ...] = ()


def _timing_presentation() -> Presentation:
    from hansbench.bench.execute import TIMING_VALUES

    return Presentation(TIMING_FAMILY, "timing", "explainer", tuple(TIMING_VALUES), ranked=False,
                        meaning="median over repeats; gradient units = time / one forward+backward pass of the same "
                                "model on the same batch")


TIMING = _timing_presentation()
_LEVEL_SHAPE = {"model": "model", "explainer": "explainer", "clustering": "detection"}


def presentation(family: str, rows: pd.DataFrame | None = None) -> Presentation:
    """The presentation of ``family``: the registered metric's metadata, :data:`TIMING`, or defaults."""
    if family == TIMING_FAMILY:
        return TIMING
    from hansbench.registry import UnknownNameError, metrics

    try:
        cls = metrics.get(family)
    except (UnknownNameError, KeyError):
        cls = None
    if cls is None:  # rows of a family nobody registered here: shape from the rows themselves
        shape = "model"
        if rows is not None and not rows.empty:
            if (rows.clusterer != "").any():
                shape = "detection"
            elif (rows.explainer != "").any():
                shape = "explainer"
        return Presentation(family, family, shape, meaning="(no metric of this name is installed)")
    shape = getattr(cls, "table_shape", "") or _LEVEL_SHAPE.get(getattr(cls, "level", ""), "model")
    if shape not in SHAPES:
        raise ValueError(f"metric {family!r} declares table_shape {shape!r}; use one of {', '.join(SHAPES)}")
    doc = (cls.__doc__ or "").strip().splitlines()
    return Presentation(
        family, getattr(cls, "table", "") or family, shape, tuple(getattr(cls, "headline", ())),
        bool(getattr(cls, "relative_to_random", False)), str(getattr(cls, "reference_explainer", "") or ""),
        bool(getattr(cls, "ranked", True)), getattr(cls, "meaning", "") or (doc[0] if doc else ""),
        tuple(getattr(cls, "stages", ())), str(getattr(cls, "column_detail", "") or ""),
        dict(getattr(cls, "gates", {}) or {}), tuple(getattr(cls, "supersedes", ())))


@dataclass
class Table:
    """One table: ``frame`` holds the displayed strings, ``sort`` the numbers behind them (HTML sorting),
    ``tidy`` the aggregated numbers (the CSV)."""

    title: str
    frame: pd.DataFrame
    note: str = ""
    id: str = ""
    shape: str = ""
    model: str = ""
    sort: pd.DataFrame | None = None
    tidy: pd.DataFrame | None = None


@dataclass
class Section:
    scenario: str
    tables: list[Table]
    summary: list[dict]  # per model: status, best explainer, best explainer x clusterer
    omitted: list[str]
    figures: list[Any] = field(default_factory=list)


# -- numbers --------------------------------------------------------------------------------------------
def format_value(v: object) -> str:
    if isinstance(v, (float, np.floating)):
        if np.isnan(v):
            return "–"
        if v == 0:
            return "0"
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v)


def _cell(mean: float, std: float, n: int, n_max: int) -> str:
    if n == 0 or mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    text = format_value(mean) if n < 2 or std is None or math.isnan(std) else f"{format_value(mean)} ± {format_value(std)}"
    return text + (f" (n={n})" if n != n_max else "")


def _detail_value(detail: str, key: str) -> str:
    try:
        value = json.loads(detail)
    except (TypeError, ValueError):
        return ""
    return format_value(value.get(key, "")) if isinstance(value, dict) else ""


def _fell_back(detail: str) -> bool:
    if "fallback" not in str(detail):
        return False
    try:
        value = json.loads(detail)
    except (TypeError, ValueError):
        return False
    return isinstance(value, dict) and value.get("fallback") is True


def normalise(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows from the store or a CSV: strings for the name columns, bool directions."""
    df = rows.copy()
    for c in STR_COLUMNS:
        if c in df:
            df[c] = df[c].fillna("").astype(str)
    df["higher_is_better"] = df["higher_is_better"].astype(bool)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    return df


def _per_seed(df: pd.DataFrame, pres: dict[str, Presentation]) -> pd.DataFrame:
    """One value per (seed, combination, value column): rows of a seed averaged (e.g. over details)."""
    df = df.assign(coldetail=[_detail_value(d, pres[f].column_detail) if pres[f].column_detail else ""
                              for f, d in zip(df.family, df.detail)],
                   fallback=[_fell_back(d) for d in df.detail])
    keys = ["scenario", "seed", "model", "explainer", "clusterer", "family", "metric", "split", "stage", "coldetail"]
    return df.groupby(keys, sort=False, dropna=False).agg(
        value=("value", "mean"), higher_is_better=("higher_is_better", "first"), unit=("unit", "first"),
        fallback=("fallback", "any")).reset_index()


def _stats(g: pd.DataFrame) -> pd.Series:
    v = g["value"].dropna()
    return pd.Series({"mean": v.mean() if len(v) else np.nan, "std": v.std(ddof=1) if len(v) > 1 else np.nan,
                      "n": int(len(v)), "fallback": bool(g["fallback"].any())})


def _headline(d: pd.DataFrame, p: Presentation) -> pd.DataFrame:
    return d[d.metric.isin(p.headline)] if p.headline else d


def _column(r: pd.Series, relative: str = "", with_stage: bool = True) -> str:
    name = r["metric"] + (f" − {relative}" if relative else "")
    parts = [name] + [x for x in (r["split"], r["stage"] if with_stage else "", r["coldetail"]) if x]
    return " / ".join(parts)


def _arrow(higher: bool) -> str:
    return "↑" if higher else "↓"


# -- gates (reliance) -------------------------------------------------------------------------------
def gate_notes(seeded: pd.DataFrame, pres: dict[str, Presentation]) -> dict[str, list[str]]:
    """Per model kind: the notes of failed gates ("poisoning did not take (seed 1)"); no entry = ranked."""
    notes: dict[str, list[str]] = {}
    for family, p in pres.items():
        if not p.gates:
            continue
        d = seeded[(seeded.family == family) & seeded.metric.isin(p.gates)]
        for _, r in d.iterrows():
            v = r["value"]
            if v is None or math.isnan(v):
                continue
            failed = v < 0.5 if r["higher_is_better"] else v > 0.5
            if failed:
                notes.setdefault(r["model"], []).append(f"{p.gates[r['metric']]} (seed {r['seed']})")
    return {m: sorted(set(v)) for m, v in notes.items()}


# -- tables -----------------------------------------------------------------------------------------
def _gate_suffix(model: str, gates: dict[str, list[str]], ps: list[Presentation] | None = None) -> str:
    """The gate mark of a gated model's cells (not on unranked tables such as timing)."""
    if ps is not None and not any(p.ranked for p in ps):
        return ""
    return f" {GATE_MARK}" if model in gates else ""


def _notes(p_list: list[Presentation], n_max: int, extra: list[str]) -> str:
    meaning = "; ".join(dict.fromkeys(f"{p.family}: {p.meaning.rstrip('.')}" for p in p_list if p.meaning))
    seeds = f"mean ± std over {n_max} seeds" if n_max > 1 else "one seed (no std)"
    return " ".join(x for x in [f"{seeds}.", meaning + "." if meaning else "", *extra] if x)


def explainer_table(d: pd.DataFrame, ps: list[Presentation], model: str, gates: dict[str, list[str]],
                    table_id: str) -> Table | None:
    """Explainers x headline values of one model kind, the reference explainer as a row of its own."""
    parts, refs = [], set()
    for p in ps:
        g = _headline(d[d.family == p.family], p)
        if g.empty:
            continue
        ref = p.reference_explainer if p.relative_to_random else ""
        if ref and (g.explainer == ref).any():
            refs.add(ref)
            key = ["seed", "metric", "split", "stage", "coldetail"]
            base = g[g.explainer == ref][key + ["value"]].rename(columns={"value": "ref"})
            g = g.merge(base, on=key, how="left")
            g = g.assign(raw=g["value"], value=np.where(g.explainer == ref, g["value"], g["value"] - g["ref"]),
                         column=[_column(r, ref) for _, r in g.iterrows()])
        else:
            g = g.assign(column=[_column(r) for _, r in g.iterrows()])
        g = g.assign(family=p.family, ranked=p.ranked)
        parts.append(g)
    if not parts:
        return None
    g = pd.concat(parts, ignore_index=True)
    columns = list(dict.fromkeys(g.column))
    direction = g.groupby("column", sort=False)["higher_is_better"].first()
    stats = g.groupby(["explainer", "column"], sort=False).apply(_stats, include_groups=False)
    n_max = int(stats["n"].max()) if len(stats) else 0
    explainers = list(dict.fromkeys(g.explainer))
    means = stats["mean"].unstack("column").reindex(index=explainers, columns=columns)
    ranked_cols = [c for c in columns if g[g.column == c].ranked.iloc[0]]
    candidates = [e for e in explainers if e not in refs]
    gated = model in gates
    rank = pd.DataFrame(index=explainers, dtype=float)
    if ranked_cols and not gated:
        for c in ranked_cols:
            col = means.loc[candidates, c]
            if col.notna().sum() > 1:
                rank[c] = col.rank(ascending=not direction[c])
    mean_rank = rank.mean(axis=1) if rank.shape[1] else pd.Series(np.nan, index=explainers)
    order = sorted(candidates, key=lambda e: (np.nan_to_num(mean_rank.get(e, np.nan), nan=np.inf),
                                              explainers.index(e))) + [e for e in explainers if e in refs]
    if not ranked_cols and columns:  # unranked tables (timing): by the first column, best first
        c0 = columns[0]
        order = sorted(explainers, key=lambda e: (np.nan_to_num(means.loc[e, c0] * (-1 if direction[c0] else 1),
                                                                nan=np.inf)))
    disp, sort = [], []
    suffix = _gate_suffix(model, gates, ps)
    for e in order:
        label = f"{e} (reference)" if e in refs else e
        drow, srow = {"explainer": label}, {"explainer": label}
        for c in columns:
            if (e, c) not in stats.index:
                drow[c], srow[c] = "", np.nan
                continue
            s = stats.loc[(e, c)]
            text = _cell(s["mean"], s["std"], int(s["n"]), n_max)
            if e in refs and " − " in c:
                raw = g[(g.explainer == e) & (g.column == c)]["raw"]
                text = f"raw {_cell(raw.mean(), raw.std(ddof=1) if len(raw) > 1 else np.nan, len(raw), n_max)}"
            drow[c] = text + (suffix if text != "–" else "") + (f" {FALLBACK_MARK}" if s["fallback"] else "")
            srow[c] = s["mean"]
        if ranked_cols:
            mr = mean_rank.get(e, np.nan) if e not in refs else np.nan
            drow["mean rank ↓"], srow["mean rank ↓"] = format_value(mr), mr
        disp.append(drow)
        sort.append(srow)
    headers = {c: f"{c} {_arrow(direction[c])}" for c in columns}
    frame = pd.DataFrame(disp).rename(columns=headers)
    sort_frame = pd.DataFrame(sort).rename(columns=headers)
    extra = []
    if refs:
        extra.append(f"Columns '− {', '.join(sorted(refs))}': value minus the reference explainer's on the same seed, "
                     "split and model; its own row shows its raw value and is not ranked.")
    elif any(p.relative_to_random for p in ps):
        extra.append("No reference explainer in this run: raw values (not comparable across models).")
    if ranked_cols:
        extra.append("Ranked per column by the value's direction (means), then averaged.")
    extra += _gate_extra(model, gates) if suffix else []
    if g.fallback.any():
        extra.append(f"{FALLBACK_MARK} the clusterer fell back to a simpler procedure.")
    tidy = stats.reset_index().assign(model=model)
    title = f"{_title(table_id, ps)}: {model}"
    return Table(title, frame, _notes(ps, n_max, extra), table_id, "explainer", model, sort_frame, tidy)


def _gate_extra(model: str, gates: dict[str, list[str]]) -> list[str]:
    if model not in gates:
        return []
    return [f"{GATE_MARK} {model}: {'; '.join(gates[model])}: shown, not ranked."]


def _title(table_id: str, ps: list[Presentation]) -> str:
    """A heading from the table id ("cluster-detection" -> "Cluster detection")."""
    return table_id.replace("-", " ").replace("_", " ").capitalize() or "Table"


def detection_table(d: pd.DataFrame, ps: list[Presentation], model: str, gates: dict[str, list[str]],
                    table_id: str) -> Table | None:
    """Explainer x clusterer, each cell the headline values joined by ' / ' (PRP Table II: ACC % / F1)."""
    parts = [_headline(d[d.family == p.family], p) for p in ps]
    g = pd.concat(parts, ignore_index=True) if parts else d.iloc[:0]
    g = g[g.clusterer != ""]
    if g.empty:
        return None
    values = list(dict.fromkeys(g.metric))
    stats = g.groupby(["explainer", "clusterer", "metric"], sort=False).apply(_stats, include_groups=False)
    n_max = int(stats["n"].max())
    explainers, clusterers = list(dict.fromkeys(g.explainer)), list(dict.fromkeys(g.clusterer))
    suffix = _gate_suffix(model, gates)
    disp, sort = [], []
    for e in explainers:
        drow, srow = {"explainer": e}, {"explainer": e}
        for c in clusterers:
            cells, fb, first = [], False, np.nan
            for i, v in enumerate(values):
                if (e, c, v) in stats.index:
                    s = stats.loc[(e, c, v)]
                    cells.append(_cell(s["mean"], s["std"], int(s["n"]), n_max))
                    fb = fb or bool(s["fallback"])
                    if i == 0:
                        first = s["mean"]
                elif cells or i == 0:
                    cells.append("–")
            text = " / ".join(cells) if any(x != "–" for x in cells) else ""
            drow[c] = text + (suffix if text else "") + (f" {FALLBACK_MARK}" if fb and text else "")
            srow[c] = first
        disp.append(drow)
        sort.append(srow)
    units = g.groupby("metric", sort=False)["unit"].first()
    what = " / ".join(f"{v}{' ' + units[v] if units[v] else ''} {_arrow(g[g.metric == v].higher_is_better.iloc[0])}"
                      for v in values)
    extra = [f"Cells: {what}; rows: explainer (or the clusterer's own input), columns: clusterer."]
    extra += _gate_extra(model, gates)
    if stats["fallback"].any():
        extra.append(f"{FALLBACK_MARK} the clusterer fell back to a simpler procedure on at least one seed.")
    direction = g.groupby("metric", sort=False)["higher_is_better"].first()
    tidy = stats.reset_index().assign(model=model)
    tidy["higher_is_better"] = tidy.metric.map(direction).astype(bool)
    return Table(f"{_title(table_id, ps)}: {model}", pd.DataFrame(disp), _notes(ps, n_max, extra), table_id,
                 "detection", model, pd.DataFrame(sort), tidy)


def _method(r: pd.Series, stage_is_column: bool) -> str:
    name = " + ".join(x for x in (r["explainer"], r["clusterer"]) if x)
    if name:
        return name
    if r["stage"] and not stage_is_column:
        return r["stage"]
    return r["family"]


def stages_table(d: pd.DataFrame, ps: list[Presentation], model: str, gates: dict[str, list[str]],
                 table_id: str) -> Table | None:
    """An intervention's stages: declared stages as columns (PRP Table I), other stages as rows."""
    stage_cols = tuple(dict.fromkeys(s for p in ps for s in p.stages))
    parts = []
    for p in ps:
        g = _headline(d[d.family == p.family], p)
        if g.empty:
            continue
        parts.append(g)
    if not parts:
        return None
    g = pd.concat(parts, ignore_index=True)
    as_col = g.stage.isin(stage_cols) if stage_cols else pd.Series(False, index=g.index)
    g = g.assign(method=[_method(r, bool(c)) for (_, r), c in zip(g.iterrows(), as_col)])
    if stage_cols:
        # rows: method x split; columns: value / stage (values without a split go on every split's row)
        g = g.assign(column=[" / ".join(x for x in (r["metric"], r["stage"] if c else "", r["coldetail"]) if x)
                             for (_, r), c in zip(g.iterrows(), as_col)])
        splits = sorted(s for s in g.split.unique() if s) or [""]
        no_split = g[g.split == ""]
        g = pd.concat([g[g.split != ""]] + [no_split.assign(split=s) for s in splits], ignore_index=True)
        index = ["method", "split"]
        order = {s: i for i, s in enumerate(stage_cols)}
        columns = sorted(dict.fromkeys(g.column), key=lambda c: (
            list(dict.fromkeys(g.metric)).index(c.split(" / ")[0]),
            next((order[s] for s in c.split(" / ")[1:] if s in order), -1)))
    else:
        g = g.assign(column=[_column(r, with_stage=False) for _, r in g.iterrows()])
        index = ["method"]
        columns = list(dict.fromkeys(g.column))
    direction = g.groupby("column")["higher_is_better"].first()
    stats = g.groupby(index + ["column"], sort=False).apply(_stats, include_groups=False)
    n_max = int(stats["n"].max())
    rows = list(dict.fromkeys(tuple(r) for r in g[index].itertuples(index=False)))
    suffix = _gate_suffix(model, gates)
    disp, sort = [], []
    for key in rows:
        drow = dict(zip(index, key))
        srow = dict(drow)
        for c in columns:
            k = (*key, c)
            if k in stats.index:
                s = stats.loc[k]
                text = _cell(s["mean"], s["std"], int(s["n"]), n_max)
                drow[c] = text + (suffix if text != "–" else "") + (f" {FALLBACK_MARK}" if s["fallback"] else "")
                srow[c] = s["mean"]
            else:
                drow[c], srow[c] = "", np.nan
        disp.append(drow)
        sort.append(srow)
    headers = {c: f"{c} {_arrow(direction[c])}" for c in columns}
    extra = _gate_extra(model, gates)
    if stats["fallback"].any():
        extra.append(f"{FALLBACK_MARK} the clusterer fell back to a simpler procedure on at least one seed.")
    tidy = stats.reset_index().assign(model=model)
    return Table(f"{_title(table_id, ps)}: {model}", pd.DataFrame(disp).rename(columns=headers),
                 _notes(ps, n_max, extra), table_id, "stages", model, pd.DataFrame(sort).rename(columns=headers), tidy)


def model_table(d: pd.DataFrame, ps: list[Presentation], gates: dict[str, list[str]], table_id: str,
                status: bool = False) -> Table | None:
    """One row per model kind: the headline values (reliance: with its status from the gates)."""
    parts = [_headline(d[d.family == p.family], p) for p in ps]
    g = pd.concat(parts, ignore_index=True) if parts else d.iloc[:0]
    if g.empty:
        return None
    g = g.assign(column=[_column(r) for _, r in g.iterrows()])
    columns = list(dict.fromkeys(g.column))
    direction = g.groupby("column")["higher_is_better"].first()
    units = g.groupby("column")["unit"].first()
    stats = g.groupby(["model", "column"], sort=False).apply(_stats, include_groups=False)
    n_max = int(stats["n"].max())
    disp, sort = [], []
    for m in dict.fromkeys(g.model):
        drow, srow = {"model": m}, {"model": m}
        if status:
            drow["status"] = "; ".join(gates[m]) if m in gates else "ranked"
            srow["status"] = drow["status"]
        for c in columns:
            if (m, c) in stats.index:
                s = stats.loc[(m, c)]
                drow[c], srow[c] = _cell(s["mean"], s["std"], int(s["n"]), n_max), s["mean"]
            else:
                drow[c], srow[c] = "", np.nan
        disp.append(drow)
        sort.append(srow)
    headers = {c: f"{c}{' ' + units[c] if units[c] and units[c] != 'bool' else ''} {_arrow(direction[c])}"
               for c in columns}
    extra = ["A model whose poisoning did not take, or that is near chance, is shown but not ranked."] if status else []
    tidy = stats.reset_index()
    return Table(_title(table_id, ps), pd.DataFrame(disp).rename(columns=headers), _notes(ps, n_max, extra),
                 table_id, "reliance" if status else "model", "", pd.DataFrame(sort).rename(columns=headers), tidy)


def _models(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df.model))


def build_sections(rows: pd.DataFrame, omitted: pd.DataFrame | None = None) -> list[Section]:
    """Per scenario: reliance, explainer tables per model, detection, stages, model tables, timing."""
    if rows.empty:
        rows = pd.DataFrame(columns=[*STR_COLUMNS, "seed", "value", "higher_is_better"])
    rows = normalise(rows)
    pres = {f: presentation(f, rows[rows.family == f]) for f in dict.fromkeys(rows.family)}
    out = []
    scenarios = list(dict.fromkeys(rows.scenario))
    if omitted is not None and not omitted.empty:
        scenarios += [s for s in dict.fromkeys(omitted.scenario.astype(str)) if s not in scenarios]
    for scenario in scenarios:
        df = rows[rows.scenario == scenario]
        fams = {f: pres[f] for f in dict.fromkeys(df.family)}
        seeded = _per_seed(df, fams) if not df.empty else df.assign(coldetail="", fallback=False)
        gates = gate_notes(seeded, fams)
        superseded = {s for p in fams.values() if p.shape == "reliance" for s in p.supersedes if s in fams}
        groups: dict[tuple[str, str], list[Presentation]] = {}
        for f, p in fams.items():
            if f in superseded:
                p = replace(p, table=p.family, shape="model")
            groups.setdefault((p.shape, p.table), []).append(p)
        tables: list[Table] = []
        rank = {"reliance": 0, "explainer": 1, "detection": 2, "stages": 3, "model": 4}
        ordered = sorted(groups.items(), key=lambda kv: (rank[kv[0][0]] + (5 if not any(p.ranked for p in kv[1])
                                                                             else 0)))
        for (shape, table_id), ps in ordered:
            d = seeded[seeded.family.isin([p.family for p in ps])]
            if shape in ("reliance", "model"):
                t = model_table(d, ps, gates, table_id, status=shape == "reliance")
                tables += [t] if t is not None else []
                continue
            build = {"explainer": explainer_table, "detection": detection_table, "stages": stages_table}[shape]
            for m in _models(d):
                t = build(d[d.model == m], ps, m, gates, table_id)
                tables += [t] if t is not None else []
        out.append(Section(scenario, tables, _summary(tables, _models(df), gates), _omitted(omitted, scenario)))
    return out


def build_tables(rows: pd.DataFrame, omitted: pd.DataFrame | None = None) -> dict[str, list[Table]]:
    """Tables per scenario, in reading order."""
    return {s.scenario: s.tables for s in build_sections(rows, omitted)}


def _summary(tables: list[Table], models: list[str], gates: dict[str, list[str]]) -> list[dict]:
    """Per model: status, the best explainer (mean rank) and explainer x clusterer (first headline value)."""
    out = []
    for m in models:
        best_e = best_d = ""
        for t in tables:
            if t.model != m or t.sort is None or t.sort.empty:
                continue
            if not best_e and t.shape == "explainer" and "mean rank ↓" in t.sort and t.sort["mean rank ↓"].notna().any():
                i = t.sort["mean rank ↓"].idxmin()
                cols = [c for c in t.frame.columns if c not in ("explainer", "mean rank ↓")]
                first = next((c for c in cols if t.frame.loc[i, c] not in ("", "–")), None)
                best_e = (f"{t.frame.loc[i, 'explainer']} (mean rank {t.frame.loc[i, 'mean rank ↓']}"
                          + (f"; {first}: {t.frame.loc[i, first]}" if first else "") + ")")
            if not best_d and t.shape == "detection" and m not in gates:
                tidy = t.tidy
                first = tidy.metric.iloc[0]
                d = tidy[(tidy.metric == first) & tidy["mean"].notna()]
                if not d.empty:
                    r = d.loc[d["mean"].idxmax() if d.higher_is_better.iloc[0] else d["mean"].idxmin()]
                    both = tidy[(tidy.explainer == r.explainer) & (tidy.clusterer == r.clusterer)]
                    cells = ", ".join(f"{x.metric} {_cell(x['mean'], x['std'], int(x['n']), int(x['n']))}"
                                      for _, x in both.iterrows())
                    best_d = f"{r.explainer} × {r.clusterer} ({cells})"
        status = "; ".join(gates[m]) if m in gates else "ranked"
        out.append({"model": m, "status": status, "best explainer": best_e or "–",
                    "best explainer × clusterer": best_d or "–"})
    return out


def _omitted(omitted: pd.DataFrame | None, scenario: str) -> list[str]:
    """'family: reason (n combinations)', one line per registered metric x reason."""
    if omitted is None or omitted.empty:
        return []
    d = omitted[omitted.scenario.astype(str) == scenario]
    if d.empty:
        return []
    d = d.assign(family=d.family.fillna("").astype(str), reason=d.reason.fillna("").astype(str))
    lines = []
    for (family, reason), g in d.groupby(["family", "reason"], sort=False):
        lines.append(f"{family}: {reason} ({len(g)} combination{'s' if len(g) != 1 else ''})")
    return lines


def omitted_from_jobs(jobs: pd.DataFrame, job_keys: Any = None) -> pd.DataFrame:
    """The planner's left-out combinations (``jobs.status == 'not-applicable'``) as the ``omitted`` frame."""
    cols = ["scenario", "seed", "model", "explainer", "clusterer", "family", "reason"]
    if jobs is None or jobs.empty:
        return pd.DataFrame(columns=cols)
    d = jobs[jobs.status == "not-applicable"]
    if job_keys is not None:
        d = d[d.key.isin(set(job_keys))]
    return d.rename(columns={"error": "reason"}).reindex(columns=cols).fillna("").reset_index(drop=True)
