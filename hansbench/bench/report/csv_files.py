"""The tidy CSV files beside the page, ASCII column names and floats at six significant digits:

- ``results.csv`` (:data:`RESULTS_CSV`): every table's numbers in one schema, :data:`SCHEMA` first -- ``scenario,
  model, detector, rule, metric, mean, ci_low, ci_high, n, k, unit, higher_is_better`` -- then ``table`` (the
  table id), ``condition`` (what else tells two numbers of one metric apart: ``split=clean_test; stage=trained``)
  and ``per_seed`` (the seeds' values, ``;``-separated). ``detector`` is the explainer x clusterer pair of a
  detection table (``gradcam × spray``; an input that is no explanation, e.g. ``activations × ac``, in the
  explainer's place), the explainer (or cleaning/pruning method) alone in an explainer or stage table, and empty
  in a model table (accuracy, reliance). ``rule`` is the row's rule id ("" where the row has none). ``k``: how
  many seeds reach the level, in a bimodal (hit-or-miss) cell; its interval is then empty.
- ``verdicts.csv`` (:data:`VERDICTS_CSV`): every paired comparison of every table: the difference, its interval
  (a t-interval over the paired seeds; empty below three), the test, p, the Holm-adjusted p within its table and
  the verdict word (:func:`verdict_word`).
- ``<scenario>.<table>.csv``: one table's numbers with every column it has (the file each table links to).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hansbench.bench.report.escape import slug
from hansbench.bench.report.results import Cell, Comparison, Grid, seed_cell
from hansbench.bench.report.stats import ALPHA, smallest_p

CSV_FLOAT = "%.6g"  # six significant digits: no float noise (76.99999809265137 -> 77)
LEAD = ("scenario", "table", "model", "method", "explainer", "clusterer", "split", "stage", "metric", "relative_to",
        "column_detail")
RESULTS_CSV, VERDICTS_CSV = "results.csv", "verdicts.csv"
SCHEMA = ("scenario", "model", "detector", "rule", "metric", "mean", "ci_low", "ci_high", "n", "k", "unit",
          "higher_is_better")
CONDITION = ("split", "stage", "relative_to", "column_detail", "group", "scenario_of_value")
VERDICT_COLUMNS = ("scenario", "model", "table", "detector", "column", "against", "diff", "diff_low", "diff_high",
                   "n", "test", "p", "p_holm", "verdict")


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


def detector_of(row) -> str:
    """The row's detector: ``explainer × clusterer``, the explainer (or method) alone, or "" (a model table)."""
    who = [str(row.get(c, "") or "") for c in ("explainer", "clusterer")]
    who = [w for w in who if w and w != "nan"]
    return " × ".join(who) or str(row.get("method", "") or "").replace("nan", "")


def _condition(row) -> str:
    return "; ".join(f"{c}={row[c]}" for c in CONDITION if c in row and str(row[c]) not in ("", "nan", "None"))


def results_frame(sections: list) -> pd.DataFrame:
    """Every table's numbers in the one schema (:data:`SCHEMA`, then ``table``, ``condition``, ``per_seed``)."""
    out = []
    for sec in sections:
        for t in sec.tables:
            if not has_tidy(t):
                continue
            for row in t.tidy.to_dict("records"):
                out.append({"scenario": sec.scenario, "model": row.get("model", t.model) or t.model,
                            "detector": detector_of(row), "rule": row.get("rule", "") or "",
                            **{c: row.get(c) for c in SCHEMA[4:]}, "table": t.id, "condition": _condition(row),
                            "per_seed": row.get("per_seed", "")})
    return pd.DataFrame(out, columns=[*SCHEMA, "table", "condition", "per_seed"])


def verdict_word(c: Comparison, m: int) -> str:
    """What the test says, in a word: "no verdict" where ``n`` pairs with Holm over ``m`` tests cannot reach alpha,
    "better"/"worse" where the Holm-adjusted p is below alpha, else "not told apart" (which is not "equal")."""
    if c.n < 1 or smallest_p(c.n, m) >= ALPHA:
        return "no verdict"
    if not (c.p_holm < ALPHA):
        return "not told apart"
    return "better" if (c.diff > 0) == c.higher else "worse"


def _difference(g: Grid, c: Comparison) -> Cell | None:
    """The paired difference ``who - against`` on the column as a cell (its interval over the paired seeds): from
    the against row with the same clusterer where the table has one, else the who cell itself where the column
    is already relative to the reference; None where neither is there."""
    col = next((x for x in g.columns if x.name == c.column), None)
    mine = g.cells.get((*c.who, c.column))
    if mine is None:
        return None
    theirs = next((g.cells.get((*k, c.column)) for k in g.rows if k[0] == c.against and k[1:] == c.who[1:]), None)
    if theirs is not None:
        a, b = mine.by_seed(), theirs.by_seed()
        idx = a.index.intersection(b.index)
        return seed_cell(a.loc[idx] - b.loc[idx])
    return mine if col is not None and col.relative_to else None


def verdicts_frame(sections: list) -> pd.DataFrame:
    """Every paired comparison of every table (:data:`VERDICT_COLUMNS`)."""
    out = []
    for sec in sections:
        for t in sec.tables:
            g = t.result
            comps = getattr(g, "comparisons", ()) if isinstance(g, Grid) else ()
            for c in comps:
                d = _difference(g, c)
                out.append({"scenario": sec.scenario, "model": t.model, "table": t.id, "detector": " × ".join(w for w in c.who if w),
                            "column": c.column, "against": c.against, "diff": c.diff,
                            "diff_low": d.low if d is not None else None, "diff_high": d.high if d is not None else None,
                            "n": c.n, "test": c.test, "p": c.p, "p_holm": c.p_holm,
                            "verdict": verdict_word(c, len(comps))})
    return pd.DataFrame(out, columns=list(VERDICT_COLUMNS))


def write_schema_csvs(sections: list, out: Path) -> dict[str, Path]:
    """``results.csv`` and ``verdicts.csv`` (see the module's docstring); paths by file name."""
    paths = {RESULTS_CSV: Path(out) / RESULTS_CSV, VERDICTS_CSV: Path(out) / VERDICTS_CSV}
    tidy_csv(results_frame(sections), paths[RESULTS_CSV])
    tidy_csv(verdicts_frame(sections), paths[VERDICTS_CSV])
    return paths
