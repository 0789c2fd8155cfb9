"""One publish step (``hansbench.bench.report.publish.publish``) for ``run`` and ``report``: rows -> metrics.csv ->
curves -> leaderboard, skipped when nothing it depends on changed, never when the results are partial."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hansbench.bench.cli import main
from hansbench.bench.engine.store import ResultsStore
from hansbench.bench.report.publish import MANIFEST, publish

pytestmark = pytest.mark.filterwarnings("ignore")
CONFIG = {"suite": {"name": "tiny", "seeds": [0, 1]}}


def _ordering(explainer: str, value: float, seed: int) -> dict:
    return {"metric": "ordering-auc-class", "value": value, "unit": "", "higher_is_better": True,
            "split": "clean_test", "detail": json.dumps({"curve": [0.0, value], "mode": "insertion"}), "seed": seed}


def _store(tmp_path, explainers=("gradcam", "random")):
    store = ResultsStore(tmp_path / "results.sqlite")
    run = store.start_run("tiny", CONFIG, "cpu")
    keys = []
    for seed in (0, 1):
        for i, e in enumerate(explainers):
            key = f"k-{e}-{seed}"
            ids = {"node_type": "metric", "scenario": "CH-50", "seed": seed, "model": "classifier", "explainer": e,
                   "metric": "relevance-ordering"}
            store.record_job(key, run, ids, [_ordering(e, 0.5 + 0.1 * i + 0.01 * seed, seed)], seconds=0.1)
            keys.append(key)
    store.record_not_applicable("n/a-1", run, {"scenario": "CH-50", "seed": 0, "model": "classifier",
                                               "explainer": "gradcam", "metric": "prototype-pruning"},
                                "prototype-pruning needs one map per prototype")
    return store, run, keys


def test_publish_writes_every_output_then_skips_until_something_changes(tmp_path):
    store, run, keys = _store(tmp_path)
    paths = publish(tmp_path, store=store, suite_name="tiny", job_keys=keys, skip_unchanged=True)
    for name in ("leaderboard.md", "leaderboard.html", "leaderboard.tex"):
        assert paths[name].is_file()
    csv = pd.read_csv(tmp_path / "metrics.csv")
    assert len(csv) == 4 and set(csv.explainer) == {"gradcam", "random"}
    board = paths["leaderboard.md"].read_text()
    assert "# hansbench leaderboard: suite tiny" in board
    assert "prototype-pruning needs one map per prototype (1 combination)" in board  # the reason column
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert "leaderboard.md" in manifest["files"] and any(f.endswith(".png") for f in manifest["files"])  # curves
    stamp = {p: p.stat().st_mtime_ns for p in paths.values()}
    again = publish(tmp_path, store=store, suite_name="tiny", job_keys=keys, skip_unchanged=True)
    assert again == paths and {p: p.stat().st_mtime_ns for p in again.values()} == stamp  # skipped
    drawn = []
    publish(tmp_path, store=store, suite_name="tiny", job_keys=keys, figures=lambda: drawn.append(1) or [],
            skip_unchanged=True)
    assert drawn == []  # figures are drawn only when the outputs are written
    ids = {"node_type": "metric", "scenario": "CH-50", "seed": 2, "model": "classifier", "explainer": "gradcam",
           "metric": "relevance-ordering"}
    store.record_job("k-new", run, ids, [_ordering("gradcam", 0.9, 2)], seconds=0.1)
    publish(tmp_path, store=store, suite_name="tiny", job_keys=[*keys, "k-new"], figures=lambda: drawn.append(1) or [],
            skip_unchanged=True)
    assert drawn == [1] and len(pd.read_csv(tmp_path / "metrics.csv")) == 5  # a new finished node: rewritten
    missing = tmp_path / "leaderboard.tex"
    missing.unlink()
    publish(tmp_path, store=store, suite_name="tiny", job_keys=[*keys, "k-new"], skip_unchanged=True)
    assert missing.is_file()  # a written file gone: rewritten
    store.close()


def test_partial_results_are_never_skipped_and_keep_no_manifest(tmp_path):
    store, _, keys = _store(tmp_path)
    publish(tmp_path, store=store, suite_name="tiny", job_keys=keys, skip_unchanged=True)
    paths = publish(tmp_path, store=store, suite_name="tiny", job_keys=keys, partial="the run was interrupted",
                    skip_unchanged=True)  # the same digest as the manifest's: still written
    assert "PARTIAL RESULTS: the run was interrupted" in paths["leaderboard.md"].read_text()
    assert not (tmp_path / MANIFEST).exists()
    publish(tmp_path, store=store, suite_name="tiny", job_keys=keys[:2], curves=False, partial="interrupted")
    assert len(pd.read_csv(tmp_path / "metrics.csv")) == 2  # only the given nodes' rows
    store.close()


def test_report_publishes_every_row_under_the_latest_runs_suite_name(tmp_path, capsys):
    store, run, keys = _store(tmp_path)
    store.finish_run(run, "done")
    extra = store.start_run("tiny-2", CONFIG, "cpu")
    store.record_job("old", extra, {"node_type": "metric", "scenario": "CH-50", "seed": 5, "model": "classifier",
                                    "explainer": "gradcam", "metric": "relevance-ordering"},
                     [_ordering("gradcam", 0.7, 5)], seconds=0.1)
    store.close()
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert "suite tiny-2" in (tmp_path / "leaderboard.md").read_text()  # the latest run's name
    assert len(pd.read_csv(tmp_path / "metrics.csv")) == 5  # every row in the store, not one plan's
    assert main(["report", "--out", str(tmp_path), "--name", "mine"]) == 0
    assert "suite mine" in (tmp_path / "leaderboard.md").read_text()  # --name: always rewritten
