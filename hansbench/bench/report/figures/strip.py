"""A strip of dots: one dot per seed on the value's range, the mean marked, for a cell whose seeds are bimodal
(:attr:`hansbench.bench.report.results.Cell.split`: hit-or-miss outcomes, where a mean ± interval describes no
seed). Two renderings of the same thing:

- :func:`strip_svg`: a small, fixed-size inline SVG for a table cell of the HTML page, written by hand (no
  matplotlib, no scripts; every text escaped), readable without colour: the range's ends are ticked, the
  seeds are dots, the mean a vertical bar, the values themselves in its ``<title>`` (a tooltip and what a
  screen reader reads). :func:`cell_strip_svg` draws a :class:`~hansbench.bench.report.results.Cell`.
- :func:`draw_strip`: the same dots on matplotlib axes at one x position (a sweep point), spread sideways so
  equal values do not hide each other.
"""

from __future__ import annotations

import math
from html import escape

from hansbench.bench.report.stats import format_number

WIDTH, HEIGHT, PAD = 96, 16, 5  # px: fits a table cell beside its text
DOT_R = 3.0
DOT_COLOR, MEAN_COLOR, AXIS_COLOR = "#0072B2", "#CC3311", "#888888"


def _x(v: float, lo: float, hi: float) -> float:
    """The x pixel of value ``v`` on [lo, hi], the range's ends ``PAD`` px inside the box."""
    return PAD + (v - lo) / (hi - lo) * (WIDTH - 2 * PAD)


def _check(values, lo: float, hi: float) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"strip_svg needs a finite range lo < hi, got [{lo}, {hi}]: pass the value's range "
                         "(Cell.bounds)")
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        raise ValueError("strip_svg needs at least one finite value (a seed's value): draw nothing for an empty cell")
    out = [x for x in v if not lo <= x <= hi]
    if out:
        raise ValueError(f"strip_svg: value {out[0]} lies outside the range [{lo}, {hi}]: pass the range the value "
                         "lies in (results.value_range gives None where it does not; then draw no strip)")
    return v


def strip_title(values, lo: float, hi: float, unit: str = "", level: float | None = None) -> str:
    """What the strip shows, in words (unescaped): the values by seed, their mean, the range and the level."""
    v = _check(values, lo, hi)
    u = f" {unit}" if unit else ""
    mean = sum(v) / len(v)
    text = (f"{len(v)} seed{'s' if len(v) != 1 else ''}: {', '.join(format_number(x, 3) for x in v)}{u}; "
            f"mean {format_number(mean, 3)}{u}; range {format_number(lo)} to {format_number(hi)}{u}")
    if level is not None:
        text += f"; level {format_number(level)}{u}"
    return text


def strip_svg(values, lo: float, hi: float, *, unit: str = "", level: float | None = None) -> str:
    """An inline ``<svg>`` (:data:`WIDTH` x :data:`HEIGHT` px) of ``values`` (one dot per finite value, in the
    order given) on [lo, hi]: a grey axis ticked at both ends, the mean as a red bar, ``level`` (the cell's
    "reach" level, optional) as a dashed tick; ``<title>`` and ``aria-label`` carry the values. Raises
    ValueError for an empty or out-of-range input."""
    v = _check(values, lo, hi)
    label = escape(strip_title(v, lo, hi, unit, level), quote=True)
    mid = HEIGHT / 2
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' class='strip' width='{WIDTH}' height='{HEIGHT}' "
             f"viewBox='0 0 {WIDTH} {HEIGHT}' role='img' aria-label='{label}'><title>{label}</title>",
             f"<line x1='{PAD}' y1='{mid}' x2='{WIDTH - PAD}' y2='{mid}' stroke='{AXIS_COLOR}' stroke-width='1'/>"]
    for end in (PAD, WIDTH - PAD):
        parts.append(f"<line x1='{end}' y1='{mid - 4}' x2='{end}' y2='{mid + 4}' stroke='{AXIS_COLOR}' "
                     "stroke-width='1'/>")
    if level is not None and lo <= level <= hi:
        x = _x(level, lo, hi)
        parts.append(f"<line class='level' x1='{x:.2f}' y1='{mid - 5}' x2='{x:.2f}' y2='{mid + 5}' "
                     f"stroke='{AXIS_COLOR}' stroke-width='1' stroke-dasharray='2,1'/>")
    for x in v:
        parts.append(f"<circle class='seed' cx='{_x(x, lo, hi):.2f}' cy='{mid}' r='{DOT_R}' fill='{DOT_COLOR}' "
                     "fill-opacity='0.55' stroke='#ffffff' stroke-width='0.5'/>")
    m = _x(sum(v) / len(v), lo, hi)
    parts.append(f"<line class='mean' x1='{m:.2f}' y1='{mid - 6}' x2='{m:.2f}' y2='{mid + 6}' stroke='{MEAN_COLOR}' "
                 "stroke-width='1.5'/>")
    return "".join(parts) + "</svg>"


def cell_strip_svg(cell, unit: str = "") -> str:
    """The strip of a bimodal cell (``cell.split``, with its range ``cell.bounds``); "" for any other cell, so a
    renderer can call it on every cell and put what it returns beside the cell's text."""
    if not getattr(cell, "split", False) or getattr(cell, "bounds", None) is None:
        return ""
    hits = getattr(cell, "hits", None)
    return strip_svg(cell.values, *cell.bounds, unit=unit, level=None if hits is None else hits.level)


def draw_strip(ax, x: float, values, color: str, width: float, marker: str = "o", ms: float = 3.0,
               mean: bool = True) -> None:
    """The seeds of one point on matplotlib axes: a dot per value at ``x`` spread over ``width`` (in x units,
    sorted by value so equal values sit side by side), hollow; with ``mean`` the mean as a short bar (a figure
    that marks the mean itself passes False)."""
    v = sorted(float(s) for s in values if math.isfinite(float(s)))
    if not v:
        return
    offsets = [0.0] if len(v) == 1 else [width * (i / (len(v) - 1) - 0.5) for i in range(len(v))]
    ax.plot([x + o for o in offsets], v, ls="", marker=marker, ms=ms, mfc="none", mec=color, mew=0.9, zorder=3)
    if mean:
        ax.plot([x - width * 0.7, x + width * 0.7], [sum(v) / len(v)] * 2, color=color, lw=1.6,
                solid_capstyle="butt", zorder=3)
