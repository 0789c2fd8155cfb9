"""Leaderboard: the per-scenario sections built from the tidy metric rows (verdicts computed by
:mod:`hansbench.bench.report.verdicts`, tables formatted by the table modules, the page built by
:mod:`hansbench.bench.report.page`).

Every table is built from the metrics' own presentation (:class:`hansbench.metrics.presentation.Presentation`:
a metric's one ``presentation = Shows(...)``, validated when the metric registers) looked up by the rows'
``family``; no metric or method is named here. A family nobody registered (rows of an uninstalled plugin) gets a
table of its own from the defaults. The runner's timer (family :data:`TIMING_FAMILY`) is described by :data:`TIMING`.

Per scenario, in reading order: reliance (did the poisoning take? it gates the ranks), detection (label-free
first, then PRP Table II's label-matched ACC/F1, then the controls), faithfulness and localisation (one
ranked explainer table per model kind, the reference explainer as a zero line with its raw values in a row
of their own), interventions (PRP Table I, data cleaning), per-model tables, timing, and what was not
computed and why. Every cell is a mean with its 95 % interval and n (:mod:`hansbench.bench.report.cells`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from hansbench.bench.engine.store import NOT_APPLICABLE
from hansbench.bench.report.cells import per_image
from hansbench.bench.report.stats import format_number
from hansbench.metrics.detail import FALLBACK
from hansbench.metrics.detail import parse as parse_detail

# Presentation and SHAPES live next to the Metric contract; re-exported here for existing importers
from hansbench.metrics.presentation import SHAPES, Presentation, presentation_of  # noqa: F401, I001

TIMING_FAMILY = "timing"  # the family the runner gives its timing rows (graph.Planner.timing)
STR_COLUMNS = ("scenario", "model", "explainer", "clusterer", "rule", "family", "metric", "split", "stage", "detail", "unit")
FALLBACK_MARK = "†"
GATE_MARK = "‡"
MARK_SYMBOLS = ("§", "¶", "♯", "◊")  # the metrics' ``marks``, in the order the notes are first seen
SECTIONS = {"reliance": "Reliance", "detection": "Detection", "explainer": "Faithfulness and localisation ranking",
            "stages": "Interventions", "model": "Models", "unranked": "Timing and other unranked tables"}


def _timing_presentation() -> Presentation:
    from hansbench.bench.engine.nodes.timing import TIMING_VALUES

    return Presentation(TIMING_FAMILY, "timing", "explainer", tuple(TIMING_VALUES), ranked=False,
                        meaning="median over repeats; gradient units = time / one forward+backward pass of the same "
                                "model on the same batch")


TIMING = _timing_presentation()


def presentation(family: str, rows: pd.DataFrame | None = None) -> Presentation:
    """The presentation of ``family``: the registered metric's (validated when it registered), :data:`TIMING`,
    or, for rows of a family nobody registered here, a table of its own shaped by the rows."""
    if family == TIMING_FAMILY:
        return TIMING
    from hansbench.registry import UnknownNameError, metrics

    try:
        cls = metrics.get(family)
    except (UnknownNameError, KeyError):
        cls = None
    if cls is not None:
        return presentation_of(cls, family)
    shape = "model"
    if rows is not None and not rows.empty:
        if (rows.clusterer != "").any():
            shape = "detection"
        elif (rows.explainer != "").any():
            shape = "explainer"
    return Presentation(family, family, shape, meaning="(no metric of this name is installed)")


@dataclass
class Table:
    """One table: ``frame`` holds the displayed strings, ``sort`` the numbers behind them (HTML sorting, NaN =
    not sortable), ``tidy`` the aggregated numbers (the CSV), ``caption`` what LaTeX and HTML put above it (n,
    seeds, the test), ``section`` the page section it belongs to."""

    title: str
    frame: pd.DataFrame
    note: str = ""
    id: str = ""
    shape: str = ""
    model: str = ""
    sort: pd.DataFrame | None = None
    tidy: pd.DataFrame | None = None
    caption: str = ""
    section: str = ""
    result: Any = None  # the typed results it renders (hansbench.bench.report.results.Grid), where it has them


@dataclass
class Section:
    """One scenario's part of the leaderboard: its tables, its summary and what was left out."""
    scenario: str
    tables: list[Table]
    summary: list[dict]  # per model: which detector is best (label-free), the baselines, the verdict
    omitted: list[str]
    figures: list[Any] = field(default_factory=list)
    ranked: frozenset[str] = frozenset()  # the model kinds whose gates passed here (ranked; the status text says why)


