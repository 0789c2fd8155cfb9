"""The same rows on any number of cores (issue 29): every node computes with the suite's fixed thread count,
the cores are used by running nodes side by side, a run records where and how it ran, and a store refuses rows
of another device or thread count unless told."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
import torch

from hansbench.bench.cli import main
from hansbench.bench.engine.execute import EnvSpec, NodeEnv
from hansbench.bench.engine.executors import pool
from hansbench.bench.engine.runner import default_jobs
from hansbench.bench.engine.store import SCHEMA_VERSION, ResultsStore, read_latest_run
from hansbench.bench.suite.config import load_suite

from .test_graph import TINY

KEY = ["scenario", "seed", "model", "explainer", "clusterer", "family", "metric", "split", "stage"]


def _rows(out) -> pd.DataFrame:
    df = pd.read_csv(out / "metrics.csv", keep_default_na=False)
    return df[df.family != "timing"].sort_values(KEY).reset_index(drop=True)


def test_one_job_and_two_jobs_give_identical_rows_and_a_store_refuses_another_thread_count(tmp_path, capsys):
    suite = tmp_path / "t.toml"
    suite.write_text(TINY)
    outs = {}
    for jobs in (1, 2):
        out = outs[jobs] = tmp_path / f"jobs{jobs}"
        assert main(["run", "--suite", str(suite), "--out", str(out), "--no-progress", "--no-figures",
                     "--threads", "1", "--jobs", str(jobs)]) == 0
    one, two = _rows(outs[1]), _rows(outs[2])
    assert len(one) > 20 and one.family.nunique() >= 3
    pd.testing.assert_frame_equal(one, two, check_exact=True)  # every value bit for bit

    run = ResultsStore(outs[2] / "results.sqlite").latest_run()
    assert (run.threads, run.jobs, run.executor, run.status) == (1, 2, "local", "done")
    assert run.cpu and run.git_commit is not None and "torch" in run.versions and run.wall_s > 0
    assert run.setting == f"cpu ({run.cpu}), 1 thread"

    capsys.readouterr()
    args = ["run", "--suite", str(suite), "--out", str(outs[1]), "--no-progress", "--no-figures", "--threads", "2"]
    assert main(args) == 2  # refused before any work: nothing is recorded
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "), 1 thread" in err and "), 2 threads" in err and "--out" in err and "--allow-mixed" in err
    assert len(ResultsStore(outs[1] / "results.sqlite").runs()) == 1
    assert main([*args, "--allow-mixed"]) == 0  # told: it goes on (everything is done: nothing recomputed)
    assert ResultsStore(outs[1] / "results.sqlite").latest_run().threads == 2


def test_pool_workers_compute_with_the_runs_thread_count(tmp_path):
    """Each worker applies the run's threads before any node, whichever way it was started: forked (1 thread,
    from a driver at 2, so inheriting is not enough) or from the fork server (3, not a fresh torch's default
    on this 2-core machine)."""
    before = torch.get_num_threads()
    try:
        for threads in (1, 3):
            torch.set_num_threads(2)
            spec = EnvSpec(out=str(tmp_path), threads=threads)
            with ProcessPoolExecutor(1, mp_context=pool._context(threads), initializer=pool._init_worker,
                                     initargs=(spec,)) as workers:
                assert workers.submit(torch.get_num_threads).result() == threads
    finally:
        torch.set_num_threads(before)


def test_a_node_runs_with_the_envs_threads_even_after_another_env_changed_them(tmp_path):
    """One process, two environments (Ray reuses workers): the thread count is set again before a node."""
    from hansbench.bench.engine.nodes import Node

    before = torch.get_num_threads()
    try:
        env = NodeEnv(EnvSpec(out=str(tmp_path), threads=1))
        torch.set_num_threads(2)
        seen = []
        env.output = lambda node, top=False: seen.append(torch.get_num_threads())  # what the node computes with
        env.run(Node("data", {}, {}, "v", {}))
        assert seen == [1]
    finally:
        torch.set_num_threads(before)


def test_threads_default_to_one_and_jobs_to_the_cores_divided_by_them(tmp_path):
    suite = load_suite("smoke")
    assert suite.threads == 1 and suite.jobs is None
    assert load_suite("smoke", jobs=3, threads=2).jobs == 3
    assert default_jobs(1) >= 1 and default_jobs(10_000) == 1
    assert default_jobs(1) // 2 <= default_jobs(2) <= default_jobs(1)


_V3_RUNS = """
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, suite TEXT, config TEXT, git_commit TEXT, versions TEXT,
    device TEXT, started REAL, finished REAL, status TEXT);
