"""The HTML table shows a bimodal cell's seeds as a strip of dots beside its "k of n" text (issue 29 item 1), and
only there: a cell with an interval keeps its text alone."""

from __future__ import annotations

import re

import pandas as pd

from hansbench.bench.report.leaderboard import Table
from hansbench.bench.report.render.html import html_table
from hansbench.bench.report.results import Column, Grid, seed_cell
from hansbench.bench.report.tables import head


def test_a_split_cell_carries_its_strip_and_an_interval_cell_does_not():
    col = Column(name="flag-f1", metric="flag-f1", unit="", higher=True, directed=True)
    split = seed_cell(pd.Series([0.0, 1.0, 0.0, 1.0, 0.98], index=range(5)), bounds=(0.0, 1.0))
    steady = seed_cell(pd.Series([0.5, 0.52, 0.55, 0.51, 0.53], index=range(5)), bounds=(0.0, 1.0))
    assert split.split and not steady.split
    grid = Grid(rows=(("lrp",), ("gradcam",)), columns=(col,),
                cells={("lrp", "flag-f1"): split, ("gradcam", "flag-f1"): steady})
    frame = pd.DataFrame([{"explainer": "lrp", head(col): "3 of 5"}, {"explainer": "gradcam", head(col): "0.52"}])
    html = html_table(Table("t", frame, result=grid), "t")
    rows = re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>")[1])
    assert len(rows) == 2
    assert rows[0].count("<svg") == 1 and rows[0].count("class='seed'") == 5  # one dot per seed
    assert "<svg" not in rows[1]
