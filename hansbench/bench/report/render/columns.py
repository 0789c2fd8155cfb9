"""Wide tables split into parts by columns, the row key repeated in each, so that a part fits the width a format
has: LaTeX's ``\\textwidth`` (:data:`LATEX_BUDGET`) and an HTML window of 1280 px (:data:`HTML_BUDGET`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from hansbench.bench.report.leaderboard import format_value

KEY_COLUMNS = ("explainer", "model", "method", "split", "status", "detector", "scenario")
LATEX_BUDGET = 120  # characters per row of a part at \footnotesize (stacked headers; a part still wider than \linewidth is scaled to it, the scale stated)
HTML_BUDGET = 185  # the same at 13 px in a 1280 px window (checked in Chromium)


def _width(frame: pd.DataFrame, c: Any) -> int:
    """A column's width in characters: its longest cell, or its header's longest ' / '-separated piece."""
    head = max((len(p) for p in str(c).split(" / ")), default=0)
    body = max((len(format_value(v)) for v in frame[c]), default=0)
    return max(head, body)


def split_columns(frame: pd.DataFrame, budget: int) -> list[pd.DataFrame]:
    """The frame as parts of at most ``budget`` characters per row (key columns in every part)."""
    keys = [c for c in frame.columns if c in KEY_COLUMNS]
    rest = [c for c in frame.columns if c not in keys]
    used = sum(_width(frame, c) + 3 for c in keys)
    parts, cur, width = [], [], used
    for c in rest:
        w = _width(frame, c) + 3
        if cur and width + w > budget:
            parts.append(cur)
            cur, width = [], used
        cur.append(c)
        width += w
    if cur or not parts:
        parts.append(cur)
    return [frame[keys + p] for p in parts]
