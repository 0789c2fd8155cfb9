"""The run's fixed costs cut (issue 31 item 3) without touching its guarantees: whole jobs written together in one
transaction (all or none of them, each with its rows and status), the process pool's ready nodes found by counts
in plan order (never before their inputs), and the ordering curves drawn in another process giving the same
page as drawn here."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest

from hansbench.bench.engine.executors.pool import _Ready
from hansbench.bench.engine.nodes import Node
from hansbench.bench.engine.store import ResultsStore
from hansbench.bench.report import publish as publish_module


def _row(value: float) -> dict:
    return {"metric": "m", "split": "test", "value": value, "unit": "", "higher_is_better": True, "detail": "",
            "stage": ""}


def _counts(path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        return (conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0],
                conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0])
    finally:
        conn.close()


def test_a_batch_writes_whole_jobs_in_one_transaction_and_nothing_when_it_fails(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    run = store.start_run("t", {}, "cpu", threads=1)
    ids = {"node_type": "metric", "scenario": "s", "seed": 0, "family": "f"}
    with store.batch():
        store.record_job("a", run, ids, [_row(1.0), _row(2.0)], seconds=0.1)
        with store.batch():  # nested: joins the outer one
            store.record_job("b", run, ids, [_row(3.0)], seconds=0.1)
        assert _counts(tmp_path / "results.sqlite") == (0, 0)  # another connection sees nothing yet
    assert _counts(tmp_path / "results.sqlite") == (2, 3)  # committed together at the end
    with pytest.raises(RuntimeError, match="crash"), store.batch():
        store.record_job("c", run, ids, [_row(4.0)], seconds=0.1)
        store.record_job("a", run, ids, [], seconds=0.1, error="replaced")
        raise RuntimeError("crash mid-batch")
    assert _counts(tmp_path / "results.sqlite") == (2, 3)  # none of the batch, "a" as it was
    assert store.done_keys() == {"a", "b"}
    store.record_job("d", run, ids, [_row(5.0)], seconds=0.1)  # outside a batch: its own commit again
    assert _counts(tmp_path / "results.sqlite") == (3, 4)


def _node(name: str, *inputs: Node) -> Node:
    return Node("toy", {"name": name}, {f"in{i}": n for i, n in enumerate(inputs)}, "code", {"name": name})


def test_ready_nodes_come_in_plan_order_and_only_once_their_inputs_finished():
    a, b = _node("a"), _node("b")
    c = _node("c", a, b)
    d = _node("d", c)
    e = _node("e", a)
    outside = _node("outside")  # an input not in the plan (done before this run): not waited for
    f = _node("f", outside)
    ready = _Ready([a, b, c, d, e, f])
    assert [ready.pop().key for _ in range(3)] == [a.key, b.key, f.key]
    assert ready.pop() is None  # c, d, e wait for their inputs
    ready.finished(a.key)
    assert ready.pop().key == e.key and ready.pop() is None  # c still waits for b
    ready.finished(b.key)
    assert ready.pop().key == c.key and ready.pop() is None
    ready.finished(c.key)
    assert ready.pop().key == d.key and ready.pop() is None


def test_curves_drawn_in_another_process_give_the_same_page(tmp_path, monkeypatch):
    rows = pd.DataFrame([
        {"scenario": "S", "seed": seed, "model": "classifier", "explainer": ex, "clusterer": "", "rule": "",
         "family": "relevance-ordering", "metric": "ordering-auc", "split": "artifact_test", "stage": "",
         "detail": json.dumps({"curve": [1.0, 0.5 + 0.1 * seed, 0.1]}), "value": 0.5 + 0.01 * seed, "unit": "",
         "higher_is_better": False} for seed in (0, 1, 2) for ex in ("lrp", "gradcam")])

    class Store:  # the typed API publish reads
        def rows(self, keys=None):
            return rows.copy()

        def jobs(self):
            return pd.DataFrame(columns=["key", "run_id", "node_type", "scenario", "seed", "model", "explainer",
                                         "clusterer", "rule", "family", "status", "error", "reason", "seconds"])

        def done_keys(self):
            return set()

        def latest_run(self):
            return None

        def runs(self):
            return []

    pages = {}
    for how in ("forked", "here"):
        if how == "here":
            monkeypatch.setattr(publish_module, "aside", lambda draw, *args: lambda: draw(*args))
        out = tmp_path / how
        paths = publish_module.publish(out, store=Store(), suite_name="t")
        pages[how] = paths["leaderboard.md"].read_text()
        assert any(p.name.startswith("curves-") for p in out.iterdir())
    assert "curves-" in pages["forked"]
    assert pages["forked"] == pages["here"]


def test_the_output_code_is_taken_from_the_manifest_only_while_none_of_its_files_changed(tmp_path):
    code, files = publish_module.recorded_output_code(tmp_path)  # no manifest: computed
    assert code == publish_module.output_code() and len(files) > 20
    assert any(f.endswith("report/publish.py") for f in files)
    manifest = tmp_path / publish_module.MANIFEST

    manifest.write_text(json.dumps({"code": "recorded", "code_files": files}))
    assert publish_module.recorded_output_code(tmp_path)[0] == "recorded"  # nothing changed: read back, not parsed

    one = next(iter(files))
    stale = {**files, one: [files[one][0], files[one][1] - 1]}  # that module changed since
    manifest.write_text(json.dumps({"code": "recorded", "code_files": stale}))
    assert publish_module.recorded_output_code(tmp_path)[0] == code

    fewer = {f: s for f, s in files.items() if not f.endswith("report/publish.py")}  # a module the record lacks
    manifest.write_text(json.dumps({"code": "recorded", "code_files": fewer}))
    assert publish_module.recorded_output_code(tmp_path)[0] == code