CREATE TABLE jobs (key TEXT PRIMARY KEY, run_id INTEGER, node_type TEXT, scenario TEXT, seed INTEGER, model TEXT,
    explainer TEXT, clusterer TEXT, family TEXT, status TEXT, error TEXT, seconds REAL, finished REAL, reason TEXT);
CREATE TABLE rows (id INTEGER PRIMARY KEY AUTOINCREMENT, job_key TEXT REFERENCES jobs(key), scenario TEXT,
    seed INTEGER, model TEXT, explainer TEXT, clusterer TEXT, family TEXT, metric TEXT, split TEXT, stage TEXT,
    detail TEXT, value REAL, unit TEXT, higher_is_better INTEGER);
INSERT INTO runs (suite, config, git_commit, versions, device, started, finished, status)
    VALUES ('quick', '{"suite": {"seeds": [3, 4]}}', 'abc', '{"python": "3.11"}', 'cpu', 1, 2, 'done');
INSERT INTO jobs VALUES ('k1', 1, 'metric', 'CH-50', 3, 'classifier', 'lrp', '', 'reliance', 'done', NULL, 2.5, 0,
    NULL);
INSERT INTO rows (job_key, scenario, seed, model, explainer, clusterer, family, metric, split, stage, detail, value,
    unit, higher_is_better) VALUES ('k1', 'CH-50', 3, 'classifier', 'lrp', '', 'reliance', 'acc-gap', 'clean_test',
    '', '', 19.9999988, 'pp', 1);
PRAGMA user_version = 3;
"""


def test_a_v3_store_is_read_as_it_is_then_migrated_in_place_and_its_unknown_threads_refused(tmp_path):
    path = tmp_path / "results.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(_V3_RUNS)
    old = read_latest_run(path)  # read only: the provenance columns it lacks read as not recorded
    assert (old.suite, old.threads, old.cpu, old.wall_s) == ("quick", None, "", None)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        before = pd.read_sql_query("SELECT * FROM rows ORDER BY id", conn)
    store = ResultsStore(path)
    assert store.migrated_from == 3 and SCHEMA_VERSION == 5
    run = store.latest_run()
    assert (run.threads, run.jobs, run.setting) == (None, None, "cpu, threads not recorded")
    assert store.mixed_with("cpu", 1) == "cpu, threads not recorded"  # unknown is not the same
    new = store.start_run("quick", {}, "cpu", threads=1, jobs=2, executor="local")
    store.finish_run(new, "done")
    assert store.latest_run().threads == 1 and store.latest_run().wall_s >= 0
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        after = pd.read_sql_query("SELECT * FROM rows ORDER BY id", conn)
        pd.testing.assert_frame_equal(before, after[before.columns])
        assert (after["rule"] == "").all()  # v4 -> v5: rows made before rules had none


def test_a_store_of_one_thread_count_takes_the_same_again_and_names_another(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    assert store.mixed_with("cpu", 2) is None  # empty: anything goes
    run = store.start_run("s", {}, "cpu", threads=1)
    store.record_job("k", run, {"node_type": "metric", "family": "reliance"}, [{"metric": "m", "value": 1.0}],
                     seconds=0.1)
    assert store.mixed_with("cpu", 1) is None
    assert store.mixed_with("cpu", 2) == f"cpu ({store.latest_run().cpu}), 1 thread"
    failed = store.start_run("s", {}, "cpu", threads=4)
    store.record_job("f", failed, {"node_type": "metric"}, [], seconds=0.1, error="boom")
    assert store.mixed_with("cpu", 1) is None  # a failed job left no rows to mix with


def test_a_store_refuses_rows_of_another_cpu_kind(tmp_path):
    """Another CPU model runs other kernels (AVX-512 or not): its rows differ in the last bits, so they do not mix."""
    store = ResultsStore(tmp_path / "results.sqlite")
    run = store.start_run("s", {}, "cpu", threads=1)
    store.record_job("k", run, {"node_type": "metric", "family": "reliance"}, [{"metric": "m", "value": 1.0}],
                     seconds=0.1)
    assert store.mixed_with("cpu", 1) is None
    with store.conn:
        store.conn.execute("UPDATE runs SET cpu = 'Some Other CPU @ 2.0GHz' WHERE id = ?", (run,))
    assert store.mixed_with("cpu", 1) == "cpu (Some Other CPU @ 2.0GHz), 1 thread"
