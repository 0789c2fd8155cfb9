"""Detection first: the summary that opens the page. Per scenario and model kind it answers, by the first
label-free value the detection metric declares (``Metric.label_free``, e.g. the F1 of the cluster flagged without
labels): which explainer x clusterer detects the poisoned samples best, which non-explanation baseline (a
clusterer on an input kind such as activations or the raw pixels) does, by how much the best beats the reference
explainer with the same clusterer, and whether the paired tests tell them apart ("no explanation method beats
<baseline>", "tie: A, B, C").

:func:`detection_verdict` computes one model's :class:`DetectionVerdict`; :func:`detection_summary` renders them.
The controls beside the detection are :mod:`hansbench.bench.report.controls`, the rankings across scenarios
:mod:`hansbench.bench.report.rankings` (re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from hansbench.bench.report.detection_tables import value_groups
from hansbench.bench.report.leaderboard import Presentation
from hansbench.bench.report.rankings import Ranking, rankings  # noqa: F401  (re-exported: summary.rankings)
from hansbench.bench.report.results import Cell, Comparison, compare, correct, oriented, seed_cell
from hansbench.bench.report.stats import ALPHA, format_interval
from hansbench.bench.report.tables import input_kinds

MAX_TIE_NAMES = 5
Detector = tuple[str, str]  # (explainer or input kind, clusterer)


def detection_values(pres: dict[str, Presentation]) -> tuple[list[Presentation], tuple[str, ...], str, tuple[str, ...]]:
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
    return next((v for v in values if detector_rows(seeded, scenario, model, families, v).value.notna().any()),
                values[0] if values else "")


def detector_rows(seeded: pd.DataFrame, scenario: str, model: str, families: list[str], metric: str) -> pd.DataFrame:
    d = seeded[(seeded.scenario == scenario) & (seeded.model == model) & seeded.family.isin(families)
               & (seeded.metric == metric) & (seeded.clusterer != "")]
    return d


# -- the verdict ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DetectionVerdict:
    """One scenario and model kind's detection verdict by ``value``: the best explanation detector and the best
    baseline with their cells (by seed), the paired tests of the best against every other explanation detector
    (``ties``) and against the baseline, Holm-corrected together; the detectors not told apart from the best
    (``tied``, the best first); the paired difference to the reference with the same clusterer (``margin``); the
    best's and the baseline's cells on the label-flip and the clean controls."""

    value: str
    n: int  # the most seeds any detector has
    best: Detector | None = None
    baseline: Detector | None = None
    cells: dict[Detector, Cell] = field(default_factory=dict)
    ties: tuple[Comparison, ...] = ()
    versus_baseline: Comparison | None = None
    tied: tuple[Detector, ...] = ()
    margin: Cell | None = None
    reference: Detector | None = None
    label_flip: dict[Detector, Cell] = field(default_factory=dict)
    clean: dict[Detector, Cell] = field(default_factory=dict)

    @property
    def ahead(self) -> bool:
        """Whether the best explanation detector's mean is ahead of the best baseline's."""
        v = self.versus_baseline
        return v is not None and oriented(self.cells[self.best].mean, v.higher) < \
            oriented(self.cells[self.baseline].mean, v.higher)


def _by_seed(d: pd.DataFrame) -> dict[Detector, pd.Series]:
    return {k: g.groupby("seed")["value"].mean() for k, g in d.groupby(["explainer", "clusterer"], sort=False)}


def _control_cells(seeded: pd.DataFrame, scenario: str | None, model: str, families: list[str], value: str,
                   keys: tuple) -> dict[Detector, Cell]:
    """The cells (by seed) of ``keys`` on a control scenario ({} without one)."""
    if scenario is None or not value:
        return {}
    by = _by_seed(detector_rows(seeded, scenario, model, families, value))
    return {k: seed_cell(by[k]) for k in (*keys, *by) if k in by}


def detection_verdict(seeded: pd.DataFrame, scenario: str, model: str, ps: list[Presentation], value: str,
                      controls: dict[str, str], control_value: str) -> DetectionVerdict:
    """The verdict of one model kind (see :class:`DetectionVerdict`)."""
    kinds, _ = input_kinds()
    refs = {p.reference_explainer for p in ps if p.reference_explainer}
    fams = [p.family for p in ps]
    d = detector_rows(seeded, scenario, model, fams, value) if value else seeded.iloc[:0]
    by = _by_seed(d[d.value.notna()])
    if not by:
        return DetectionVerdict(value, 0)
    higher = bool(d[d.value.notna()].higher_is_better.iloc[0])
    explained = sorted((k for k in by if k[0] not in kinds and k[0] not in refs),
                       key=lambda k: oriented(by[k].mean(), higher))
    baselines = sorted((k for k in by if k[0] in kinds), key=lambda k: oriented(by[k].mean(), higher))
    best = explained[0] if explained else None
    base = baselines[0] if baselines else None
    comps = [compare(by[best], by[k], who=best, column=value, against=" × ".join(k), mark="tie", higher=higher)
             for k in explained[1:]]
    if best and base:
        comps.append(compare(by[best], by[base], who=best, column=value, against=" × ".join(base), mark="baseline",
                             higher=higher))
    comps = correct(comps)
    ties = comps[:len(explained[1:])]
    tied = []
    if best:  # the ties come first in comps: zip stops before the baseline's test
        tied = [best] + [k for k, c in zip(explained[1:], comps) if not c.significant]
    ref = next(((r, best[1]) for r in refs if (r, best[1]) in by), None) if best else None
    margin = None
    if ref:
        idx = by[best].index.intersection(by[ref].index)
        margin = seed_cell(by[best].loc[idx] - by[ref].loc[idx])
    keys = tuple(k for k in (best, base) if k)
    return DetectionVerdict(
        value, max((len(s) for s in by.values()), default=0), best, base, {k: seed_cell(s) for k, s in by.items()},
        ties, comps[-1] if best and base else None, tuple(tied), margin, ref,
        _control_cells(seeded, controls.get("label-flip"), model, fams, value, keys),
        _control_cells(seeded, controls.get("clean"), model, fams, control_value, keys))


# -- the summary ----------------------------------------------------------------------------------------------------
def _cell(x: Cell) -> str:
    return format_interval(x)


def _names(keys) -> str:
    shown = [f"{e} × {c}" for e, c in keys[:MAX_TIE_NAMES]]
    more = len(keys) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _verdict_text(v: DetectionVerdict) -> str:
    """The verdict's sentence: best vs the baseline, the ties, what n allows."""
    out = []
    if v.versus_baseline is not None:
        vs, (b0, b1) = v.versus_baseline, v.baseline
        stat = f"p_holm = {vs.p_holm:.2g}, {vs.test}, n = {vs.n}"
        if vs.significant:
            out.append(f"{v.best[0]} × {v.best[1]} beats the best baseline {b0} × {b1} ({stat})")
        elif v.ahead:
            out.append(f"the best explanation detector is not told apart from the best baseline {b0} × {b1} ({stat})")
        else:
            out.append(f"no explanation method beats {b0} × {b1} ({stat})")
    if len(v.tied) > 1:
        out.append(f"tie: {_names(list(v.tied))}")
    if v.n <= 2:
        out.append(f"n = {v.n} seed{'s' if v.n != 1 else ''}: no paired test can separate methods")
    return "; ".join(out) or "–"


