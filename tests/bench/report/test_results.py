"""Verdicts are data computed once (hansbench.bench.report.results) and the tables only render them: the typed
results a table carries are exactly what its cells and its tidy CSV show, and a changed result changes the table."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from hansbench.bench.engine.store import ROW_COLUMNS
from hansbench.bench.report import cells, ranking_tables, run_facts
from hansbench.bench.report.leaderboard import build_sections
from hansbench.bench.report.results import Cell, Comparison, Grid, correct
from hansbench.bench.report.stats import format_interval

COLUMN = "ordering-auc-class − random / clean_test"


def rows(records):
    base = dict(scenario="CH-50", seed=0, model="classifier", explainer="", clusterer="", rule="", split="clean_test",
                stage="", detail="", unit="", family="relevance-ordering", metric="ordering-auc-class",
                higher_is_better=True)
    return pd.DataFrame([{**base, **r} for r in records])[ROW_COLUMNS]


def explainer_table(records):
    return next(t for t in build_sections(rows(records))[0].tables if t.title.startswith("Explainers: classifier"))


RECORDS = [dict(explainer=e, value=v + 0.01 * s + (0.3 * (s % 2) if e == "lrp" else 0.0), seed=s)
           for s in range(8) for e, v in (("prp", 9.0), ("lrp", 5.2), ("random", 5.0))]


def test_a_tables_cells_and_tidy_records_are_its_typed_results():
    t = explainer_table(RECORDS)
    grid = t.result
    assert isinstance(grid, Grid) and all(isinstance(c, Comparison) for c in grid.comparisons)
    tidy = t.tidy.set_index("explainer")
    shown = t.frame.set_index("explainer")
    for e in ("prp", "lrp"):
        x = grid.cells[(e, COLUMN)]
        assert isinstance(x, Cell) and x.n == 8 and x.seeds == tuple(range(8))
        assert x.mean == pytest.approx(sum(x.values) / len(x.values), abs=1e-12)
        assert (tidy.loc[e, "mean"], tidy.loc[e, "ci_low"], tidy.loc[e, "ci_high"], tidy.loc[e, "n"],
                tidy.loc[e, "interval"]) == (x.mean, x.low, x.high, x.n, x.method)
        vs = grid.comparison((e,), COLUMN, cells.SIG_MARK)
        assert (tidy.loc[e, "p_vs_reference"], tidy.loc[e, "p_holm_vs_reference"]) == (vs.p, vs.p_holm)
        text = shown.loc[e, f"{COLUMN} ↑"]
        assert text.startswith(format_interval(x)) and (cells.SIG_MARK in text) == vs.significant
    assert grid.comparison(("prp",), COLUMN, cells.SIG_MARK).significant  # 9 vs 5 on all 8 seeds: p = 2 / 2^8, x 3 tests
    ranks = grid.ranks
    assert ranks.complete == (COLUMN,) and ranks.mean["prp"] == 1 and math.isnan(ranks.mean["random"])
    assert shown["mean rank ↓"].tolist()[:2] == ["1", "2"] and grid.rows[:2] == (("prp",), ("lrp",))


def test_holm_is_applied_once_over_the_tables_comparisons():
    grid = explainer_table(RECORDS).result
    again = correct([dataclasses.replace(c, p_holm=math.nan) for c in grid.comparisons])
    assert [c.p_holm for c in again] == [c.p_holm for c in grid.comparisons]
    assert all(c.p_holm >= c.p for c in grid.comparisons) and len(grid.comparisons) == 3  # 2 vs random, best vs 2nd


def test_rendering_reads_the_results_and_computes_nothing(monkeypatch):
    """Change the computed results before they are rendered: the table shows the changed numbers and marks."""
    made = ranking_tables.explainer_grid

    def doctored(*args, **kwargs):
        grid = made(*args, **kwargs)
        fake = dataclasses.replace(grid.cells[("lrp", COLUMN)], mean=42.0, low=41.0, high=43.0)
        comps = tuple(dataclasses.replace(c, p_holm=0.001, diff=1.0) if c.who == ("lrp",) else c
                      for c in grid.comparisons)
        return dataclasses.replace(grid, cells={**grid.cells, ("lrp", COLUMN): fake}, comparisons=comps)

    monkeypatch.setattr(ranking_tables, "explainer_grid", doctored)
    t = explainer_table(RECORDS)
    text = t.frame.set_index("explainer").loc["lrp", f"{COLUMN} ↑"]
    assert text.startswith("42.0 ± 1.0") and cells.SIG_MARK in text  # not lrp's real 5.4, not its real p
    tidy = t.tidy.set_index("explainer")
    assert (tidy.loc["lrp", "mean"], tidy.loc["lrp", "p_holm_vs_reference"]) == (42.0, 0.001)
    assert t.sort.set_index("explainer").loc["lrp", f"{COLUMN} ↑"] == 42.0


def test_run_facts_read_the_run_configuration():
    cfg = {"suite": {"seeds": [0, 1, 2], "dev_seeds": [7, "8"]},
           "scenarios": [dict(name="CH-50", poisoning="CH", fraction=0.5)]}
    assert run_facts.dev_seeds(cfg) == [7, 8] and run_facts.dev_seeds(None) == [] and run_facts.dev_seeds({}) == []
    assert run_facts.scenario_settings(None) == {}
    assert run_facts.scenario_controls(None, ["CH-50"]) == {}
    assert run_facts.sweep_axes_of(cfg) == []
    note = cells.interval_note([3], [0, 1, 2], run_facts.dev_seeds(cfg))
    assert "evaluation seeds 0-2 (settings tuned on 7, 8)" in note
    assert "n = 20 evaluation seeds 3-22 (settings tuned on 0-2)" in cells.interval_note([20], range(3, 23), [0, 1, 2])
    assert cells.interval_note([3], [0, 1, 2], cfg["suite"]) == note  # the [suite] table, as sweep_report passes it


def test_run_facts_read_a_stored_record_as_they_read_the_suite_tables():
    """The resolved record stored with a run gives the same facts as the suite's TOML tables it was made from."""
    from hansbench.bench.suite.config import validate
    from hansbench.bench.suite.record import to_record

    cfg = {"suite": {"seeds": [0, 1, 2], "dev_seeds": [7]}, "models": {"classifier": {}},
           "scenarios": [dict(name="BD-30", poisoning="BD", fraction=0.3, target_class="speed limit"),
                         dict(name="LF-30", poisoning="LF", fraction=0.3, target_class="speed limit"),
                         dict(name="clean", poisoning="none", fraction=0.0)]}
    record = to_record(validate(cfg))
    names = ["BD-30", "LF-30", "clean"]
    assert run_facts.dev_seeds(record) == run_facts.dev_seeds(cfg) == [7]
    assert run_facts.scenario_controls(record, names) == run_facts.scenario_controls(cfg, names)
    assert run_facts.scenario_controls(record, names)["BD-30"]["clean"] == "clean"
    assert run_facts.sweep_axes_of(record) == run_facts.sweep_axes_of(cfg) == []
