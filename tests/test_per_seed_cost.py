"""benchmarks/per_seed_cost.py: the rows-equal check behind PERFORMANCE.md's "same rows" claims, and its table."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import pandas as pd

SPEC = importlib.util.spec_from_file_location("per_seed_cost",
                                              Path(__file__).resolve().parents[1] / "benchmarks" / "per_seed_cost.py")
psc = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(psc)


def store(path: Path, rows: list[dict]) -> Path:
    base = {k: "" for k in psc.KEY} | {"seed": 3}
    with sqlite3.connect(path) as conn:
        pd.DataFrame([base | r for r in rows]).to_sql("rows", conn, index=False)
    return path


ROWS = [{"family": "reliance", "metric": "acc-gap", "value": 40.0},
        {"family": "cluster-detection", "metric": "cluster-f1-unsup", "explainer": "lrp", "clusterer": "spray",
         "value": 0.9},
        {"family": "cluster-detection", "metric": "auroc", "explainer": "lrp", "clusterer": "spray", "value": None},
        {"family": "timing", "metric": "ms-per-image", "explainer": "lrp", "value": 3.0}]


def test_identical_stores_are_equal_and_timing_rows_do_not_count(tmp_path):
    a = store(tmp_path / "a.sqlite", ROWS)
    b = store(tmp_path / "b.sqlite", ROWS[:3] + [{**ROWS[3], "value": 99.0}])  # another machine's timing
    res = psc.rows_equal(a, b, 1e-9)
    assert res["shared"] == 3 and res["n_differ"] == res["only_old"] == res["only_new"] == 0


def test_a_changed_value_and_a_missing_row_are_found(tmp_path):
    a = store(tmp_path / "a.sqlite", ROWS)
    b = store(tmp_path / "b.sqlite", [{**ROWS[0], "value": 40.5}, ROWS[2]])
    res = psc.rows_equal(a, b, 1e-9)
    assert res["n_differ"] == 1 and res["max_abs_diff"] == 0.5 and res["only_old"] == 1
    assert res["worst"][0]["key"]["metric"] == "acc-gap" and res["only_old_keys"][0]["metric"] == "cluster-f1-unsup"
    c = store(tmp_path / "c.sqlite", [ROWS[0], ROWS[1], {**ROWS[2], "value": 0.5}])  # NaN against a number differs
    assert psc.rows_equal(a, c, 1e-9)["n_differ"] == 1


def test_table_shows_the_marked_measurements_with_their_breakdown():
    def entry(wall: float, shown: bool) -> dict:
        return {"cold": {"wall_s": wall, "peak_rss_gib": 2.0}, "warm": {"wall_s": 6.0}, "per_seed_s": wall / 2,
                "node_seconds": {"model": {"seconds": wall / 2, "nodes": 24}}, "total_node_s": wall - 50,
                "shown": shown}

    text = psc.table({"yesterday": entry(600.0, False), "before": entry(470.0, True), "after": entry(440.0, True)})
    assert "| before | after |" in text and "yesterday" not in text and "600" not in text
    assert "**235.0 s**" in text and "| node work: model | 235.0 s (24) | 220.0 s (24) |" in text
    assert "| outside nodes (imports, planning, store, publishing) | 50.0 s | 50.0 s |" in text
