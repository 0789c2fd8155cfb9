"""Detection first: the summary that opens the page. Per scenario and model kind it answers, by the first
label-free value the detection metric declares (``Metric.label_free``, e.g. the F1 of the cluster flagged without
labels): which explainer x clusterer detects the poisoned samples best, which non-explanation baseline (a
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
from hansbench.bench.report.leaderboard import Presentation, model_status, reliance_axis
from hansbench.bench.report.rankings import Ranking, rankings  # noqa: F401  (re-exported: summary.rankings)
from hansbench.bench.report.results import Cell
from hansbench.bench.report.stats import ALPHA
from hansbench.bench.report.verdicts.detection import (  # noqa: F401  (re-exported: the names importers find here)
    detection_values,
    detector_rows,
    first_present,
)
from hansbench.bench.report.verdicts.summary import DetectionVerdict, Detector, detection_verdict  # noqa: F401

MAX_TIE_NAMES = 5


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
    axis = reliance_axis(seeded[seeded.scenario == scenario], pres)
    out = []
    for m in models:
        n_seeds = int(seeded[(seeded.scenario == scenario) & (seeded.model == m)].seed.nunique())
        # the group's first value that this scenario and model have (e.g. ARI where no clusterer flags)
        value = first_present(seeded, scenario, m, [p.family for p in ps], values)
        by_text = value if label == "label-free" else (f"{value} (no label-free value declared: the headline's "
                                                        "first)" if value else "–")
        row = {"model": m, "status": model_status(m, gates, axis), "by": by_text, "n": n_seeds}
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
                f"Holm-corrected, alpha = {ALPHA}: the best vs every other explanation detector and vs the best "
                "baseline; 'not told apart' names the detectors the tests cannot separate from the best, with the "
                "paired difference best - it and its interval (not told apart is not equal); where n seeds cannot "
                "reach alpha at all (the smallest p with n pairs is 2/2^n, times the tests for Holm) no verdict is "
                "given. Intervals stay inside the value's range; bimodal seeds read 'k of n seeds' with the values.")
