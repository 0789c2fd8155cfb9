"""Detection first: the summary that opens the page. Per scenario and model kind it answers two questions
(issue 28). *Does the detector separate the poison?* By a label-free value that no flagging rule decides (the ARI
of a partition, the AUROC of a score detector's own score; :func:`~.verdicts.summary.separability_groups`), with
the label-matched F1 beside it (an analyst who picks the right cluster). *Can it flag the poison unaided?* Per
flagging rule the best flag F1, how often the rule abstained, and the same detector and rule's false alarms on the
clean control (:mod:`~.verdicts.flagging`). For the first: which explainer x clusterer separates best, which non-explanation baseline (a
clusterer on an input kind such as activations or the raw pixels) does, by how much the best beats the reference
explainer with the same clusterer, and whether the paired tests tell them apart ("no explanation method beats
<baseline>", "not told apart from the best: B (difference d [low, high])"; no verdict where n seeds cannot reach
alpha at all).

:func:`~hansbench.bench.report.verdicts.summary.detection_verdict` (the verdicts step) computes one model's
:class:`~hansbench.bench.report.verdicts.summary.DetectionVerdict`; :func:`detection_summary` renders them.
The controls beside the detection are :mod:`hansbench.bench.report.controls`, the rankings across scenarios
:mod:`hansbench.bench.report.rankings` (re-exported here).
"""

from __future__ import annotations

import pandas as pd

from hansbench.bench.report import cells as cell_text
from hansbench.bench.report.explorer.links import explorer_href
from hansbench.bench.report.leaderboard import Presentation, model_status, reliance_axis
from hansbench.bench.report.rankings import Ranking, rankings  # noqa: F401  (re-exported: summary.rankings)
from hansbench.bench.report.results import Cell
from hansbench.bench.report.stats import ALPHA
from hansbench.bench.report.verdicts.detection import (  # noqa: F401  (re-exported: the names importers find here)
    detection_values,
    detector_rows,
    first_present,
)
from hansbench.bench.report.verdicts.flagging import FlagVerdict, flag_verdicts
from hansbench.bench.report.verdicts.protocol import ANALYST, ANALYST_NAME, FALSE_ALARM, FLAG_F1, OLD_NOTE, is_old
from hansbench.bench.report.verdicts.summary import (  # noqa: F401  (Detector re-exported)
    DetectionVerdict,
    Detector,
    detection_verdict,
    separability_groups,
)

MAX_TIE_NAMES = 5
ANALYST_COLUMN = ANALYST_NAME  # the label-matched F1 beside the separability headline
BY_COLUMN = "separates the poison? (by)"
FLAG_COLUMN = "flags it unaided? (per rule)"
FLAGS_KEY = "_flags"  # a summary row's flagging answers, one dict per rule: the page's second summary table
LINKS_KEY = "_links"  # a summary row's cell links (column -> href): the named detectors' views in the explorer


# -- the summary ----------------------------------------------------------------------------------------------------
def _cell(x: Cell) -> str:
    return cell_text.text(x, x.n)


def _verdict_text(v: DetectionVerdict) -> str:
    """The verdict's sentence: best vs the baseline, those not told apart from the best, each with the paired
    difference and its interval; no verdict, and why, where n cannot reach alpha."""
    if v.n <= 2 and v.versus_baseline is None and len(v.tied) <= 1:
        return f"n = {v.n} seed{'s' if v.n != 1 else ''}: no paired test can separate methods"
    diff = {k: _cell(x) for k, x in v.differences.items()}
    if v.withheld:
        out = [f"no verdict: {v.withheld}"]
        if v.baseline is not None and v.baseline in diff:
            out.append(f"best - {v.baseline[0]} × {v.baseline[1]}: {diff[v.baseline]}")
        return "; ".join(out)
    out = []
    if v.versus_baseline is not None:
        vs, (b0, b1) = v.versus_baseline, v.baseline
        stat = f"best - baseline {diff[v.baseline]}, p_holm = {vs.p_holm:.2g}, {vs.test}, n = {vs.n}"
        if vs.significant:
            out.append(f"{v.best[0]} × {v.best[1]} beats the best baseline {b0} × {b1} ({stat})")
        elif v.ahead:
            out.append(f"the best explanation detector is not told apart from the best baseline {b0} × {b1} ({stat})")
        else:
            out.append(f"no explanation method beats {b0} × {b1} ({stat})")
    if len(v.tied) > 1:
        others = list(v.tied[1:])
        named = ", ".join(f"{e} × {c} (best - it {diff[(e, c)]})" for e, c in others[:MAX_TIE_NAMES])
        more = len(others) - MAX_TIE_NAMES
        out.append(f"not told apart from the best {v.best[0]} × {v.best[1]}: {named}"
                   + (f" and {more} more" if more > 0 else ""))
    return "; ".join(out) or "–"