# -- numbers --------------------------------------------------------------------------------------------
def format_value(v: object) -> str:
    """A loose value for display: floats by :func:`hansbench.bench.report.stats.format_number`, others as text."""
    if isinstance(v, (float, np.floating)):
        return format_number(float(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return "" if v is None else str(v)


def _detail_value(detail: str, key: str) -> str:
    v = parse_detail(detail).get(key, "")
    return f"{v:g}" if isinstance(v, float) else str(v)  # a label (0.3), not a measurement


def _fell_back(detail: str) -> bool:
    if FALLBACK not in str(detail):
        return False
    return parse_detail(detail).get(FALLBACK) is True


def normalise(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows from the store or a CSV: strings for the name columns, bool directions; a ``rule`` ("" where the frame
    has none), old-protocol detection rows read as their rule's (:func:`~.verdicts.protocol.translate`)."""
    from hansbench.bench.report.verdicts.protocol import translate

    df = translate(rows.copy())
    for c in STR_COLUMNS:
        if c in df:
            df[c] = df[c].fillna("").astype(str)
    df["higher_is_better"] = df["higher_is_better"].astype(bool)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    return df


def _concat(lists: pd.Series) -> list | None:
    items = lists.tolist()
    if not items or any(x is None for x in items):
        return None
    return [v for x in items for v in x]


def seeded_rows(rows: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Presentation], pd.DataFrame]:
    """(the rows normalised, each family's presentation, one value per seed and combination): the one way every
    view of the rows starts."""
    rows = normalise(rows)
    pres = {f: presentation(f, rows[rows.family == f]) for f in dict.fromkeys(rows.family)}
    seeded = per_seed(rows, pres) if not rows.empty else rows.assign(
        coldetail="", fallback=False, per_image=None, directed=True)
    return rows, pres, seeded


def per_seed(df: pd.DataFrame, pres: dict[str, Presentation]) -> pd.DataFrame:
    """One value per (seed, combination, value column): rows of a seed averaged (e.g. over details), their
    per-image values concatenated; ``directed`` False for the family's undirected values."""
    df = df.assign(coldetail=[_detail_value(d, pres[f].column_detail) if pres[f].column_detail else ""
                              for f, d in zip(df.family, df.detail)],
                   fallback=[_fell_back(d) for d in df.detail],
                   per_image=[per_image(d) for d in df.detail])  # a column of the frame, from detail[PER_IMAGE]
    keys = ["scenario", "seed", "model", "explainer", "clusterer", "rule", "family", "metric", "split", "stage", "coldetail"]
    out = df.groupby(keys, sort=False, dropna=False).agg(
        value=("value", "mean"), higher_is_better=("higher_is_better", "first"), unit=("unit", "first"),
        fallback=("fallback", "any"), per_image=("per_image", _concat)).reset_index()
    return out.assign(directed=[m not in pres[f].undirected for f, m in zip(out.family, out.metric)])


# -- gates (reliance) and marks ----------------------------------------------------------------------------
def _gate_failed(r: pd.Series, family: str) -> bool:
    """A gate value is a yes/no outcome (reliance's ``took``: its exact test's p < alpha), read as 0 or 1, never
    against a float threshold; anything else is refused."""
    v = float(r["value"])
    if v not in (0.0, 1.0):
        raise ValueError(f"gate {family}/{r['metric']} of {r['model']} seed {r['seed']} is {v!r}, not 0 or 1: a gate "
                         "is a yes/no outcome; declare a 0/1 value in the metric's gates")
    return v == 0.0 if r["higher_is_better"] else v == 1.0


def _evidence(d: pd.DataFrame, p: Presentation, gate: str, seed: int) -> str:
    """What a tested gate rests on, for one model and seed: the metric's ``effect`` (the reliance gap) with its
    interval (values ``<effect>-low`` / ``<effect>-high``) and the gate's p (``<gate>-p``); "" without those rows.
    """
    at = d[d.seed == seed].groupby("metric").agg(value=("value", "first"), unit=("unit", "first"))
    have = {m for m, v in at.value.items() if v is not None and not math.isnan(v)}
    parts = []
    v = next((v for v in p.effect if v in have), None)
    if v is not None:
        text = f"{v} {at.value[v]:+.1f} {at.unit[v]}".rstrip()
        if {f"{v}-low", f"{v}-high"} <= have:
            text += f" [{at.value[f'{v}-low']:+.1f}, {at.value[f'{v}-high']:+.1f}]"
        parts.append(text)
    if f"{gate}-p" in have:
        parts.append(f"{gate}-p {at.value[f'{gate}-p']:.2g}")
    return ", ".join(parts) if f"{gate}-p" in have else ""


def _seeds_text(seeds: list[int]) -> str:
    return f"{'seed' if len(seeds) == 1 else 'seeds'} {', '.join(map(str, seeds))}"


def gate_notes(seeded: pd.DataFrame, pres: dict[str, Presentation]) -> dict[str, list[str]]:
    """Per model kind: the notes of failed gates ("poisoning did not take (seeds 1, 2)"); no entry = ranked.

    A gate decided by a test (the metric also reports ``<gate>-p``) names per seed what it rests on: "poisoning
    did not take (seed 3: acc-gap +8.3 pp [-10.2, +27.5], took-p 0.5)" (:func:`_evidence`)."""
    failed_on: dict[str, dict[str, list[str]]] = {}
    for family, p in pres.items():
        if not p.gates:
            continue
        fam = seeded[seeded.family == family]
        d = fam[fam.metric.isin(p.gates)]
        by: dict[tuple[str, str], list[int]] = {}
        for _, r in d.iterrows():
            v = r["value"]
            if v is None or math.isnan(v) or not _gate_failed(r, family):
                continue
            by.setdefault((r["model"], r["metric"]), []).append(int(r["seed"]))
        for (model, gate), seeds in by.items():
            seeds = sorted(set(seeds))
            shown = {s: _evidence(fam[fam.model == model], p, gate, s) for s in seeds}
            text = (_seeds_text(seeds) if not any(shown.values())
                    else "; ".join(f"seed {s}: {e}" if e else f"seed {s}" for s, e in shown.items()))
            failed_on.setdefault(model, {})[p.gates[gate]] = [text]
    return {m: sorted(f"{note} ({texts[0]})" for note, texts in by_note.items()) for m, by_note in failed_on.items()}


def reliance_axis(seeded: pd.DataFrame, pres: dict[str, Presentation]) -> dict[str, str]:
    """Per model kind, ranked or not: how strongly it relies on the artifact, per seed ("seed 0: acc-gap +9.4 pp
    [+3.1, +15.7], took-p 3e-05; seed 1: ..."), for the status beside every detection result (issue 29: the gap
    with its interval is a reported axis, not a threshold that hides a scenario). From the families whose gates
    are tested (a ``<gate>-p`` value); models without those rows are absent."""
    out: dict[str, list[str]] = {}
    for family, p in pres.items():
        fam = seeded[seeded.family == family]
        tested = [g for g in p.gates if (fam.metric == f"{g}-p").any()]
        if not tested:
            continue
        for model, dm in fam.groupby("model", sort=False):
            for s in sorted(set(dm.seed.astype(int))):
                e = _evidence(dm, p, tested[0], s)
                if e:
                    out.setdefault(str(model), []).append(f"seed {s}: {e}")
    return {m: "; ".join(texts) for m, texts in out.items()}


def model_status(model: str, gates: dict[str, list[str]], axis: dict[str, str]) -> str:
    """A model kind's status beside its detection results: the failed gates with their evidence, or "ranked" with
    how strongly it relies on the artifact (:func:`reliance_axis`): the one wording of the summary and the
    reliance table."""
    if model in gates:
        return "; ".join(gates[model])
    return f"ranked; reliance {axis[model]}" if model in axis else "ranked"


def explainer_marks(seeded: pd.DataFrame, pres: dict[str, Presentation]) -> dict[str, dict[str, list[str]]]:
    """Per model: explainer -> the symbols of the metrics' ``marks`` it earned (mean of the 0/1 value over
    seeds >= 0.5); the symbols' notes under :data:`MARK_SYMBOLS` order in ``["notes"]``."""
    out: dict[str, dict[str, list[str]]] = {}
    notes = list(dict.fromkeys(note for p in pres.values() for note in p.marks.values()))
    symbol = {note: MARK_SYMBOLS[i % len(MARK_SYMBOLS)] * (1 + i // len(MARK_SYMBOLS)) for i, note in enumerate(notes)}
    for family, p in pres.items():
        for value, note in p.marks.items():
            d = seeded[(seeded.family == family) & (seeded.metric == value) & (seeded.explainer != "")]
            for (model, explainer), g in d.groupby(["model", "explainer"], sort=False):
                if g["value"].notna().any() and g["value"].mean() >= 0.5:
                    out.setdefault(model, {}).setdefault(explainer, []).append(symbol[note])
    out["notes"] = {symbol[n]: [n] for n in notes}  # type: ignore[assignment]
    return out


# -- building ------------------------------------------------------------------------------------------------
def _models(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df.model))


def build_sections(rows: pd.DataFrame, omitted: pd.DataFrame | None = None,
                   config: dict | None = None) -> list[Section]:
    """Per scenario: reliance, detection (+ controls), explainer rankings, stages, model tables, timing.

    ``config``: the run's suite configuration (the results store keeps it); it names the seeds the settings
    were tuned on and the scenarios' poisonings, which pair each backdoor with its label-flip and clean
    controls. Without it the tables say nothing about controls.
    """
    from hansbench.bench.report import controls as ctl
    from hansbench.bench.report import detection_tables, ranking_tables, run_facts
    from hansbench.bench.report import summary as summ
    from hansbench.bench.report import tables as tb

    if rows.empty:
        rows = pd.DataFrame(columns=[*STR_COLUMNS, "seed", "value", "higher_is_better"])
    rows, pres, seeded_all = seeded_rows(rows)
    scenarios = list(dict.fromkeys(rows.scenario))
    if omitted is not None and not omitted.empty:
        scenarios += [s for s in dict.fromkeys(omitted.scenario.astype(str)) if s not in scenarios]
    ctx = tb.Context(config=config or {}, marks=explainer_marks(seeded_all, pres))
    controls = run_facts.scenario_controls(config, scenarios)
    out = []
    for scenario in scenarios:
        seeded = seeded_all[seeded_all.scenario == scenario]
        fams = {f: pres[f] for f in dict.fromkeys(seeded.family)}
        gates = gate_notes(seeded, fams)
        superseded = {s for p in fams.values() if p.shape == "reliance" for s in p.supersedes if s in fams}
        groups: dict[tuple[str, str], list[Presentation]] = {}
        matrix = next((p.table for p in fams.values() if p.shape == "detection"), "")  # one detection matrix
        for f, p in fams.items():
            if f in superseded:
                p = replace(p, table=p.family, shape="model")
            groups.setdefault((p.shape, matrix if p.shape == "detection" else p.table), []).append(p)
        order = {"reliance": 0, "detection": 1, "explainer": 2, "stages": 3, "model": 4}
        ordered = sorted(groups.items(), key=lambda kv: order[kv[0][0]] + (5 if not any(p.ranked for p in kv[1])
                                                                          else 0))
        tables: list[Table] = []
        for (shape, table_id), ps in ordered:
            d = seeded[seeded.family.isin([p.family for p in ps])]
            if shape in ("reliance", "model"):
                tables += tb.model_tables(d, ps, gates, table_id, ctx, status=shape == "reliance")
                continue
            for m in _models(d):
                dm = d[d.model == m]
                if shape == "detection":
                    tables += detection_tables.detection_tables(dm, ps, m, gates, table_id, ctx)
                    tables += ctl.control_tables(seeded_all, scenario, m, ps, controls.get(scenario, {}), ctx)
                elif shape == "explainer":
                    tables += ranking_tables.explainer_tables(dm, ps, m, gates, table_id, ctx)
                else:
                    tables += tb.stages_tables(dm, ps, m, gates, table_id, ctx)
        out.append(Section(scenario, tables,
                           summ.detection_summary(seeded_all, scenario, _models(seeded), gates, pres,
                                                  controls.get(scenario, {})),
                           _omitted(omitted, scenario), ranked=frozenset(m for m in _models(seeded) if m not in gates)))
    return out


def build_tables(rows: pd.DataFrame, omitted: pd.DataFrame | None = None,
                 config: dict | None = None) -> dict[str, list[Table]]:
    """Tables per scenario, in reading order."""
    return {s.scenario: s.tables for s in build_sections(rows, omitted, config)}


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
    """The planner's left-out combinations (``jobs.status == 'not-applicable'``, with ``jobs.reason``) as the
    ``omitted`` frame."""
    cols = ["scenario", "seed", "model", "explainer", "clusterer", "family", "reason"]
    if jobs is None or jobs.empty:
        return pd.DataFrame(columns=cols)
    d = jobs[jobs.status == NOT_APPLICABLE]
    if job_keys is not None:
        d = d[d.key.isin(set(job_keys))]
    return d.reindex(columns=cols).fillna("").reset_index(drop=True)
