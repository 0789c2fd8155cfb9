"""The figure of a sweep axis: per model kind, (a) how strongly the poisoning took (the reliance family's
``effect`` value, e.g. CH's accuracy gap or a backdoor's ASR; its 0/1 gates where it declares none), (b) the
label-free detection headline and (c) the threshold-free :data:`SCORE_VALUE`, against the swept value, one line
per detector, hollow where a reliance gate failed. Data and the breakdown table: :mod:`hansbench.bench.report.sweep_report`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from hansbench.bench.report.figures.base import Figure, seed_text  # noqa: E402
from hansbench.bench.report.figures.strip import draw_strip  # noqa: E402
from hansbench.bench.report.figures.styles import PAGE_WIDTH, method_style, page_style, save, vector_twin  # noqa: E402
from hansbench.bench.report.results import value_range  # noqa: E402
from hansbench.bench.report.stats import clipped, is_split, t_interval  # noqa: E402
from hansbench.bench.report.verdicts.common import input_kinds  # noqa: E402
from hansbench.bench.suite.sweep import value_text  # noqa: E402

GATE_THRESHOLD = 0.5  # the side of 0.5 a gate value is on decides it (leaderboard.gate_notes)
SCORE_VALUE = "auroc"  # the threshold-free detection value of panel (c), where a detection family declares it
AXIS_LABELS = {"fraction": "fraction poisoned (share of the class the poisoning draws from)"}
GATE_COLORS = ("#444444", "#CC3311", "#009988", "#EE7733")
LEVEL_COLOR = "#888888"  # the breakdown level: grey and labelled, never mistaken for the (black dotted) reference
BAR_ALPHA = 0.6
DODGE, STRIP_WIDTH = 0.008, 0.008  # of the x-axis' span: a detector's bars and dots sit beside its neighbours'
SPLIT_TEXT = ("cut to the value's range; where a point's seeds are bimodal (hit or miss: two neighbouring seeds more "
              "than half the range apart) no bar but a column of hollow dots, one per seed")


def axis_label(field: str) -> str:
    """What the x-axis plots: the swept field's meaning and unit where known, else its name."""
    return AXIS_LABELS.get(field, field)


def _x(data) -> dict[str, float]:
    """Scenario -> its position on the x-axis: the value on a numeric axis, the index on a categorical one."""
    return {str(name): (float(v) if data.axis.numeric else float(i)) for i, (v, name) in enumerate(data.axis.points)}


def spread_text(n_values: list[int]) -> str:
    """How a figure shows the spread over seeds, by the points' n."""
    lo, hi = (min(n_values), max(n_values)) if n_values else (0, 0)
    if lo >= 3:
        return f"band: 95 % Student-t interval of the mean over seeds (a bar beside each point), {SPLIT_TEXT}"
    if hi <= 2:
        return "small points: each seed (n <= 2 seeds: no interval)"
    return (f"band: 95 % Student-t interval where n >= 3 seeds (a bar beside each point), {SPLIT_TEXT}; small "
            "points: each seed where n <= 2")


def _method_line(explainer: str, clusterer: str, kinds: set[str], refs: set[str]) -> dict:
    """Colour: the explainer's (as in every figure); marker: the clusterer's; baselines dashed, the reference dotted."""
    ls = "--" if explainer in kinds else ":" if explainer in refs else method_style(explainer).linestyle
    return {"color": method_style(explainer).color, "marker": method_style(clusterer).marker, "ls": ls}


