"""The detection controls beside a backdoor's detection: per detector x flagging rule, the split's ranking value
and each rule's flag F1 here and on the label-flip control (label noise, no trigger), and on the clean control
what counts false alarms (the share a rule flags, on how many seeds it abstained).

:func:`~hansbench.bench.report.verdicts.controls.control_grid` (the verdicts step) computes the cells;
:func:`control_tables` renders them.
"""

from __future__ import annotations

import pandas as pd

from hansbench.bench.report import cells
from hansbench.bench.report.detection_tables import NO_RULE, abstained_text
from hansbench.bench.report.leaderboard import SECTIONS, Presentation, Table
from hansbench.bench.report.tables import Context, frames, head, header
from hansbench.bench.report.verdicts.controls import control_grid
from hansbench.bench.report.verdicts.protocol import ABSTAINED

NOTE = ("What a detector flags on the label-flip control is label noise (the images the backdoor would poison, "
        "relabelled but not stamped), not the trigger; on the clean control nothing is poisoned, so whatever it flags "
        "is a false alarm (a share of the clustered samples). Rule '–': the split's own value, which no rule decides.")


def control_tables(seeded: pd.DataFrame, scenario: str, model: str, ps: list[Presentation], controls: dict[str, str],
                   ctx: Context) -> list[Table]:
    """Per detector: the ranking value here and on the label-flip control, the control values on the clean one."""
    grid = control_grid(seeded, scenario, model, ps, controls)
    if grid is None:
        return []
    n_max, here = grid.n_max, grid.columns[0].name
    disp, sort, tidy = frames(grid, lambda row: {"detector": f"{ctx.label(row[0], model)} × {row[1]}",
                                                 "rule": row[2] or NO_RULE},
                              lambda row, col, x: abstained_text(x) if col.metric == ABSTAINED else cells.text(x, n_max),
                              lambda row, col: dict(model=model, explainer=row[0], clusterer=row[1], rule=row[2],
                                                    metric=col.metric,
                                                    scenario_of_value=grid.extra["scenario_of"][col.name]))
    arrow = {head(c): header(c.name, c.unit, c.higher, c.name == here) for c in grid.columns}  # here only
    disp, sort = ([{arrow.get(k, k): v for k, v in r.items()} for r in rows] for rows in (disp, sort))
    how = cells.cells_note([x.n for x in grid.cells.values()], grid.seeds, ctx.dev_seeds, grid.cells.values())
    title = f"Detection controls: {model}"
    return [Table(title, pd.DataFrame(disp), f"{how} {NOTE}", "detection-controls", "detection", model,
                  pd.DataFrame(sort), pd.DataFrame(tidy), f"{title}. {how}", SECTIONS["detection"], result=grid)]
