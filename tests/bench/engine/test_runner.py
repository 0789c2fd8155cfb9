"""One path end to end on a tiny suite: train, explain, cluster, score, write; resume; no lost results."""

from __future__ import annotations

import dataclasses
import sqlite3

import pandas as pd
import pytest

from hansbench.bench.cli import main
from hansbench.bench.engine.runner import Runner
from hansbench.bench.engine.workspace import Workspace
from hansbench.bench.suite.config import load_suite

TINY = """
[suite]
name = "tiny"
seeds = [0]
device = "auto"
[data]
dataset = "signs"
artifact = "postit"
image_size = 24
n_train = 240
n_test = 60
[[scenarios]]
name = "CH-50"
poisoning = "CH"
fraction = 0.5
[[scenarios]]
name = "BD-20"
poisoning = "BD"
fraction = 0.2
target_class = "speed limit"
[models.classifier]
backbone = "small-resnet"
backbone_options = { widths = [8, 16] }
epochs = 2
[explainers]
gradcam = {}
[clusterers]
spray = {}
[metrics]
cluster-detection = {}
[timing]
batch_size = 4
repeats = 1
warmup = 0
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    suite_path = root / "tiny.toml"
    suite_path.write_text(TINY)
    out = root / "out"
    code = main(["run", "--suite", str(suite_path), "--out", str(out), "--no-progress"])
    return suite_path, out, code


def test_run_writes_store_csv_and_leaderboard(tiny_run):
    _, out, code = tiny_run
    assert code == 0
    df = pd.read_csv(out / "metrics.csv", keep_default_na=False)
    for col in ("scenario", "seed", "explainer", "clusterer", "metric", "value"):
        assert col in df.columns
    assert set(df.scenario) == {"CH-50", "BD-20"}
    det = df[df.metric == "cluster-acc"]
    assert sorted(det.explainer) == ["gradcam", "gradcam", "pixels", "pixels"] and (det.clusterer == "spray").all()
    assert det.value.astype(float).between(0, 100).all()
    assert {"ms-per-image", "gradient-units"} <= set(df.metric)
    board = (out / "leaderboard.md").read_text()
    assert "CH-50" in board and "Detection matrix" in board and "spray" in board
    assert (out / "leaderboard.html").is_file() and (out / "leaderboard.tex").is_file()
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs WHERE status='done'").fetchone()[0] == 1


def test_second_run_recomputes_nothing(tiny_run):
    suite_path, out, _ = tiny_run
    runner = Runner(load_suite(suite_path), out, progress=False)
    summary = runner.run()
    assert summary.done == 0 and summary.skipped == len(summary.job_keys) > 0
    assert not summary.resources and runner._env is None  # no model trained, no map computed, nothing loaded


def _failing_at(monkeypatch, metric: str, exc: BaseException, times: int = 1):
    """Make the first ``times`` evaluations of ``metric`` raise ``exc``."""
    from hansbench.bench.engine.nodes.metric import MetricNode

    original = MetricNode.compute
    left = {"n": times}

    def patched(node, env):
        if node.params["metric"] == metric and left["n"] > 0:
            left["n"] -= 1
            raise exc
        return original(node, env)

    monkeypatch.setattr(MetricNode, "compute", patched)


def test_crash_mid_run_loses_nothing_finished(tiny_run, tmp_path, monkeypatch):
    """A failing node is recorded with its traceback; the finished ones stay; a rerun completes it."""
    out = tmp_path / "crash"
    _failing_at(monkeypatch, "cluster-detection", RuntimeError("boom"))
    runner = Runner(load_suite(tiny_run[0], jobs=1), out, progress=False)  # in process: the patch reaches it
    summary = runner.run()
    assert len(summary.failed) == 1 and "boom" in summary.failed[0][1]
    assert summary.done == len(summary.job_keys) - 1
    with sqlite3.connect(out / "results.sqlite") as db:
        err = db.execute("SELECT error FROM jobs WHERE status='failed'").fetchone()[0]
    assert "RuntimeError: boom" in err and "Traceback" in err
    again = Runner(load_suite(tiny_run[0], jobs=1), out, progress=False).run()
    assert again.done == 1 and not again.failed


def test_interrupt_keeps_finished_jobs(tiny_run, tmp_path, monkeypatch):
    out = tmp_path / "interrupt"
    _failing_at(monkeypatch, "cluster-detection", KeyboardInterrupt())
    runner = Runner(load_suite(tiny_run[0], jobs=1), out, progress=False)  # in process: the patch reaches it
    summary = runner.run()
    with sqlite3.connect(out / "results.sqlite") as db:
        done = {k for (k,) in db.execute("SELECT key FROM jobs WHERE status='done'")}
        status = db.execute("SELECT status FROM runs").fetchone()[0]
    assert summary.interrupted and status == "interrupted"
    assert summary.done == len(done & set(summary.job_keys))  # every row node counted as done is in the store
    assert {"data", "model"} <= {n.type for n in runner.last_plan.all_nodes() if n.key in done}
    misses = []
    load = Workspace.load

    def counting_load(self, kind, key):
        value = load(self, kind, key)
        if value is None:
            misses.append(kind)
        return value

    monkeypatch.setattr(Workspace, "load", counting_load)
    suite = load_suite(tiny_run[0], figures=False, jobs=1)  # the rows' resume only (the figures' inputs are new work: never computed before)
    resumed = Runner(suite, out, progress=False)
    again = resumed.run()
    assert not again.failed and again.done == len(again.job_keys) - summary.done
    assert len(misses) <= 2, misses  # the two clusterings not yet cached at the interrupt, nothing else retrained


def test_invalid_suite_fails_before_work(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace("gradcam = {}", "gradkam = {}"))
    assert main(["run", "--suite", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "explainers.gradkam" in err and "gradcam" in err
    assert not (tmp_path / "o").exists()


def test_plugin_runs_in_a_suite(tmp_path, monkeypatch):
    """An entry-point plugin is usable by name in a suite."""
    import sys
    import types
    from importlib.metadata import EntryPoint

    from hansbench import registry
    from hansbench.methods.base import Explainer

    module = types.ModuleType("plugin_for_suite")

    def register() -> None:
        @registry.explainers.register("abs-input", replace=True)
        class AbsInput(Explainer):
            """Absolute input (a plugin's toy explainer)."""

            model_kinds = ("classifier",)

            def explain(self, model, x, target):
                return x.abs().sum(1, keepdim=True)

    module.register = register
    monkeypatch.setitem(sys.modules, "plugin_for_suite", module)
    ep = EntryPoint(name="abs-input", value="plugin_for_suite:register", group=registry.PLUGIN_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep])
    registry.reset_for_tests()
    try:
        text = TINY.replace("gradcam = {}", '"abs-input" = {}').replace(
            '[[scenarios]]\nname = "BD-20"\npoisoning = "BD"\nfraction = 0.2\ntarget_class = "speed limit"\n', "")
        p = tmp_path / "plugin.toml"
        p.write_text(text)
        assert main(["run", "--suite", str(p), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
        df = pd.read_csv(tmp_path / "o" / "metrics.csv", keep_default_na=False)
        assert set(df[df.metric == "cluster-f1"].explainer) == {"abs-input", "pixels"}
    finally:
        registry.explainers.unregister("abs-input")
        registry.reset_for_tests()


def test_changing_the_view_size_reclusters_but_retrains_nothing(tiny_run, tmp_path):
    """The clustering key holds the [clustering] settings: a new map_size re-clusters; models stay cached."""
    import shutil

    suite_path, out, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    suite = load_suite(suite_path)
    suite = dataclasses.replace(suite, clustering={"map_size": 4})
    runner = Runner(suite, copy, progress=False)
    summary = runner.run()
    assert summary.done == 4 and summary.skipped == len(summary.job_keys) - 4  # the cluster-detection jobs (maps, pixels)
    # new clusterings (maps and pixels) and the figures' inputs that embed them; models and maps came from the cache
    assert summary.resources == {"clustering": 4, "figure-inputs": len(runner.last_plan.figures)}
