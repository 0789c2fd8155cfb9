"""Leaderboard ranking follows each metric's direction; writers escape; the store is atomic per job."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
import torch

from hansbench.bench.engine.keys import hash_key
from hansbench.bench.engine.store import ROW_COLUMNS, ResultsStore
from hansbench.bench.engine.workspace import Workspace
from hansbench.bench.report.leaderboard import build_tables
from hansbench.bench.report.writers import to_latex, write_leaderboard


def rows(records):
    base = dict(scenario="CH-50", seed=0, model="classifier", clusterer="", rule="", split="", stage="", detail="", unit="",
                family="fam")
    return pd.DataFrame([{**base, **r} for r in records])[ROW_COLUMNS]


def test_mean_rank_uses_metric_direction():
    """A family nobody registered: one table, ranked per column by the rows' own direction."""
    df = rows([
        dict(explainer="a", metric="good-up", value=0.9, higher_is_better=True),
        dict(explainer="b", metric="good-up", value=0.1, higher_is_better=True),
        dict(explainer="a", metric="good-down", value=5.0, higher_is_better=False),
        dict(explainer="b", metric="good-down", value=1.0, higher_is_better=False),
        dict(explainer="c", metric="good-up", value=0.5, higher_is_better=True),
        dict(explainer="c", metric="good-down", value=0.5, higher_is_better=False),
    ])
    t = build_tables(df)["CH-50"][0].frame.set_index("explainer")
    assert t.loc["a", "good-up ↑"] == "0.900"
    # c: rank 2 on good-up, rank 1 on good-down -> best mean rank
    assert t.index[0] == "c" and t.loc["a", "mean rank ↓"] == "2"


def test_ranks_are_within_a_model():
    """Raw scores of different models are not compared: each model's table ranks its explainers from 1."""
    df = rows([
        dict(model="classifier", explainer="a", metric="auc", value=5.0, higher_is_better=True),
        dict(model="classifier", explainer="b", metric="auc", value=4.0, higher_is_better=True),
        dict(model="protopnet", explainer="c", metric="auc", value=-10.0, higher_is_better=True),
        dict(model="protopnet", explainer="d", metric="auc", value=-12.0, higher_is_better=True),
    ])
    tables = build_tables(df)["CH-50"]
    ranks = {t.model: t.frame.set_index("explainer")["mean rank ↓"].to_dict() for t in tables}
    assert ranks == {"classifier": {"a": "1", "b": "2"}, "protopnet": {"c": "1", "d": "2"}}


def test_detection_table_has_table_ii_shape():
    df = rows([
        dict(explainer="prp", clusterer="spray", metric="cluster-acc", value=64.5, higher_is_better=True),
        dict(explainer="prp", clusterer="spray", metric="cluster-f1", value=0.45, higher_is_better=True),
        dict(explainer="prp", clusterer="coreg", metric="cluster-acc", value=99.0, higher_is_better=True),
        dict(explainer="prp", clusterer="coreg", metric="cluster-f1", value=0.99, higher_is_better=True),
        dict(explainer="prp", clusterer="coreg", metric="cluster-ari", value=0.9, higher_is_better=True),
    ]).assign(family="cluster-detection")
    t = [t for t in build_tables(df)["CH-50"] if t.title.startswith("Detection matrix")][0].frame
    f = t.set_index(["explainer", "clusterer"])  # rows: detectors; a header per value, not "ACC / F1" in one cell
    assert list(f.index) == [("prp", "spray"), ("prp", "coreg")]
    assert f.loc[("prp", "spray"), "cluster-acc ↑ (label-matched: analyst picks the right cluster)"] == "64.5"
    assert f.loc[("prp", "spray"), "cluster-f1 ↑ (label-matched: analyst picks the right cluster)"] == "0.450"


def test_writers_escape_html_and_latex(tmp_path):
    evil = "<script>alert(1)</script>"
    df = rows([dict(explainer=evil, metric="m_1%", value=1.0, higher_is_better=True),
               dict(explainer="x", metric="m_1%", value=2.0, higher_is_better=True)])
    paths = write_leaderboard(df, tmp_path, suite="<b>s</b>")
    page = paths["leaderboard.html"].read_text()
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "<b>s</b>" not in page
    tex = to_latex(build_tables(df)["CH-50"][0].frame, "cap_%")
    assert r"m\_1\%" in tex and r"\toprule" in tex and r"cap\_\%" in tex


