"""The verdicts of the detection controls beside a backdoor's detection: per detector x flagging rule, the ranking
value of the split here and on the label-flip control (label noise, no trigger), the flag F1 of each rule here and
on the label-flip control, and on the clean control the values that count false alarms (the share a rule flags,
how often it abstained; a plugin's declared control values of the split)."""

from __future__ import annotations

import pandas as pd

from hansbench.bench.report.leaderboard import Presentation
from hansbench.bench.report.results import Column, Grid, cell
from hansbench.bench.report.verdicts.detection import detection_values, detector_rows, first_present
from hansbench.bench.report.verdicts.protocol import ABSTAINED, FALSE_ALARM, FLAG_F1


def _columns(seeded: pd.DataFrame, scenario: str, model: str, fams: list[str], value: str,
             controls: dict[str, str], control_values: tuple[str, ...]) -> list[tuple[str, pd.DataFrame]]:
    """(column name, its rows) of the grid: the split's value and the rules' flag F1 here and on the label-flip
    control, the clean control's values."""
    every = None  # every rule, the split's ("") included
    cols: list[tuple[str, pd.DataFrame]] = []
    flip, clean = controls.get("label-flip"), controls.get("clean")
    for v, rule in ((value, ""), (FLAG_F1, every)):
        d = detector_rows(seeded, scenario, model, fams, v, rule)
        d = d if rule == "" else d[d.rule != ""]
        if d.empty:
            continue
        cols.append((f"{v} on {scenario}", d))
        if flip:
            f = detector_rows(seeded, flip, model, fams, v, rule)
            cols.append((f"{v} on {flip} (label flip, no trigger)", f if rule == "" else f[f.rule != ""]))
    if clean:
        for v in control_values:
            cols.append((f"{v} on {clean} (clean control)", detector_rows(seeded, clean, model, fams, v)))
        for v in (FALSE_ALARM, ABSTAINED):
            d = detector_rows(seeded, clean, model, fams, v, every)
            cols.append((f"{v} on {clean} (clean control)", d[d.rule != ""]))
    return [(n, d) for n, d in cols if not d.empty or "label flip" in n]


def control_grid(seeded: pd.DataFrame, scenario: str, model: str, ps: list[Presentation],
                 controls: dict[str, str]) -> Grid | None:
    """Rows (explainer, clusterer, rule) of the detectors here; columns (:func:`_columns`);
    ``extra["scenario_of"]``: the scenario each column's values come from."""
    if not controls or not ps:
        return None
    _, values, _, control_values = detection_values({p.family: p for p in ps})
    fams = [p.family for p in ps]
    value = first_present(seeded, scenario, model, fams, values)
    cols = _columns(seeded, scenario, model, fams, value, controls, control_values)
    here = [d for n, d in cols if n.endswith(f" on {scenario}")]
    if not here or len(cols) == len(here):
        return None
    grid_cells = {(e, c, r, name): cell(g) for name, d in cols
                  for (e, c, r), g in d.groupby(["explainer", "clusterer", "rule"])}
    columns = tuple(Column(name, d.metric.iloc[0] if len(d) else "", d.unit.iloc[0] if len(d) else "",
                           bool(d.higher_is_better.iloc[0]) if len(d) else True, False) for name, d in cols)
    h = pd.concat(here)
    detectors = list(dict.fromkeys(zip(h.explainer, h.clusterer)))
    rows = sorted(dict.fromkeys(zip(h.explainer, h.clusterer, h.rule)),
                  key=lambda k: (detectors.index(k[:2]), k[2] != ""))  # a detector's split, then its rules
    return Grid(tuple(rows), columns, grid_cells,
                tuple(sorted(dict.fromkeys(int(s) for s in h.seed))),
                extra={"scenario_of": {name: d.scenario.iloc[0] if len(d) else "" for name, d in cols}})