def _controls_text(v: DetectionVerdict, controls: dict[str, str], control_value: str) -> dict[str, str]:
    """The summary's control columns: the best's and the baseline's cells on each control (the clean control only
    where the split's own rows have a control value there: the rules' false alarms are the flagging headline's)."""
    out = {}
    keys = [k for k in (v.best, v.baseline) if k]
    if "label-flip" in controls:
        lf = v.label_flip
        out["label-flip control"] = f"{controls['label-flip']}: " + ", ".join(
            f"{k[0]} × {k[1]} {_cell(lf[k])}" for k in keys if k in lf) if lf else "–"
    if "clean" in controls and control_value and v.clean:
        out["clean control"] = f"{controls['clean']} {control_value}: " + ", ".join(
            f"{k[0]} × {k[1]} {_cell(v.clean[k])}" for k in keys if k in v.clean)
    return out


def _flag_text(f: FlagVerdict) -> str:
    """One rule's answer: "relative-size: lrp × spray flag-f1 0.90 ± 0.05, abstained on 1 of 5 seeds; false
    alarms on clean 0.02 ± 0.01"."""
    ab = (f"abstained on {f.abstained} of {f.n_abstain} seed{'s' if f.n_abstain != 1 else ''}"
          if f.abstained is not None else "abstentions not recorded")
    fa = (f"false alarms on {f.clean_scenario} ({FALSE_ALARM}, lower is better) {_cell(f.clean)}" if f.clean
          else f"no {FALSE_ALARM} rows on the clean control {f.clean_scenario}" if f.clean_scenario
          else "no clean control in this run")
    return f"{f.rule}: {f.best[0]} × {f.best[1]} {FLAG_F1} {_cell(f.f1)}, {ab}; {fa}"


def flag_row(f: FlagVerdict, scenario: str, model: str, seed: int) -> dict:
    """One rule's answer as a row of the second summary table: the rule, its best detector, the flag F1, how often
    it abstained, its false alarms on the clean control."""
    return {"rule": f.rule, "best detector": f"{f.best[0]} × {f.best[1]}", FLAG_F1: _cell(f.f1),
            LINKS_KEY: {"best detector": explorer_href(scenario, model, seed, *f.best)},
            "abstained": (f"on {f.abstained} of {f.n_abstain} seed{'s' if f.n_abstain != 1 else ''}"
                          if f.abstained is not None else "not recorded"),
            "false alarms on the clean control": (f"{_cell(f.clean)} ({f.clean_scenario})" if f.clean
                                                  else "not run there" if f.clean_scenario else "no clean control")}


def _joined(parts: list[tuple[str, str]], several: bool) -> str:
    """One cell of per-value texts: the text alone where one value ranks, "by value: text" joined by " | "
    where several do."""
    parts = [(v, t) for v, t in parts if t and (t != "–" or not several)]  # "by auroc: –" says nothing
    if not several:
        return parts[0][1] if parts else "–"
    return " | ".join(f"by {v}: {t}" for v, t in parts) or "–"


def _separability(seeded: pd.DataFrame, scenario: str, m: str, ps: list, values: tuple[str, ...],
                  controls: dict[str, str], control_value: str) -> tuple[dict[str, str], bool]:
    """The first question's columns for one model: per separability value (:func:`separability_groups`) the
    best explanation detector, the best baseline, the margin over the reference, the verdict, the label-matched
    F1 beside them (the analyst who picks the right cluster), the controls; whether any detector has rows."""
    fams = [p.family for p in ps]
    parts: dict[str, list[tuple[str, str]]] = {}
    links: dict[str, str] = {}
    first_seed = int(seeded[(seeded.scenario == scenario) & (seeded.model == m)].seed.min())
    for value, only in separability_groups(seeded, scenario, m, fams, values):
        v = detection_verdict(seeded, scenario, m, ps, value, controls, control_value, only)
        if not v.cells:
            continue
        analyst = detection_verdict(seeded, scenario, m, ps, ANALYST, {}, "", only).cells if v.best else {}
        texts = {BY_COLUMN: value,
                 "best explanation detector": f"{v.best[0]} × {v.best[1]}: {_cell(v.cells[v.best])}" if v.best
                 else "–",
                 "best baseline": f"{v.baseline[0]} × {v.baseline[1]}: {_cell(v.cells[v.baseline])}" if v.baseline
                 else "–",
                 "over reference": f"{_cell(v.margin)} over {v.reference[0]} × {v.reference[1]}" if v.margin else "–",
                 "verdict": _verdict_text(v),
                 ANALYST_COLUMN: ", ".join(f"{k[0]} × {k[1]} {ANALYST} {_cell(analyst[k])}"
                                           for k in (v.best, v.baseline) if k and k in analyst) or "–",
                 **_controls_text(v, controls, control_value)}
        for key, t in texts.items():
            parts.setdefault(key, []).append((value, t))
        for column, k in (("best explanation detector", v.best), ("best baseline", v.baseline)):
            if k:
                links.setdefault(column, explorer_href(scenario, m, first_seed, *k))
    several = len(parts.get(BY_COLUMN, [])) > 1
    out = {k: (" | ".join(t for _, t in p) if k == BY_COLUMN else _joined(p, several)) for k, p in parts.items()}
    return ({**out, LINKS_KEY: links} if out else {}), bool(parts)


