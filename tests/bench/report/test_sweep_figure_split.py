"""A sweep figure's spread fits the outcome: the interval of a point stays inside the value's range (the tables'
clipped interval, not a band above F1 = 1), and a point whose seeds are hit or miss shows its seeds as dots
instead of an interval; the breakdown level is not drawn like the (black dotted) reference. Drawn on one axes
with :func:`~hansbench.bench.report.figures.sweep._draw`, what every sweep panel draws with."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex

from hansbench.bench.report.figures import sweep as figure_module
from hansbench.bench.report.figures.styles import method_style
from hansbench.bench.report.stats import t_interval

XS = {"CH-5": 0.05, "CH-10": 0.1, "CH-20": 0.2, "CH-30": 0.3}
SEEDS = {"CH-5": [0.28, 0.3, 0.33], "CH-10": [0.48, 0.5, 0.52], "CH-20": [0.0, 1.0, 0.98],  # one seed misses
         "CH-30": [0.94, 0.97, 1.0]}  # the t-interval of these passes 1


def _drawn(bounds):
    fig, ax = plt.subplots()
    by_point = {sc: pd.Series(v, index=[0, 1, 2]) for sc, v in SEEDS.items()}
    style = {"color": method_style("lrp").color, "marker": "^", "ls": "-"}
    figure_module._draw(ax, XS, by_point, {}, style, "lrp × spray", bounds=bounds, offset=0.004)
    bars = sorted((seg[0][0], min(seg[0][1], seg[1][1]), max(seg[0][1], seg[1][1]))
                  for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments())
    dots = [ln for ln in ax.get_lines() if ln.get_marker() == "o" and ln.get_markerfacecolor() == "none"]
    plt.close(fig)
    return bars, dots


def test_intervals_stay_in_the_values_range_and_bimodal_points_show_their_seeds():
    bars, dots = _drawn((0.0, 1.0))
    raw = t_interval(np.array(SEEDS["CH-30"]))
    assert raw.high > 1.0  # what the band drew before: an F1 above 1
    top = [b for b in bars if abs(b[0] - 0.3) < 0.01]
    assert top and top[0][2] == pytest.approx(1.0) and top[0][1] == pytest.approx(raw.low)
    assert all(0.0 <= lo <= hi <= 1.0 for _, lo, hi in bars)
    # CH-20 is hit or miss (0, 1, 0.98): no interval, a dot per seed beside its marker
    assert [round(b[0], 2) for b in bars] == [0.05, 0.1, 0.3]
    assert len(dots) == 1 and sorted(dots[0].get_ydata()) == [0.0, 0.98, 1.0]
    assert all(abs(x - 0.204) < 0.01 for x in dots[0].get_xdata())


def test_an_unknown_range_keeps_the_t_interval_and_no_strip():
    bars, dots = _drawn(None)  # no declared range: nothing to cut to, no bimodality to decide
    assert len(bars) == 4 and not dots
    assert max(hi for _, _, hi in bars) == pytest.approx(t_interval(np.array(SEEDS["CH-20"])).high)


def test_the_caption_and_the_level_say_how_the_spread_is_drawn():
    assert "cut to the value's range" in figure_module.spread_text([3]) and "bimodal" in figure_module.spread_text([3])
    fig, ax = plt.subplots()
    figure_module._level_line(ax, 0.8)
    (level,) = ax.get_lines()
    assert level.get_linestyle() == ":" and to_hex(level.get_color()) != to_hex(method_style("random").color)
    assert figure_module._level_handle(0.8).get_label() == "breakdown level 0.8"
    plt.close(fig)
