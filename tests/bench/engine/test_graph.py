"""The job graph: complete nested keys, exactly the dependants rerun, checked outputs, honest times."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace

import pytest
import torch

from hansbench.bench.cli import main
from hansbench.bench.engine.nodes import maps as maps_node
from hansbench.bench.engine.planner import Planner
from hansbench.bench.engine.runner import DirectoryLock, ResultsLocked, Runner
from hansbench.bench.suite.config import Component, load_suite, validate
from hansbench.methods.base import Explainer
from hansbench.registry import clusterers, explainers

TINY = """
[suite]
name = "tiny-graph"
seeds = [0]
device = "auto"
[data]
dataset = "signs"
artifact = "postit"
image_size = 16
n_train = 150
n_test = 40
[[scenarios]]
name = "CH-50"
poisoning = "CH"
fraction = 0.5
[models.classifier]
backbone = "small-resnet"
backbone_options = { widths = [4, 8] }
epochs = 1
[explainers]
gradcam = {}
integrated-gradients = { n_steps = 4 }
[clusterers]
spray = {}
activation-clustering = {}
[metrics]
cluster-detection = {}
model-accuracy = {}
artifact-localisation = {}
[timing]
batch_size = 4
repeats = 1
warmup = 0
"""


def _suite(tmp_path, text: str = TINY, name: str = "s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return load_suite(p)


def _nodes(suite) -> dict[tuple, str]:
    """(type, scenario, model, explainer, clusterer, metric) -> key, for every node the rows need (the figures'
    node depends on them all: tests/bench/engine/test_figure_inputs.py)."""
    out = {}
    for n in Planner(suite).plan().all_nodes():
        if n.type == "figure-inputs":
            continue
        ident = (n.type, n.ids.get("scenario"), n.ids.get("model", ""), n.ids.get("explainer", ""),
                 n.ids.get("clusterer", ""), n.ids.get("family", ""))
        out[ident] = n.key
    return out


def _changed(before: dict, after: dict) -> set[tuple]:
    assert before.keys() == after.keys()
    return {k for k in before if before[k] != after[k]}


def _of(changed: set[tuple], **where) -> set[tuple]:
    pos = {"type": 0, "explainer": 3, "clusterer": 4, "metric": 5}
    return {c for c in changed if all(c[pos[k]] == v for k, v in where.items())}


# ---------------------------------------------------------------------------------------- keys
def test_each_setting_changes_exactly_its_dependants(tmp_path, monkeypatch):
    base = _nodes(_suite(tmp_path))
    n_all = len(base)

    def changed(old: str, new: str) -> set[tuple]:
        assert old in TINY
        return _changed(base, _nodes(_suite(tmp_path, TINY.replace(old, new), "x.toml")))

    # explainer option: the explainer, its maps, clusterings, metrics and timing; nothing of gradcam or the model
    c = changed("n_steps = 4", "n_steps = 5")
    assert c and all(k[3] == "integrated-gradients" for k in c)
    assert {k[0] for k in c} == {"explainer", "maps", "clustering", "metric", "timing"}
    # clusterer option: the clusterings of that clusterer and the metrics on them
    c = changed("spray = {}", "spray = { n_neighbors = 7 }")
    assert c == _of(c, clusterer="spray") and {k[0] for k in c} == {"clustering", "metric"}
    assert len(c) == 3 * 2  # (two explainers + the pixels control) x (clustering, cluster-detection)
    # metric option: that metric only
    c = changed("artifact-localisation = {}", "artifact-localisation = { n_images = 7 }")
    assert c == _of(c, metric="artifact-localisation", type="metric") and len(c) == 2
    # view settings: clusterings of maps and pixels (not of activations) and their metrics
    c = changed("[timing]", "[clustering]\nmap_size = 3\n[timing]")
    assert {k[0] for k in c} == {"clustering", "metric"} and not _of(c, explainer="activations")
    assert len(c) == 3 * 2 and _of(c, explainer="pixels", type="clustering")
    # timing settings: timing nodes only
    c = changed("repeats = 1", "repeats = 2")
    assert c == _of(c, type="timing") and len(c) == 2
    # recipe: the model and everything after it, not the data
    c = changed("epochs = 1", "epochs = 2")
    pixels = ("clustering", "CH-50", "classifier", "pixels", "spray", "")  # raw pixels: no model, kept
    assert len(c) == n_all - 2 and ("data", "CH-50", "", "", "", "") not in c and pixels not in c
    # the weights' memory layout trains other floats: a model setting like the recipe
    assert changed("epochs = 1", 'epochs = 1\nmemory_format = "channels_last"') == c
    assert not changed("epochs = 1", 'epochs = 1\nmemory_format = "contiguous"')  # the default, spelled out
    # dataset option and artifact option: everything
    assert len(changed('artifact = "postit"', 'artifact = "postit"\nartifact_options = { size = 0.2 }')) == n_all
    assert len(changed('dataset = "signs"', 'dataset = "signs"\ndataset_options = { noise = 0.05 }')) == n_all
    # a plugin version bump: only that explainer's nodes
    monkeypatch.setattr(explainers.get("gradcam"), "version", "999")
    c = _changed(base, _nodes(_suite(tmp_path)))
    assert c and all(k[3] == "gradcam" for k in c)
    monkeypatch.undo()
    monkeypatch.setattr(clusterers.get("spray"), "version", "999")
    c = _changed(base, _nodes(_suite(tmp_path)))
    assert c == _of(c, clusterer="spray") and len(c) == 6
    monkeypatch.undo()
    # an input kind's version: only the clusterings of that kind and their metrics
    from hansbench.registry import clusterer_inputs

    monkeypatch.setattr(clusterer_inputs.get("pixels"), "version", "999")
    c = _changed(base, _nodes(_suite(tmp_path)))
    assert c == _of(c, explainer="pixels") and {k[0] for k in c} == {"clustering", "metric"} and len(c) == 2


def test_metric_and_explainer_options_never_overwrite_each_other(tmp_path):
    """Nested keys: the same option name in a metric and an explainer both count (no dict merging)."""
    a = _nodes(_suite(tmp_path, TINY.replace("n_steps = 4", "n_steps = 4, internal_batch_size = 8")))
    b = _nodes(_suite(tmp_path, TINY.replace("n_steps = 4", "n_steps = 4, internal_batch_size = 16"), "b.toml"))
    c = _changed(a, b)
    assert ("metric", "CH-50", "classifier", "integrated-gradients", "", "artifact-localisation") in c


def _folder(root, classes: dict[str, int], seed: int = 0):
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    for split in ("train", "test"):
        for ci, (name, n) in enumerate(classes.items()):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                arr = (torch.rand(16, 16, 3, generator=g) * 80 + 60 * ci).clamp(0, 255).byte().numpy()
                Image.fromarray(arr).save(d / f"{i}.png")


def test_folder_content_is_in_the_data_key(tmp_path):
    root = tmp_path / "imgs"
    _folder(root, {"a": 6, "b": 6, "stop": 6})
    text = TINY.replace('dataset = "signs"', f'dataset = "folder"\ndataset_options = {{ root = "{root}" }}')
    text = text.replace('fraction = 0.5', 'fraction = 0.5\naffected_class = "stop"')
    before = _nodes(_suite(tmp_path, text))
    (root / "train" / "a").rename(root / "train" / "tmp")  # swap two class folders
    (root / "train" / "b").rename(root / "train" / "a")
    (root / "train" / "tmp").rename(root / "train" / "b")
    after = _nodes(_suite(tmp_path, text))
    assert len(_changed(before, after)) == len(before)  # every node depends on the data
    again = _nodes(_suite(tmp_path, text))
    assert not _changed(after, again)


# ------------------------------------------------------------------------------------- execution
@pytest.fixture(scope="module")
def tiny_out(tmp_path_factory):
    root = tmp_path_factory.mktemp("graph")
    p = root / "tiny.toml"
    p.write_text(TINY)
    out = root / "out"
    assert main(["run", "--suite", str(p), "--out", str(out), "--no-progress", "--no-figures"]) == 0
    return p, out


def test_warm_rerun_loads_and_computes_nothing(tiny_out):
    p, out = tiny_out
    suite = load_suite(p, figures=False)  # as the fixture's run (--no-figures)
    runner = Runner(suite, out, progress=False)
    summary = runner.run()
    assert summary.done == 0 and summary.skipped == len(summary.job_keys) > 0
    assert runner._env is None  # no node environment was even created: nothing loaded


def test_node_times_are_stored_on_the_node_that_spent_them(tiny_out):
    _, out = tiny_out
    with sqlite3.connect(out / "results.sqlite") as db:
        model_s = db.execute("SELECT seconds FROM jobs WHERE node_type='model'").fetchone()[0]
        acc_s = db.execute("SELECT seconds FROM jobs WHERE family='model-accuracy'").fetchone()[0]
        node_types = {k for (k,) in db.execute("SELECT DISTINCT node_type FROM jobs WHERE status='done'")}
    assert {"data", "model", "maps", "clustering", "metric", "timing"} <= node_types
    assert model_s > acc_s  # training is billed to the model node, not to the first metric that needs it


def test_only_the_changed_nodes_rerun(tiny_out, tmp_path):
    import shutil

    p, out = tiny_out
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    suite = load_suite(p, figures=False)  # as the fixture's run (--no-figures)
    suite.clusterers["spray"] = replace(suite.clusterers["spray"], options={"n_neighbors": 5})
    runner = Runner(suite, copy, progress=False)
    summary = runner.run()
    assert summary.done == 3  # cluster-detection on spray x (gradcam, integrated-gradients, pixels)
    assert summary.resources == {"clustering": 3}  # nothing trained, no map recomputed


def test_corrupt_cache_entry_is_recomputed_and_named(tiny_out, tmp_path):
    import shutil

    p, out = tiny_out
    copy = tmp_path / "heal"
    shutil.copytree(out, copy)
    model_file = next((copy / "cache" / "model").glob("*.pt"))
    model_file.write_bytes(model_file.read_bytes()[:100])  # truncated
    suite = load_suite(p, figures=False, jobs=1)  # as the fixture's run (--no-figures); in process: its cache
    suite.metrics["model-accuracy"] = Component("model-accuracy")
    logs = []
    with sqlite3.connect(copy / "results.sqlite") as db:  # forget one metric that needs the model
        db.execute("DELETE FROM jobs WHERE family='model-accuracy'")
    runner = Runner(suite, copy, progress=False, log=logs.append)
    summary = runner.run()
    assert summary.done == 1 and not summary.failed
    assert any(str(model_file) in m and "corrupt" in m for m in logs)
    assert runner.ws.healed == [model_file] and model_file.stat().st_size > 100


class _BadShape(Explainer):
    """Returns maps at half resolution (a contract violation)."""

    model_kinds = ("classifier",)

    def explain(self, model, x, target):
        return torch.zeros(x.shape[0], 1, x.shape[2] // 2, x.shape[3] // 2)


class _Sleepy(Explainer):
    """Hangs."""

    model_kinds = ("classifier",)

    def explain(self, model, x, target):
        time.sleep(30)
        return torch.zeros(x.shape[0], 1, *x.shape[2:])


@pytest.fixture
def bad_plugins():
    explainers.register("bad-shape", _BadShape, replace=True)
    explainers.register("sleepy", _Sleepy, replace=True)
    yield
    explainers.unregister("bad-shape")
    explainers.unregister("sleepy")


def test_bad_output_fails_its_node_and_skips_dependants(tiny_out, tmp_path, bad_plugins):
    import shutil

    p, out = tiny_out
    copy = tmp_path / "bad"
    shutil.copytree(out, copy)
    raw = dict(load_suite(p).raw)
    raw["explainers"] = {"bad-shape": {}, "gradcam": {}}
    suite = validate(raw)
    summary = Runner(suite, copy, progress=False).run()
    failed = {ids["node"]: err for ids, err in summary.failed}
    assert "maps" in failed and "explainer 'bad-shape' returned maps of shape" in failed["maps"]
    assert "expected [30, V, 16, 16]" in failed["maps"]
    skipped = [ids for ids, _ in summary.dependency_skipped]
    assert skipped and all(ids["explainer"] == "bad-shape" for ids in skipped)
    assert {(ids["node"], ids.get("clusterer"), ids.get("family", "")) for ids in skipped} == {
        ("clustering", "spray", ""), ("metric", "spray", "cluster-detection")}
    assert not any(ids["explainer"] == "gradcam" for ids, _ in summary.failed + summary.dependency_skipped)
    with sqlite3.connect(copy / "results.sqlite") as db:
        n_bad_rows = db.execute("SELECT COUNT(*) FROM rows WHERE explainer='bad-shape' AND family!='timing'"
                                ).fetchone()[0]
    assert n_bad_rows == 0  # nothing of it is ranked


def test_a_hanging_node_is_failed_after_its_time_limit(tiny_out, tmp_path, bad_plugins):
    import shutil

    p, out = tiny_out
    copy = tmp_path / "hang"
    shutil.copytree(out, copy)
    raw = dict(load_suite(p).raw)
    raw["explainers"] = {"sleepy": {}}
    raw["clusterers"] = {}
    raw["metrics"] = {"model-accuracy": {}}
    t0 = time.perf_counter()
    summary = Runner(validate({**raw, "suite": {**raw.get("suite", {}), "node_timeout_s": 1.0}}), copy, progress=False).run()
    assert time.perf_counter() - t0 < 20
    assert summary.failed and all("time limit of 1 s" in err for _, err in summary.failed)


def test_planner_leaves_out_what_cannot_apply(tmp_path):
    text = TINY.replace('fraction = 0.5', 'fraction = 1.0').replace(
        "[models.classifier]", "[models.protopnet]\nbackbone_options = { widths = [4, 8] }\nprototypes_per_class = 2\n"
        "prototype_dim = 4\n[models.classifier]").replace("gradcam = {}", "gradcam = {}\nprp = {}").replace(
        "model-accuracy = {}", "model-accuracy = {}\nprototype-pruning = {}")
    plan = Planner(_suite(tmp_path, text)).plan()
    reasons = {(o.ids["model"], o.ids["explainer"], o.ids["family"]): o.reason for o in plan.omitted}
    # CH-100: no clean stop sign to tell the poisoned ones from
    assert any(m == "cluster-detection" for (_, _, m) in reasons)
    assert all("poisoned and clean" in r for (_, _, m), r in reasons.items() if m == "cluster-detection")
    # prototype pruning needs one map per prototype: PRP yes, Grad-CAM no; never on the classifier
    planned = {(n.ids["model"], n.ids["explainer"]) for n in plan.nodes if n.ids.get("family") == "prototype-pruning"}
    assert planned == {("protopnet", "prp")}
    assert "one map per prototype" in reasons[("protopnet", "gradcam", "prototype-pruning")]
    assert not any(n.ids.get("family") == "cluster-detection" for n in plan.nodes)


def test_a_second_run_on_the_same_directory_stops_at_once(tmp_path):
    out = tmp_path / "locked"
    out.mkdir()
    with DirectoryLock(out):
        with pytest.raises(ResultsLocked, match="another hansbench run .* --wait"):
            with DirectoryLock(out):
                pass
    with DirectoryLock(out):  # released: a later run goes ahead
        pass


def test_ray_executor_gives_the_local_rows(tmp_path):
    """Same rows (timing aside) through Ray (a local instance, 2 CPUs) as in process, same thread count."""
    ray = pytest.importorskip("ray")
    suite_path = tmp_path / "t.toml"
    suite_path.write_text(TINY.replace("integrated-gradients = { n_steps = 4 }\n", ""))
    outs = {}
    for executor in ("local", "ray"):
        if executor == "ray":
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            out = tmp_path / executor
            assert main(["run", "--suite", str(suite_path), "--out", str(out), "--no-progress", "--no-figures",
                         "--executor", executor, "--threads", "1"]) == 0
        finally:
            if executor == "ray":
                ray.shutdown()
        import pandas as pd

        df = pd.read_csv(out / "metrics.csv", keep_default_na=False)
        outs[executor] = df[df.family != "timing"].sort_values(
            ["scenario", "model", "explainer", "clusterer", "metric", "split", "stage"]).reset_index(drop=True)
    assert len(outs["local"]) > 0
    pd.testing.assert_frame_equal(outs["local"], outs["ray"])


def test_boundary_checks_name_the_method_and_the_problem():
    import numpy as np

    from hansbench.bench.engine import checks

    with pytest.raises(checks.NodeOutputError, match=r"clusterer 'c' returned labels of shape \(3,\), expected \(4,\)"):
        checks.check_clustering(np.zeros(3, int), 0, n=4, n_clusters=2, clusterer="c")
    with pytest.raises(checks.NodeOutputError, match="outside 0..1"):
        checks.check_clustering(np.array([0, 1, 2, 0]), 0, n=4, n_clusters=2, clusterer="c")
    with pytest.raises(checks.NodeOutputError, match="flagged cluster 5"):
        checks.check_clustering(np.array([0, 1, 1, 0]), 5, n=4, n_clusters=2, clusterer="c")
    checks.check_clustering(np.array([0, 1, 1, 0]), 1, n=4, n_clusters=2, clusterer="c")
    with pytest.raises(checks.NodeOutputError, match=r"metric 'm' returned acc = nan"):
        checks.check_rows([{"metric": "acc", "value": float("nan")}], "m")
    with pytest.raises(checks.NodeOutputError, match="inf"):
        checks.check_rows([{"metric": "acc", "value": float("inf")}], "m")
    assert checks.check_rows([{"metric": "acc", "value": None}], "m")  # explicitly missing is fine
    maps = torch.zeros(2, 3, 8, 8)
    maps[1, 0, 0, 0] = float("nan")
    with pytest.raises(checks.NodeOutputError, match="non-finite values .* in 1 of 2 maps"):
        checks.check_maps(maps, n=2, height=8, width=8, views=3, explainer="e")
    with pytest.raises(checks.NodeOutputError, match="returned 3 views, it declares 2"):
        checks.check_maps(torch.zeros(2, 3, 8, 8), n=2, height=8, width=8, views=2, explainer="e")


def test_time_report_names_where_the_time_went(tiny_out):
    from hansbench.bench.engine.store import ResultsStore

    _, out = tiny_out
    report = ResultsStore(out / "results.sqlite").time_report(top=3)
    assert "model" in report and "%" in report and "costliest 3 nodes" in report


def test_each_map_is_computed_once_and_stored_compactly(tiny_out, tmp_path, monkeypatch):
    """Overlapping requests compute only the new (image, class) pairs; float16 + per-map scale round-trips."""
    import shutil

    from hansbench.bench.engine.execute import EnvSpec, NodeEnv
    from hansbench.bench.engine.nodes.maps import decode_maps, encode_maps

    maps = torch.randn(5, 3, 8, 8) * torch.logspace(-12, 3, 5)[:, None, None, None]  # tiny and large relevances
    back = decode_maps(**encode_maps(maps))
    err = (back - maps).abs().amax(dim=(-2, -1)) / maps.abs().amax(dim=(-2, -1))
    assert float(err.max()) <= 2 ** -11  # the documented tolerance, at every scale (plain float16 flushes 1e-12)

    p, out = tiny_out
    copy = tmp_path / "bank"
    shutil.copytree(out, copy)
    plan = Planner(load_suite(p)).plan()
    exp_node = next(n for n in plan.all_nodes() if n.type == "explainer" and n.ids["explainer"] == "gradcam")
    env = NodeEnv(EnvSpec(out=str(copy)))
    calls = []
    explainer = env.output(exp_node)
    original = explainer.explain
    monkeypatch.setattr(explainer, "explain", lambda m, x, t: calls.append(len(x)) or original(m, x, t))
    fn = maps_node.explain_fn(env, exp_node)
    first = fn("clean_test", torch.arange(0, 10))
    second = fn("clean_test", torch.arange(5, 15))  # 5 new images
    again = fn("clean_test", torch.arange(0, 15))  # nothing new
    assert calls == [10, 5]
    assert torch.equal(second[:5], first[5:]) and torch.equal(again[:10], first) and torch.equal(again[10:], second[5:])
    data = env.output(exp_node.inputs["model"].inputs["data"])
    model = env.output(exp_node.inputs["model"])
    direct = original(model, model.normalize(data.clean_test.images[:15]), maps_node.targets(data, "clean_test",
                                                                                        torch.arange(15)))
    scale = direct.abs().amax(dim=(-2, -1), keepdim=True).clamp(min=1e-30)
    assert float(((again - direct).abs() / scale).max()) <= 2 ** -11


def test_files_named_by_options_enter_keys_by_content_and_names_do_not(tmp_path, monkeypatch):
    from hansbench.bench.engine import keys
    from hansbench.bench.engine.nodes.data import scenario_params
    from hansbench.datasets.scenarios import Scenario

    f = tmp_path / "weights.pt"
    f.write_bytes(b"a")
    a = keys.digest(keys.with_file_digests({"backbone_options": {"weights": str(f)}}))
    f.write_bytes(b"b")
    b = keys.digest(keys.with_file_digests({"backbone_options": {"weights": str(f)}}))
    assert a != b
    monkeypatch.chdir(tmp_path)
    (tmp_path / "signs").mkdir()  # a folder that shares the dataset's name is not data
    (tmp_path / "signs" / "x").write_text("1")
    params = scenario_params(Scenario(name="CH-50", dataset="signs"))
    assert params["dataset"] == "signs"


def test_a_scenarios_only_table_limits_what_runs_there_and_keeps_its_data_key(tmp_path):
    """A control scenario can run a subset (``only``); the filter plans, it never enters the data's key."""
    from hansbench.bench.suite.config import SuiteError

    control = '[[scenarios]]\nname = "clean"\npoisoning = "none"\nfraction = 0.0\n'
    limited = control + 'only = { metrics = ["cluster-detection"], explainers = ["gradcam"] }\n'
    plain = Planner(_suite(tmp_path, TINY + control, "a.toml")).plan()
    only = Planner(_suite(tmp_path, TINY + limited, "b.toml")).plan()

    def rows(plan, scenario):
        return {(n.ids.get("family"), n.ids.get("explainer")) for n in plan.nodes if n.ids["scenario"] == scenario}

    assert {m for m, _ in rows(plain, "clean")} >= {"cluster-detection", "model-accuracy", "artifact-localisation"}
    assert {m for m, _ in rows(only, "clean")} == {"cluster-detection", "timing"}
    assert {e for _, e in rows(only, "clean")} == {"gradcam", "pixels", "activations"}  # input kinds are not explainers
    assert rows(only, "CH-50") == rows(plain, "CH-50")  # other scenarios unchanged
    data_keys = [{n.key for n in p.all_nodes() if n.type == "data" and n.ids["scenario"] == "clean"} for p in (plain, only)]
    assert data_keys[0] == data_keys[1]
    with pytest.raises(SuiteError, match=r"scenarios\.clean\.only\.metrics: unknown name 'roar-x'"):
        _suite(tmp_path, TINY + control + 'only = { metrics = ["roar-x"] }\n', "c.toml")
    with pytest.raises(SuiteError, match=r"scenarios\.clean\.only\.scenarios: unknown section"):
        _suite(tmp_path, TINY + control + 'only = { scenarios = ["x"] }\n', "d.toml")
