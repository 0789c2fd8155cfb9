"""The tidy CSV files beside the page: one per scenario and table id, ``<scenario>.<table>.csv`` (named by content,
stable when other tables come or go), ASCII column names and floats at six significant digits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hansbench.bench.report.escape import slug

CSV_FLOAT = "%.6g"  # six significant digits: no float noise (76.99999809265137 -> 77)
LEAD = ("scenario", "table", "model", "method", "explainer", "clusterer", "split", "stage", "metric", "relative_to",
        "column_detail")


def csv_name(scenario: str, table_id: str) -> str:
    """``<scenario>.<table>.csv``: named by content, stable when other tables come or go."""
    return f"{slug(scenario)}.{slug(table_id)}.csv"


def tidy_csv(frame: pd.DataFrame, path: Path) -> None:
    """The tidy CSV: ASCII column names (checked), floats at six significant digits."""
    bad = [c for c in frame.columns if not str(c).isascii()]
    if bad:
        raise ValueError(f"tidy CSV {path.name}: non-ASCII column names {bad}; name columns in ASCII")
    frame.to_csv(path, index=False, float_format=CSV_FLOAT)


def has_tidy(table) -> bool:
    """Whether a table has numbers for a CSV."""
    return table.tidy is not None and not table.tidy.empty


def write_tidy(sections: list, out: Path) -> dict[str, Path]:
    """Per scenario section (:func:`hansbench.bench.report.leaderboard.build_sections`) and table id: the tables'
    tidy numbers (every model's) in one CSV, the key columns first; paths by file name."""
    paths = {}
    for sec in sections:
        written: dict[str, list[pd.DataFrame]] = {}
        for t in sec.tables:
            if has_tidy(t):
                written.setdefault(t.id, []).append(t.tidy.assign(scenario=sec.scenario, table=t.id))
        for table_id, frames in written.items():
            p = Path(out) / csv_name(sec.scenario, table_id)
            frame = pd.concat(frames, ignore_index=True)
            lead = [c for c in LEAD if c in frame]
            tidy_csv(frame[lead + [c for c in frame.columns if c not in lead]], p)
            paths[p.name] = p
    return paths