def _draw(ax, xs: dict[str, float], by_point: dict[str, pd.Series], took: dict[str, bool], style: dict,
          label: str, spread: bool = True, bounds: tuple[float, float] | None = None,
          offset: float = 0.0) -> Line2D | None:
    """Mean over seeds along the axis; hollow where not taken; with ``spread`` the t-interval where n >= 3, cut to the
    value's range ``bounds`` (:func:`~hansbench.bench.report.stats.clipped`, as the tables cut their intervals),
    each seed where n <= 2, and each seed as a strip of dots instead of the band where the seeds are bimodal
    (:func:`~hansbench.bench.report.stats.is_split`, the tables' "k of n"); a 0/1 gate's mean is the share of
    seeds: no spread. The interval is a vertical bar and the strip a column of dots, ``offset`` to the right of
    the point's marker, so the detectors of one panel do not cover each other."""
    pts = sorted(((xs[sc], sc, s) for sc, s in by_point.items() if len(s)), key=lambda p: p[0])
    if not pts:
        return None
    x = np.array([p[0] for p in pts])
    scs, series = [p[1] for p in pts], [p[2] for p in pts]
    mean = np.array([s.mean() for s in series])
    ax.plot(x, mean, color=style["color"], ls=style["ls"], lw=1.3)
    for xi, mi, sc in zip(x, mean, scs):
        filled = took.get(sc, True)
        ax.plot([xi], [mi], ls="", marker=style["marker"], ms=4.5, color=style["color"], mec=style["color"],
                mfc=style["color"] if filled else "white", mew=1.0, zorder=3)
    if not spread:
        return Line2D([], [], color=style["color"], ls=style["ls"], marker=style["marker"], ms=4.5, lw=1.3,
                      label=label)
    split = [is_split(s.to_numpy(dtype=float), bounds) for s in series]
    band = [(xi, t_interval(s.to_numpy(dtype=float))) for xi, s in zip(x, series) if len(s) >= 3]
    bimodal = dict(zip(x.tolist(), split))
    band = [(xi, None if bimodal[float(xi)] else clipped(iv, bounds)) for xi, iv in band]
    bars = [(xi, iv) for xi, iv in band if iv is not None]
    if bars:  # one thin bar per point beside its marker: eight overlapping n = 3 bands were a wash over 0..1
        ax.vlines([xi + offset for xi, _ in bars], [iv.low for _, iv in bars], [iv.high for _, iv in bars],
                  color=style["color"], lw=1.1, alpha=BAR_ALPHA, zorder=2)
    width = STRIP_WIDTH * (max(xs.values()) - min(xs.values()) or 1.0)
    for xi, s, cut in zip(x, series, split):
        if cut:
            draw_strip(ax, xi + offset, s.to_numpy(dtype=float), style["color"], width, mean=False)
        elif len(s) <= 2:
            ax.plot([xi] * len(s), s.to_numpy(dtype=float), ls="", marker=".", ms=2.5, color=style["color"],
                    alpha=0.7)
    return Line2D([], [], color=style["color"], ls=style["ls"], marker=style["marker"], ms=4.5, lw=1.3, label=label)


def _level_line(ax, level: float) -> None:
    """The breakdown level: grey dotted and named on the axes (the reference detector is black dotted)."""
    ax.axhline(level, color=LEVEL_COLOR, lw=1.2, ls=":", zorder=1)


def _level_handle(level: float) -> Line2D:
    """The level's legend entry (named there, not on the axes, where it covered the detectors' markers)."""
    return Line2D([], [], color=LEVEL_COLOR, lw=1.2, ls=":", label=f"breakdown level {level:g}")


def _by_point(d: pd.DataFrame) -> dict[str, pd.Series]:
    return {sc: g.groupby("seed")["value"].mean().dropna() for sc, g in d.groupby("scenario", sort=False)}