def detection_summary(seeded: pd.DataFrame, scenario: str, models: list[str], gates: dict[str, list[str]],
                      pres: dict[str, Presentation], controls: dict[str, str]) -> list[dict]:
    """Per model, two headlines: *does the detector separate the poison?* (the best explanation detector and the
    best baseline by a value no rule decides, the margin over the reference, the paired tests' verdict, the
    label-matched F1 beside them) and *can it flag the poison unaided?* (per rule: the best flag F1, how often
    the rule abstained, the same detector and rule's false alarms on the clean control)."""
    ps, values, _, control_values = detection_values(pres)
    control_value = control_values[0] if control_values else ""
    axis = reliance_axis(seeded[seeded.scenario == scenario], pres)
    old = is_old(seeded[seeded.scenario == scenario])
    out = []
    for m in models:
        n_seeds = int(seeded[(seeded.scenario == scenario) & (seeded.model == m)].seed.nunique())
        row = {"model": m, "status": model_status(m, gates, axis), "n": n_seeds}
        sep, any_rows = ({}, False) if m in gates else \
            _separability(seeded, scenario, m, ps, values, controls, control_value)
        flags = [] if m in gates else flag_verdicts(seeded, scenario, m, controls.get("clean"))
        if m in gates or not (any_rows or flags):
            out.append({**row, BY_COLUMN: "–", "best explanation detector": "–",
                        "best baseline": "–", "over reference": "–",
                        "verdict": "not ranked" if m in gates else "no detection rows", FLAG_COLUMN: "–"})
            continue
        row.update(sep or {BY_COLUMN: "–", "verdict": "no separability rows"})
        row[FLAG_COLUMN] = "; ".join(_flag_text(f) for f in flags) if flags else "no flagging rule's rows"
        first_seed = int(seeded[(seeded.scenario == scenario) & (seeded.model == m)].seed.min())
        row[FLAGS_KEY] = [flag_row(f, scenario, m, first_seed) for f in flags]
        if old:
            row["protocol"] = OLD_NOTE
        out.append(row)
    return out


SUMMARY_NOTE = ("Detection first, as two questions. Does the detector separate the poison? 'separates the poison? "
                "(by)': the label-free value the detectors are ranked by, one that no flagging rule decides (ARI of "
                "a partition detector's split; AUROC of a score or set detector's own score), so no detector is "
                "called worse for which half of a symmetric split a rule flagged; best explanation detector / best "
                "baseline (an input that is no explanation, e.g. activations or raw pixels, or a trivial floor): "
                "mean ± 95 % t half-width over seeds; 'over reference': paired difference to the reference "
                f"explainer with the same clusterer; '{ANALYST_COLUMN}': their label-matched F1 (the cluster matched "
                "to the poison with the ground truth, which an auditor does not have); verdict: paired tests by "
                "seed (exact sign-flip for <= 10 pairs, else Wilcoxon), "
                f"Holm-corrected, alpha = {ALPHA}: the best vs every other explanation detector and vs the best "
                "baseline; 'not told apart' names the detectors the tests cannot separate from the best, with the "
                "paired difference best - it and its interval (not told apart is not equal); where n seeds cannot "
                "reach alpha at all (the smallest p with n pairs is 2/2^n, times the tests for Holm) no verdict is "
                "given. The second question, whether it can flag the poison unaided, is the next table. Intervals "
                "stay inside the value's range; bimodal seeds read 'k of n seeds' with the values.")
FLAGS_NOTE = ("Can the detector flag the poison unaided? Per flagging rule (docs/detectors.md, 'Flagging rules'): the "
              f"detector whose flagged set has the best {FLAG_F1} here (an abstaining rule flags nothing: F1 0), on "
              "how many seeds the rule abstained for it, and the same detector and rule's false-alarm rate (the "
              "share of the class it flags) on the clean control, lower is better.")
