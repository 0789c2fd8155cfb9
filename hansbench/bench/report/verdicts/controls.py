"""The verdicts of the detection controls beside a backdoor's detection: per detector, the cells of the ranking
value here and on the label-flip control (label noise, no trigger), and of the control values on the clean
control (false alarms)."""

from __future__ import annotations

import pandas as pd

from hansbench.bench.report.leaderboard import Presentation
from hansbench.bench.report.results import Column, Grid, cell
from hansbench.bench.report.verdicts.detection import detection_values, detector_rows, first_present


def control_grid(seeded: pd.DataFrame, scenario: str, model: str, ps: list[Presentation],
                 controls: dict[str, str]) -> Grid | None:
    """Rows (explainer, clusterer) of the detectors here; columns the value here, on the label-flip control and
    the clean control's values; ``extra["scenario_of"]``: the scenario each column's values come from."""
    if not controls or not ps:
        return None
    _, values, _, control_values = detection_values({p.family: p for p in ps})
    fams = [p.family for p in ps]
    value = first_present(seeded, scenario, model, fams, values)
    here = detector_rows(seeded, scenario, model, fams, value)
    if here.empty:
        return None
    cols: list[tuple[str, pd.DataFrame]] = [(f"{value} on {scenario}", here)]
    if "label-flip" in controls:
        cols.append((f"{value} on {controls['label-flip']} (label flip, no trigger)",
                     detector_rows(seeded, controls["label-flip"], model, fams, value)))
    for v in control_values if "clean" in controls else ():
        cols.append((f"{v} on {controls['clean']} (clean control)", detector_rows(seeded, controls["clean"], model, fams, v)))
    if len(cols) == 1:
        return None
    grid_cells = {(e, c, name): cell(g) for name, d in cols for (e, c), g in d.groupby(["explainer", "clusterer"])}
    columns = tuple(Column(name, d.metric.iloc[0] if len(d) else "", d.unit.iloc[0] if len(d) else "",
                           bool(d.higher_is_better.iloc[0]) if len(d) else True, False) for name, d in cols)
    return Grid(tuple(dict.fromkeys(zip(here.explainer, here.clusterer))), columns, grid_cells,
                tuple(sorted(dict.fromkeys(int(s) for s in here.seed))),
                extra={"scenario_of": {name: d.scenario.iloc[0] if len(d) else "" for name, d in cols}})