def sweep_figure(data, out: Path) -> Figure:
    """One figure per axis: a row of panels per model kind, (a) reliance gates, (b) label-free detection,
    (c) :data:`SCORE_VALUE` where any row has it; written as ``<stem>.png`` and its SVG twin into ``out``."""
    axis = data.axis
    kinds, _ = input_kinds()
    refs = {p.reference_explainer for p in data.pres.values() if p.shape == "detection" and p.reference_explainer}
    xs = _x(data)
    n_cols = 2 + bool(data.score)
    handles: dict[str, Line2D] = {}
    ns: list[int] = []
    with page_style():
        fig, axes = plt.subplots(len(data.models), n_cols, squeeze=False, layout="constrained",
                                 figsize=(PAGE_WIDTH, 2.3 * len(data.models) + 1.6))
        for row, m in zip(axes, data.models):
            took = {sc: data.took(sc, m) for sc in data.scenarios}
            _reliance_panel(row[0], data, m, xs, took)
            panels = [(row[1], data.headline.get(m), "(b)")]
            panels += [(row[2], data.score.get(m), "(c)")] if n_cols > 2 else []
            for ax, value, letter in panels:
                ax.set_title(f"{letter} {value or (SCORE_VALUE if letter == '(c)' else 'detection')} · {m}")
                if not value:
                    ax.text(0.5, 0.5, "no rows for this model kind", transform=ax.transAxes, ha="center", va="center")
                    ax.set(xticks=[], yticks=[])
                    continue
                d = data.detection(m, value)
                unit = d.unit.iloc[0] if len(d) else ""
                bounds = value_range(value, unit, False, d.value)
                span = (max(xs.values()) - min(xs.values())) or 1.0
                groups = list(d.groupby(["explainer", "clusterer"], sort=False))
                for j, ((e, c), g) in enumerate(groups):
                    label = f"{e} × {c}" + (" (baseline)" if e in kinds else " (reference)" if e in refs else "")
                    bp = _by_point(g)
                    ns += [len(s) for s in bp.values()]
                    h = _draw(ax, xs, bp, took, _method_line(e, c, kinds, refs), label, bounds=bounds,
                              offset=DODGE * span * (j + 1 - len(groups) / 2))
                    if h is not None:
                        handles.setdefault(label, h)
                ax.set_ylabel(value + (f" [{unit}]" if unit and unit != "bool" else "")
                              + (f" ({data.label})" if data.label and value == data.headline.get(m) else ""))
                if value == data.headline.get(m):
                    _level_line(ax, axis.level)
                if len(d) and d.value.between(0, 1).all():  # a share: its interval drawn within what it can be
                    ax.set_ylim(-0.03, 1.03)
        for ax in axes.flat:
            if not axis.numeric and ax.get_xticks().size:
                ax.set_xticks(range(len(axis.points)), [value_text(v) for v, _ in axis.points])
        for ax in axes[-1]:  # the bottom row names the x-axis, wrapped to the panel's width
            ax.set_xlabel(textwrap.fill(axis_label(axis.field), 30))
        if handles:
            handles[f"breakdown level {axis.level:g}"] = _level_handle(axis.level)
            fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=3, frameon=False,
                       fontsize=6.5)
        fig.suptitle(axis.title)
        name = save(fig, out, f"{axis.stem}.png")
    seeds = seed_text(data.seeded.seed)
    value = ", ".join(dict.fromkeys(data.headline.values())) or "no detection value"
    failed = "; ".join(f"{sc} {m}: {', '.join(n)}" for (sc, m), n in data.failed.items())
    effects = ", ".join(dict.fromkeys(v for _, v, _ in data.effect.values()))
    panel_a = (f"(a) how strongly the poisoning took ({effects}, mean with the same spread)" if effects else
               f"(a) the reliance gate values (mean over seeds; a seed passes on the side of {GATE_THRESHOLD} its "
               "label says)")
    caption = (f"{axis.title}: per model kind, {panel_a}, (b) {value}, the {data.label or 'detection'} headline, per "
               "detector (explainer × clusterer; colour: the explainer, marker: the clusterer; baselines dashed, the "
               f"reference dotted), the grey dotted line at the breakdown level {axis.level:g}"
               + (f", (c) {SCORE_VALUE} the same way" if data.score else "")
               + f", against {axis_label(axis.field)}. Mean over n = {max(ns, default=0)} {seeds}; {spread_text(ns)}. "
               "Hollow marker: the poisoning did not take on at least one seed there (a reliance gate failed"
               + (f": {failed}" if failed else "; none here") + ").")
    return Figure("", name, caption, vector_twin(name))




def _reliance_panel(ax, data, m: str, xs: dict[str, float], took: dict[str, bool]) -> None:
    """(a): the reliance effect with its spread over seeds; the 0/1 gate values where no effect is declared."""
    effect = data.effect.get(m)
    if effect:
        f, v, unit = effect
        d = data.seeded[(data.seeded.model == m) & (data.seeded.family == f) & (data.seeded.metric == v)]
        _draw(ax, xs, _by_point(d), took, {"color": GATE_COLORS[0], "marker": "o", "ls": "-"}, v,
              bounds=value_range(v, unit, False, d.value))
        ax.axhline(0.0, color="#888888", lw=0.8, ls="--")
        if unit == "%" and len(d) and d.value.between(0, 100).all():
            ax.set_ylim(-3, 103)
        ax.set(ylabel=v + (f" [{unit}]" if unit else ""), title=f"(a) how strongly it took · {m}")
        return
    handles = []
    for j, (f, g, higher) in enumerate(data.gates.get(m, [])):
        d = data.seeded[(data.seeded.model == m) & (data.seeded.family == f) & (data.seeded.metric == g)]
        style = {"color": GATE_COLORS[j % len(GATE_COLORS)], "marker": "os^D"[j % 4], "ls": "-"}
        h = _draw(ax, xs, _by_point(d), took, style, f"{g} ({'≥' if higher else '<'} 0.5 passes)", False)
        handles += [h] if h is not None else []
    if handles:
        ax.legend(handles=handles, fontsize=6, loc="best", frameon=True)
    ax.axhline(GATE_THRESHOLD, color="#888888", lw=0.8, ls="--")
    ax.set(ylim=(-0.05, 1.05), ylabel="mean gate value over seeds", title=f"(a) did the poisoning take? · {m}")