def _controls_text(v: DetectionVerdict, controls: dict[str, str], control_value: str) -> dict[str, str]:
    """The summary's control columns: the best's and the baseline's cells on each control."""
    out = {}
    keys = [k for k in (v.best, v.baseline) if k]
    if "label-flip" in controls:
        lf = v.label_flip
        out["label-flip control"] = f"{controls['label-flip']}: " + ", ".join(
            f"{k[0]} × {k[1]} {_cell(lf[k])}" for k in keys if k in lf) if lf else "–"
    if "clean" in controls and control_value:
        cl = v.clean
        out["clean control"] = f"{controls['clean']} {control_value}: " + ", ".join(
            f"{k[0]} × {k[1]} {_cell(cl[k])}" for k in keys if k in cl) if cl else "–"
    return out


def detection_summary(seeded: pd.DataFrame, scenario: str, models: list[str], gates: dict[str, list[str]],
                      pres: dict[str, Presentation], controls: dict[str, str]) -> list[dict]:
    """Per model: the best explanation detector and the best baseline by the label-free headline, the margin
    over the reference explainer with the same clusterer, the verdict of the paired tests, the controls."""
    ps, values, label, control_values = detection_values(pres)
    out = []
    for m in models:
        n_seeds = int(seeded[(seeded.scenario == scenario) & (seeded.model == m)].seed.nunique())
        # the group's first value that this scenario and model have (e.g. ARI where no clusterer flags)
        value = first_present(seeded, scenario, m, [p.family for p in ps], values)
        by_text = value if label == "label-free" else (f"{value} (no label-free value declared: the headline's "
                                                        "first)" if value else "–")
        row = {"model": m, "status": "; ".join(gates[m]) if m in gates else "ranked", "by": by_text, "n": n_seeds}
        v = DetectionVerdict(value, 0) if m in gates else \
            detection_verdict(seeded, scenario, m, ps, value, controls, control_values[0] if control_values else "")
        if m in gates or not v.cells:
            out.append({**row, "best explanation detector": "–", "best baseline": "–", "over reference": "–",
                        "verdict": "not ranked" if m in gates else "no detection rows"})
            continue
        row.update({"best explanation detector": f"{v.best[0]} × {v.best[1]}: {_cell(v.cells[v.best])}" if v.best
                    else "–",
                    "best baseline": f"{v.baseline[0]} × {v.baseline[1]}: {_cell(v.cells[v.baseline])}"
                    if v.baseline else "–",
                    "over reference": f"{_cell(v.margin)} over {v.reference[0]} × {v.reference[1]}" if v.margin
                    else "–",
                    "verdict": _verdict_text(v)})
        out.append({**row, **_controls_text(v, controls, control_values[0] if control_values else "")})
    return out


SUMMARY_NOTE = ("Detection first. 'by': the label-free value the detectors are ranked by (the metric's first "
                "label-free value: no ground truth picks the cluster); best explanation detector / best baseline "
                "(a clusterer on an input that is no explanation, e.g. activations or raw pixels): mean ± 95 % t "
                "half-width over seeds; 'over reference': paired difference to the reference explainer with the "
                "same clusterer; verdict: paired tests by seed (exact sign-flip for <= 10 pairs, else Wilcoxon), "
                f"Holm-corrected, alpha = {ALPHA}: the best vs every other explanation detector (tie = not told "
                "apart) and vs the best baseline.")
