"""What the verdicts of every table shape share: the headline rows, the value columns and their names, the input
kinds that are no explanation."""

from __future__ import annotations

import pandas as pd

from hansbench.bench.report.leaderboard import Presentation
from hansbench.bench.report.results import Column

MINUS = " − "  # column names of values shown relative to the reference (display only; the CSV says relative_to)


def input_kinds() -> tuple[set[str], set[str]]:
    """(every non-explanation input kind, those that use no model: the raw-input controls), from the
    ``clusterer_inputs`` registry; {"activations", "pixels"} / {"pixels"} where it is absent."""
    try:
        from hansbench.registry import clusterer_inputs
    except ImportError:
        return {"activations", "pixels"}, {"pixels"}
    names = set(clusterer_inputs.names())
    raw = {n for n in names if not getattr(clusterer_inputs.get(n), "uses_model", True)}
    return names, raw


def headline(d: pd.DataFrame, p: Presentation) -> pd.DataFrame:
    """The rows of the presentation's headline values (all rows when it names none)."""
    return d[d.metric.isin(p.headline)] if p.headline else d


def column_name(r: pd.Series, relative: str = "", with_stage: bool = True) -> str:
    """A table column's name: the value, minus the reference when relative, its split, stage and detail."""
    name = r["metric"] + (f"{MINUS}{relative}" if relative else "")
    parts = [name] + [x for x in (r["split"], r["stage"] if with_stage else "", r["coldetail"]) if x]
    return " / ".join(parts)


def columns_of(g: pd.DataFrame, names: list[str]) -> tuple[Column, ...]:
    """The value columns ``names`` of ``g`` (rows with a ``column``): each column's first row says what it holds."""
    first = g.groupby("column", sort=False).first()
    return tuple(Column(c, str(r["metric"]), str(r["unit"]), bool(r["higher_is_better"]), bool(r["directed"]),
                        str(r["split"]), str(r["stage"]), str(r["coldetail"]), str(r.get("relative_to", "")),
                        str(r["family"]), bool(r.get("ranked", False)))
                 for c, r in ((c, first.loc[c]) for c in names))
