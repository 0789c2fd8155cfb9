"""Detection first: the summary that opens the page, the controls beside each scenario's detection, and the
rankings across scenarios and seeds (Friedman / Nemenyi, drawn by :mod:`hansbench.bench.report.figures.cd_diagram`).

Per scenario and model kind the summary answers, by the first label-free value the detection metric declares
(``Metric.label_free``, e.g. the F1 of the cluster flagged without labels): which explainer x clusterer detects
the poisoned samples best, which non-explanation baseline (a clusterer on an input kind such as activations or
the raw pixels) does, by how much the best beats the reference explainer with the same clusterer, and whether
the paired tests tell them apart ("no explanation method beats <baseline>", "tie: A, B, C").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hansbench.bench.report import cells
from hansbench.bench.report.leaderboard import SECTIONS, Presentation, Table
from hansbench.bench.report.stats import (
    ALPHA,
    FriedmanResult,
    format_interval,
    friedman_nemenyi,
    kendall_tau_halves,
    t_interval,
)
from hansbench.bench.report.tables import Context, header, input_kinds, oriented, value_groups
from hansbench.bench.suite.sweep import scenarios_with_sweeps

MAX_TIE_NAMES = 5


# -- scenario settings and controls ---------------------------------------------------------------------------
def scenario_settings(config: dict | None) -> dict[str, dict]:
    """Scenario name -> its settings (defaults filled in) from a run config; {} without one."""
    if not config:
        return {}
    from hansbench.datasets.poisonings import default_scenario_name
    from hansbench.datasets.scenarios import SCENARIO_DEFAULTS

    data = dict(config.get("data", {}) or {})
    out = {}
    for sc in scenarios_with_sweeps(config):
        s = {**SCENARIO_DEFAULTS, **data, **sc}
        name = sc.get("name") or default_scenario_name(s["poisoning"], float(s["fraction"]))
        out[str(name)] = s
    return out


def scenario_controls(config: dict | None, scenarios: list[str]) -> dict[str, dict[str, str]]:
    """Per scenario: {"label-flip": name, "clean": name} of the run's controls of it (where present).

    A label-flip control is a scenario whose poisoning declares ``control_of`` = this scenario's poisoning, at
    the same fraction and target; a clean control one whose poisoning poisons nothing in the inspected class."""
    from hansbench.datasets.poisonings import get_poisoning

    settings = scenario_settings(config)
    out: dict[str, dict[str, str]] = {}

    def poisoning(s: dict):
        try:
            return get_poisoning(s["poisoning"])
        except Exception:  # an uninstalled plugin poisoning: no control relation known
            return None

    def is_clean(s: dict) -> bool:
        p = poisoning(s)
        try:
            return p is not None and not p.inspected_class_holds(float(s["fraction"]))[0]
        except Exception:
            return False

    clean = [n for n, s in settings.items() if is_clean(s) and n in scenarios]
    for name, s in settings.items():
        if name not in scenarios or is_clean(s):
            continue
        c: dict[str, str] = {}
        for other, o in settings.items():
            p = poisoning(o)
            if other != name and other in scenarios and p is not None and \
                    getattr(p, "control_of", "") == s["poisoning"] and float(o["fraction"]) == float(s["fraction"]) \
                    and o.get("target_class") == s.get("target_class"):
                c["label-flip"] = other
                break
        if clean:
            c["clean"] = clean[0]
        out[name] = c
    return out


def _detection(pres: dict[str, Presentation]) -> tuple[list[Presentation], tuple[str, ...], str, tuple[str, ...]]:
    """(detection presentations, the ranking values in order of preference, their group label, the clean-control
    values)."""
    ps = [p for p in pres.values() if p.shape == "detection"]
    groups = value_groups(ps)
    label, values = groups[0] if groups else ("", ())
    control = tuple(dict.fromkeys(v for p in ps for v in p.control))
    return ps, values, label, control


def first_present(seeded: pd.DataFrame, scenario: str, model: str, families: list[str], values: tuple[str, ...]) -> str:
    """The first of the headline group's values that this scenario and model have (e.g. ARI where no row has the
    flagged cluster's F1); the group's first when none has any."""
    return next((v for v in values if _values(seeded, scenario, model, families, v).value.notna().any()),
                values[0] if values else "")


def _values(seeded: pd.DataFrame, scenario: str, model: str, families: list[str], metric: str) -> pd.DataFrame:
    d = seeded[(seeded.scenario == scenario) & (seeded.model == model) & seeded.family.isin(families)
               & (seeded.metric == metric) & (seeded.clusterer != "")]
    return d


def control_tables(seeded: pd.DataFrame, scenario: str, model: str, ps: list[Presentation], controls: dict[str, str],
                   ctx: Context) -> list[Table]:
    """Per detector: the ranking value here and on the label-flip control, the control values on the clean one."""
    if not controls or not ps:
        return []
    _, values, _, control_values = _detection({p.family: p for p in ps})
    fams = [p.family for p in ps]
    value = first_present(seeded, scenario, model, fams, values)
    here = _values(seeded, scenario, model, fams, value)
    if here.empty:
        return []
    cols: list[tuple[str, pd.DataFrame]] = [(f"{value} on {scenario}", here)]
    if "label-flip" in controls:
        cols.append((f"{value} on {controls['label-flip']} (label flip, no trigger)",
                     _values(seeded, controls["label-flip"], model, fams, value)))
    for v in control_values if "clean" in controls else ():
        cols.append((f"{v} on {controls['clean']} (clean control)", _values(seeded, controls["clean"], model, fams, v)))
    if len(cols) == 1:
        return []
    iv = {(name, e, c): cells.interval(g) for name, d in cols for (e, c), g in d.groupby(["explainer", "clusterer"])}
    n_max = max((x.n for x in iv.values()), default=0)
    detectors = list(dict.fromkeys(zip(here.explainer, here.clusterer)))
    heads = {name: header(name, d.unit.iloc[0] if len(d) else "", bool(d.higher_is_better.iloc[0]) if len(d) else True,
                          name == cols[0][0]) for name, d in cols}
    disp, sort, tidy = [], [], []
    for e, c in detectors:
        drow = {"detector": f"{ctx.label(e, model)} × {c}"}
        srow = dict(drow)
        for name, d in cols:
            x = iv.get((name, e, c))
            drow[heads[name]] = cells.text(x, n_max) if x else ""
            srow[heads[name]] = x.mean if x else np.nan
            if x:
                tidy.append(cells.tidy(x, d.unit.iloc[0], None, model=model, explainer=e, clusterer=c,
                                       metric=d.metric.iloc[0], scenario_of_value=d.scenario.iloc[0]))
        disp.append(drow)
        sort.append(srow)
    seeds = sorted(dict.fromkeys(int(s) for s in here.seed))
    how = cells.interval_note([x.n for x in iv.values()], seeds, ctx.seed_config)
    title = f"Detection controls: {model}"
    note = (f"{how} What a detector flags on the label-flip control is label noise (the images the backdoor "
            "would poison, relabelled but not stamped), not the trigger; on the clean control nothing is poisoned, "
            "so whatever it flags is a false alarm (a share of the clustered samples).")
    return [Table(title, pd.DataFrame(disp), note, "detection-controls", "detection", model, pd.DataFrame(sort),
                  pd.DataFrame(tidy), f"{title}. {how}", SECTIONS["detection"])]


# -- the summary ----------------------------------------------------------------------------------------------------
def _by_seed(d: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    return {k: g.groupby("seed")["value"].mean() for k, g in d.groupby(["explainer", "clusterer"], sort=False)}


def _cell(s: pd.Series) -> str:
    return format_interval(t_interval(s.to_numpy(dtype=float)))


def _names(keys: list[tuple[str, str]]) -> str:
    shown = [f"{e} × {c}" for e, c in keys[:MAX_TIE_NAMES]]
    more = len(keys) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def detection_summary(seeded: pd.DataFrame, scenario: str, models: list[str], gates: dict[str, list[str]],
                      pres: dict[str, Presentation], controls: dict[str, str]) -> list[dict]:
    """Per model: the best explanation detector and the best baseline by the label-free headline, the margin
    over the reference explainer with the same clusterer, the verdict of the paired tests, the controls."""
    ps, values, label, control_values = _detection(pres)
    kinds, _ = input_kinds()
    refs = {p.reference_explainer for p in ps if p.reference_explainer}
    out = []
    for m in models:
        n_seeds = int(seeded[(seeded.scenario == scenario) & (seeded.model == m)].seed.nunique())
        # the group's first value that this scenario and model have (e.g. ARI where no clusterer flags)
        value = first_present(seeded, scenario, m, [p.family for p in ps], values)
        by_text = value if label == "label-free" else (f"{value} (no label-free value declared: the headline's "
                                                        "first)" if value else "–")
        row = {"model": m, "status": "; ".join(gates[m]) if m in gates else "ranked", "by": by_text, "n": n_seeds}
        d = _values(seeded, scenario, m, [p.family for p in ps], value) if value else seeded.iloc[:0]
        d = d[d.value.notna()]
        if m in gates or d.empty:
            out.append({**row, "best explanation detector": "–", "best baseline": "–", "over reference": "–",
                        "verdict": "not ranked" if m in gates else "no detection rows"})
            continue
        higher = bool(d.higher_is_better.iloc[0])
        by = _by_seed(d)
        def key(k, by=by, higher=higher):  # bound now: used only in this iteration's sorts
            return oriented(by[k].mean(), higher)
        explained = sorted((k for k in by if k[0] not in kinds and k[0] not in refs), key=key)
        baselines = sorted((k for k in by if k[0] in kinds), key=key)
        best = explained[0] if explained else None
        base = baselines[0] if baselines else None
        comps: list[cells.Comparison] = []
        for k in explained[1:]:
            comps.append(cells.compare(by[best], by[k], who=best, column=value, against=" × ".join(k), mark="tie",
                                       higher=higher))
        if best and base:
            comps.append(cells.compare(by[best], by[base], who=best, column=value, against=" × ".join(base),
                                       mark="baseline", higher=higher))
        cells.correct(comps)
        verdict = []
        if best and base:
            vs = comps[-1]
            stat = f"p_holm = {vs.p_holm:.2g}, {vs.test}, n = {vs.n}"
            ahead = oriented(by[best].mean(), higher) < oriented(by[base].mean(), higher)
            if vs.significant:
                verdict.append(f"{best[0]} × {best[1]} beats the best baseline {base[0]} × {base[1]} ({stat})")
            elif ahead:
                verdict.append(f"the best explanation detector is not told apart from the best baseline "
                               f"{base[0]} × {base[1]} ({stat})")
            else:
                verdict.append(f"no explanation method beats {base[0]} × {base[1]} ({stat})")
        if best:
            tied = [best] + [k for k, c in zip(explained[1:], comps) if not c.significant]
            if len(tied) > 1:
                verdict.append(f"tie: {_names(tied)}")
        n = max((len(s) for s in by.values()), default=0)
        if n <= 2:
            verdict.append(f"n = {n} seed{'s' if n != 1 else ''}: no paired test can separate methods")
        margin = "–"
        if best:
            ref = next(((r, best[1]) for r in refs if (r, best[1]) in by), None)
            if ref:
                idx = by[best].index.intersection(by[ref].index)
                margin = f"{_cell(by[best].loc[idx] - by[ref].loc[idx])} over {ref[0]} × {ref[1]}"
        row.update({"best explanation detector": f"{best[0]} × {best[1]}: {_cell(by[best])}" if best else "–",
                    "best baseline": f"{base[0]} × {base[1]}: {_cell(by[base])}" if base else "–",
                    "over reference": margin, "verdict": "; ".join(verdict) or "–"})
        if "label-flip" in controls:
            lf = _by_seed(_values(seeded, controls["label-flip"], m, [p.family for p in ps], value))
            row["label-flip control"] = f"{controls['label-flip']}: " + ", ".join(
                f"{k[0]} × {k[1]} {_cell(lf[k])}" for k in (best, base) if k and k in lf) if lf else "–"
        if "clean" in controls and control_values:
            cv = control_values[0]
            cl = _by_seed(_values(seeded, controls["clean"], m, [p.family for p in ps], cv))
            row["clean control"] = f"{controls['clean']} {cv}: " + ", ".join(
                f"{k[0]} × {k[1]} {_cell(cl[k])}" for k in (best, base) if k and k in cl) if cl else "–"
        out.append(row)
    return out


SUMMARY_NOTE = ("Detection first. 'by': the label-free value the detectors are ranked by (the metric's first "
                "label-free value: no ground truth picks the cluster); best explanation detector / best baseline "
                "(a clusterer on an input that is no explanation, e.g. activations or raw pixels): mean ± 95 % t "
                "half-width over seeds; 'over reference': paired difference to the reference explainer with the "
                "same clusterer; verdict: paired tests by seed (exact sign-flip for <= 10 pairs, else Wilcoxon), "
                f"Holm-corrected, alpha = {ALPHA}: the best vs every other explanation detector (tie = not told "
                "apart) and vs the best baseline.")


# -- rankings across scenarios and seeds ---------------------------------------------------------------------------
@dataclass
class Ranking:
    """A Friedman / Nemenyi comparison of ``names`` over ``blocks`` (scenario x seed [x metric])."""

    model: str
    what: str
    names: list[str]
    result: FriedmanResult
    tau: float
    tau_p: float
    blocks: str

    @property
    def caption(self) -> str:
        r = self.result
        tau = (f" Stability: Kendall's tau between the rankings of the two halves of the seeds = {self.tau:.2f}."
               if math.isfinite(self.tau) else " Stability: fewer than two seeds, not measured.")
        fried = f"Friedman chi2 = {r.statistic:.3g}, p = {r.p:.2g}" if math.isfinite(r.p) else "Friedman: needs k >= 3"
        return (f"{self.what}, {self.model}: average ranks (1 = best) of k = {len(self.names)} methods over "
                f"N = {r.n_blocks} blocks ({self.blocks}); {fried}; Nemenyi CD = {r.cd:.2f} at alpha = {r.alpha} "
                f"(Demšar 2006): methods joined by a bar are not told apart.{tau}")


def _complete(frame: pd.DataFrame) -> pd.DataFrame:
    """Blocks x methods: the blocks with the most methods (a metric only some methods have, e.g. a retraining
    restricted to two explainers, is left out rather than the methods), then the methods present in all of them."""
    if frame.empty:
        return frame
    counts = frame.notna().sum(axis=1)
    return frame[counts == counts.max()].dropna(axis=1, how="any")


def rankings(rows_seeded: pd.DataFrame, pres: dict[str, Presentation], ranked: dict[str, set[str]]) -> list[Ranking]:
    """Per model kind: the detectors by the label-free headline over (scenario, seed) blocks, and the explainers
    over (scenario, seed, metric) blocks (each explainer's mean rank over the metric's columns). ``ranked``:
    per scenario, the model kinds whose poisoning took."""
    out = []
    s = rows_seeded[[m in ranked.get(sc, set()) for sc, m in zip(rows_seeded.scenario, rows_seeded.model)]]
    ps, values, _, _ = _detection(pres)
    value = values[0] if values else ""
    if value:
        d = s[s.family.isin([p.family for p in ps]) & (s.metric == value) & (s.clusterer != "")]
        for m, g in d.groupby("model", sort=False):
            higher = bool(g.higher_is_better.iloc[0])
            f = g.assign(method=g.explainer + " × " + g.clusterer).pivot_table(
                index=["scenario", "seed"], columns="method", values="value", aggfunc="mean")
            out += _rank(_complete(f), higher, m, f"Detection by {value}", "scenario x seed")
    expl = [p for p in pres.values() if p.shape == "explainer" and p.ranked]
    refs = {p.reference_explainer for p in expl}
    d = s[s.family.isin([p.family for p in expl]) & (s.explainer != "") & ~s.explainer.isin(refs) & s.directed]
    for m, g in d.groupby("model", sort=False):
        blocks = []
        for (sc, seed, fam), b in g.groupby(["scenario", "seed", "family"], sort=False):
            f = b.pivot_table(index=["metric", "split", "stage", "coldetail"], columns="explainer", values="value",
                              aggfunc="mean")
            hib = b.groupby(["metric", "split", "stage", "coldetail"])["higher_is_better"].first().reindex(f.index)
            f = f.dropna(axis=0, how="any")
            if f.empty:
                continue
            signed = f.mul(np.where(hib.reindex(f.index), 1.0, -1.0), axis=0)
            ranks = signed.rank(axis=1, ascending=False).mean(axis=0)
            blocks.append(pd.Series(-ranks, name=(sc, seed, fam)))  # higher = better
        if blocks:
            f = pd.DataFrame(blocks)
            f.index = pd.MultiIndex.from_tuples(f.index, names=["scenario", "seed", "family"])
            out += _rank(_complete(f), True, m, "Explainers by faithfulness and localisation", "scenario x seed x metric")
    return out


def _rank(frame: pd.DataFrame, higher: bool, model: str, what: str, blocks: str) -> list[Ranking]:
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        return []
    r = friedman_nemenyi(frame.to_numpy(dtype=float), higher_is_better=higher)
    tau, p = kendall_tau_halves(frame.to_numpy(dtype=float), frame.index.get_level_values("seed"), higher)
    return [Ranking(model, what, [str(c) for c in frame.columns], r, tau, p, blocks)]