def test_store_job_is_atomic_and_replaces_failed_attempt(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    run = store.start_run("s", {}, "cpu")
    ids = dict(scenario="CH", seed=0, model="classifier", explainer="e", clusterer="", metric="m")
    store.record_job("k1", run, ids, [], seconds=0.1, error="Traceback: boom")
    assert "k1" not in store.done_keys()
    row = dict(metric="m", value=1.5, unit="", higher_is_better=True, split="", stage="", detail="")
    store.record_job("k1", run, ids, [row, row], seconds=0.1)
    assert "k1" in store.done_keys() and len(store.rows(["k1"])) == 2
    with pytest.raises(sqlite3.ProgrammingError):
        store.record_job("k2", run, ids, [row, {"metric": object()}], seconds=0.1)  # unbindable value
    assert "k2" not in store.done_keys() and len(store.rows(["k2"])) == 0


def test_cache_keys_depend_on_content(tmp_path):
    a, b = torch.zeros(3), torch.zeros(3)
    assert hash_key({"x": a}) == hash_key({"x": b})
    b[1] = 1
    assert hash_key({"x": a}) != hash_key({"x": b})
    assert hash_key({"a": 1, "b": 2}) == hash_key({"b": 2, "a": 1})
    ws = Workspace(tmp_path)
    calls = []
    out1 = ws.cached_tensors({"k": 1}, lambda: calls.append(1) or {"t": torch.arange(3)})
    out2 = ws.cached_tensors({"k": 1}, lambda: calls.append(1) or {"t": torch.arange(5)})
    assert calls == [1] and torch.equal(out1["t"], out2["t"])
    m1 = ws.cached_module({"m": 1}, lambda: torch.nn.Linear(2, 2), init=lambda: torch.nn.Linear(2, 2))
    m2 = ws.cached_module({"m": 1}, lambda: pytest.fail("retrained"), init=lambda: torch.nn.Linear(2, 2))
    assert torch.equal(m1.weight, m2.weight)


_V1_SCHEMA = """
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, suite TEXT, config TEXT, git_commit TEXT, versions TEXT,
    device TEXT, started REAL, finished REAL, status TEXT);
CREATE TABLE jobs (key TEXT PRIMARY KEY, run_id INTEGER, kind TEXT, scenario TEXT, seed INTEGER, model TEXT,
    explainer TEXT, clusterer TEXT, metric TEXT, status TEXT, error TEXT, seconds REAL, finished REAL);
CREATE TABLE rows (id INTEGER PRIMARY KEY AUTOINCREMENT, job_key TEXT REFERENCES jobs(key), scenario TEXT,
    seed INTEGER, model TEXT, explainer TEXT, clusterer TEXT, family TEXT, metric TEXT, split TEXT, stage TEXT,
    detail TEXT, value REAL, unit TEXT, higher_is_better INTEGER);
INSERT INTO jobs VALUES ('k1', 1, 'metric', 'CH-50', 0, 'classifier', 'lrp', '', 'reliance', 'done', NULL, 2.5, 0);
INSERT INTO jobs VALUES ('k2', 1, 'metric', 'CH-50', 0, 'classifier', 'lrp', '', 'roar', 'not-applicable',
    'needs a retrainable model', 0, 0);
INSERT INTO rows (job_key, scenario, seed, model, explainer, clusterer, family, metric, split, stage, detail, value,
    unit, higher_is_better) VALUES ('k1', 'CH-50', 0, 'classifier', 'lrp', '', 'reliance', 'flip-rate', 'clean_test',
    '', '', 19.5, '%', 1);
"""


def test_store_v1_is_migrated_in_place_keeping_every_row(tmp_path):
    """A v1 store (jobs.kind / jobs.metric) opens as today's (node_type / family, a not-applicable job's reason in
    jobs.reason) with its jobs and rows intact."""
    from hansbench.bench.engine.store import SCHEMA_VERSION
    from hansbench.bench.report.leaderboard import omitted_from_jobs

    path = tmp_path / "results.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(_V1_SCHEMA)
    store = ResultsStore(path)
    assert store.migrated_from == 1
    jobs = store.jobs().set_index("key")
    assert jobs.loc["k1", "node_type"] == "metric" and jobs.loc["k1", "family"] == "reliance"
    assert store.done_keys() == {"k1"}
    r = store.rows()
    assert (r.family.tolist(), r.metric.tolist(), r.value.tolist()) == (["reliance"], ["flip-rate"], [19.5])
    om = omitted_from_jobs(store.jobs())
    assert om.family.tolist() == ["roar"] and om.reason.tolist() == ["needs a retrainable model"]
    assert "metric" in store.time_report()  # the report groups by node_type
    store.record_job("k3", 1, {"node_type": "metric", "scenario": "CH-50", "metric": "reliance"},
                     [{"metric": "asr", "value": 1.0}], seconds=0.1)
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT node_type, family FROM jobs WHERE key='k3'").fetchone() == ("metric", "reliance")
    assert ResultsStore(path).migrated_from == SCHEMA_VERSION  # opening again changes nothing


def test_store_from_a_newer_hansbench_or_not_a_store_is_refused_clearly(tmp_path):
    from hansbench.bench.engine.store import SCHEMA_VERSION, StoreVersionError

    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreVersionError, match="upgrade hansbench"):
        ResultsStore(newer)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreVersionError, match="not a readable results store"):
        ResultsStore(junk)
