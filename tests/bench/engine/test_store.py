"""The results store's typed API: runs as records, not-applicable jobs with a reason of their own (schema v3,
migrated from v2 keeping every row), read-only access, and the runner opening the store under the lock."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from hansbench.bench.engine.store import SCHEMA_VERSION, ResultsStore, StoreVersionError, read_latest_run

# a v2 store as hansbench wrote it before v3: the planner's reason for a not-applicable job in jobs.error
_V2_SCHEMA = """
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, suite TEXT, config TEXT, git_commit TEXT, versions TEXT,
    device TEXT, started REAL, finished REAL, status TEXT);
CREATE TABLE jobs (key TEXT PRIMARY KEY, run_id INTEGER, node_type TEXT, scenario TEXT, seed INTEGER, model TEXT,
    explainer TEXT, clusterer TEXT, family TEXT, status TEXT, error TEXT, seconds REAL, finished REAL);
CREATE TABLE rows (id INTEGER PRIMARY KEY AUTOINCREMENT, job_key TEXT REFERENCES jobs(key), scenario TEXT,
    seed INTEGER, model TEXT, explainer TEXT, clusterer TEXT, family TEXT, metric TEXT, split TEXT, stage TEXT,
    detail TEXT, value REAL, unit TEXT, higher_is_better INTEGER);
CREATE INDEX rows_job ON rows(job_key);
INSERT INTO runs (suite, config, git_commit, versions, device, started, finished, status)
    VALUES ('quick', '{"suite": {"name": "quick", "seeds": [3, 4]}}', 'abc', '{"python": "3.11"}', 'cpu', 1, 2, 'done');
INSERT INTO jobs VALUES ('k1', 1, 'metric', 'CH-50', 0, 'classifier', 'lrp', '', 'reliance', 'done', NULL, 2.5, 0);
INSERT INTO jobs VALUES ('k2', 1, 'metric', 'CH-50', 0, 'classifier', 'lrp', '', 'roar', 'not-applicable',
    'needs a retrainable model', 0, 0);
INSERT INTO jobs VALUES ('k3', 1, 'metric', 'CH-50', 0, 'classifier', 'gradcam', '', 'roar', 'failed',
    'Traceback: boom', 1.0, 0);
INSERT INTO rows (job_key, scenario, seed, model, explainer, clusterer, family, metric, split, stage, detail, value,
    unit, higher_is_better) VALUES ('k1', 'CH-50', 0, 'classifier', 'lrp', '', 'reliance', 'flip-rate', 'clean_test',
    '', '', 19.5, '%', 1);
INSERT INTO rows (job_key, scenario, seed, model, explainer, clusterer, family, metric, split, stage, detail, value,
    unit, higher_is_better) VALUES ('k1', 'CH-50', 0, 'classifier', 'lrp', '', 'reliance', 'asr', 'artifact_test',
    '', '', 80.0, '%', 1);
PRAGMA user_version = 2;
"""


def _v2(path):
    with sqlite3.connect(path) as conn:
        conn.executescript(_V2_SCHEMA)


def test_v2_store_is_migrated_to_v3_keeping_every_row_and_moving_reasons(tmp_path):
    from hansbench.bench.report.leaderboard import omitted_from_jobs

    path = tmp_path / "results.sqlite"
    _v2(path)
    with sqlite3.connect(path) as conn:
        before_rows = pd.read_sql_query("SELECT * FROM rows ORDER BY id", conn)
        before_jobs = pd.read_sql_query("SELECT * FROM jobs ORDER BY key", conn)
    store = ResultsStore(path)
    assert store.migrated_from == 2
    jobs = store.jobs().set_index("key")
    assert list(jobs.index.sort_values()) == before_jobs.key.tolist()  # every job kept
    assert jobs.loc["k2", "reason"] == "needs a retrainable model" and pd.isna(jobs.loc["k2", "error"])
    assert jobs.loc["k3", "error"] == "Traceback: boom" and pd.isna(jobs.loc["k3", "reason"])  # failures keep theirs
    om = omitted_from_jobs(store.jobs())
    assert om.reason.tolist() == ["needs a retrainable model"] and om.family.tolist() == ["roar"]
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        after_rows = pd.read_sql_query("SELECT * FROM rows ORDER BY id", conn)
    pd.testing.assert_frame_equal(before_rows, after_rows[before_rows.columns])  # every row, unchanged


def test_latest_run_is_a_typed_record_and_reading_it_never_writes(tmp_path):
    path = tmp_path / "results.sqlite"
    _v2(path)
    mtime = path.stat().st_mtime_ns
    run = read_latest_run(path)  # a v2 store, read without migrating it
    assert (run.id, run.suite, run.device, run.status, run.seeds) == (1, "quick", "cpu", "done", [3, 4])
    assert run.config["suite"]["name"] == "quick" and run.versions == {"python": "3.11"}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert path.stat().st_mtime_ns == mtime
    assert read_latest_run(tmp_path / "missing.sqlite") is None and not (tmp_path / "missing.sqlite").exists()
    store = ResultsStore(path)
    second = store.start_run("paper", {"suite": {"seeds": [7]}}, "cuda")
    assert store.latest_run().id == second and store.latest_run().seeds == [7]
    assert [r.suite for r in store.runs()] == ["quick", "paper"]
    store.close()
    assert read_latest_run(path).suite == "paper"  # the latest, not the first
    assert ResultsStore(tmp_path / "new.sqlite").latest_run() is None
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreVersionError, match="upgrade hansbench"):
        read_latest_run(newer)


def test_not_applicable_jobs_carry_a_reason_not_an_error(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    run = store.start_run("x", {}, "cpu")
    ids = {"node_type": "metric", "scenario": "CH-50", "model": "classifier", "family": "roar"}
    store.record_not_applicable("n/a-1", run, ids, "roar needs a retrainable model")
    with pytest.raises(ValueError, match="record_not_applicable"):
        store.record_job("n/a-2", run, ids, [], seconds=0.0, error="why", status="not-applicable")
    store.record_job("k", run, {**ids, "family": "reliance"}, [{"metric": "asr", "value": 1.0}], seconds=0.1)
    jobs = store.jobs().set_index("key")
    assert (jobs.loc["n/a-1", "status"], jobs.loc["n/a-1", "reason"]) == ("not-applicable",
                                                                          "roar needs a retrainable model")
    assert pd.isna(jobs.loc["n/a-1", "error"]) and jobs.loc["k", "family"] == "reliance"
    assert store.rows().family.tolist() == ["reliance"]  # ids["family"] names the row's family
    store.record_job("k0", run, {"node_type": "metric", "metric": "roar"}, [{"metric": "x", "value": 2.0}],
                     seconds=0.1)  # the planner's older key still works
    assert store.rows().family.tolist() == ["reliance", "roar"]


def test_a_locked_directory_stops_a_second_runner_before_it_opens_the_store(tmp_path):
    from hansbench.bench.engine.runner import DirectoryLock, ResultsLocked, Runner
    from hansbench.bench.suite.config import load_suite

    out = tmp_path / "o"
    out.mkdir()
    path = out / "results.sqlite"
    _v2(path)  # an old store another run is using: it must not be migrated under that run
    mtime = path.stat().st_mtime_ns
    with DirectoryLock(out):
        with pytest.raises(ResultsLocked, match="another hansbench run"):
            Runner(load_suite("smoke"), out, progress=False)
    assert path.stat().st_mtime_ns == mtime
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    runner = Runner(load_suite("smoke"), out, progress=False)  # released: it opens and migrates
    assert runner.store.migrated_from == 2
    runner.store.close()
