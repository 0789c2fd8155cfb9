"""The detection controls beside a backdoor's detection: per detector, the ranking value here and on the
label-flip control (label noise, no trigger), the control values on the clean control (false alarms).

:func:`control_grid` computes the cells; :func:`control_tables` renders them.
"""

from __future__ import annotations

import pandas as pd

from hansbench.bench.report import cells
from hansbench.bench.report.leaderboard import SECTIONS, Presentation, Table
from hansbench.bench.report.results import Column, Grid, cell
from hansbench.bench.report.tables import Context, frames, head, header

NOTE = ("What a detector flags on the label-flip control is label noise (the images the backdoor would poison, "
        "relabelled but not stamped), not the trigger; on the clean control nothing is poisoned, so whatever it flags "
        "is a false alarm (a share of the clustered samples).")


def control_grid(seeded: pd.DataFrame, scenario: str, model: str, ps: list[Presentation],
                 controls: dict[str, str]) -> Grid | None:
    """Rows (explainer, clusterer) of the detectors here; columns the value here, on the label-flip control and
    the clean control's values; ``extra["scenario_of"]``: the scenario each column's values come from."""
    from hansbench.bench.report.summary import detection_values, detector_rows, first_present

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


def control_tables(seeded: pd.DataFrame, scenario: str, model: str, ps: list[Presentation], controls: dict[str, str],
                   ctx: Context) -> list[Table]:
    """Per detector: the ranking value here and on the label-flip control, the control values on the clean one."""
    grid = control_grid(seeded, scenario, model, ps, controls)
    if grid is None:
        return []
    n_max, here = grid.n_max, grid.columns[0].name
    disp, sort, tidy = frames(grid, lambda row: {"detector": f"{ctx.label(row[0], model)} × {row[1]}"},
                              lambda row, col, x: cells.text(x, n_max),
                              lambda row, col: dict(model=model, explainer=row[0], clusterer=row[1], metric=col.metric,
                                                    scenario_of_value=grid.extra["scenario_of"][col.name]))
    arrow = {head(c): header(c.name, c.unit, c.higher, c.name == here) for c in grid.columns}  # here only
    disp, sort = ([{arrow.get(k, k): v for k, v in r.items()} for r in rows] for rows in (disp, sort))
    how = cells.interval_note([x.n for x in grid.cells.values()], grid.seeds, ctx.dev_seeds)
    title = f"Detection controls: {model}"
    return [Table(title, pd.DataFrame(disp), f"{how} {NOTE}", "detection-controls", "detection", model,
                  pd.DataFrame(sort), pd.DataFrame(tidy), f"{title}. {how}", SECTIONS["detection"], result=grid)]
