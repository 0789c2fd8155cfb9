"""Node types: one class each, registered, checked at registration, versioned by their own code."""

from __future__ import annotations

import importlib.util
import sys
import time

import pytest
import torch

from hansbench.bench.engine import keys
from hansbench.bench.engine.cache import entry_path
from hansbench.bench.engine.execute import EnvSpec, NodeEnv
from hansbench.bench.engine.executors import run_nodes
from hansbench.bench.engine.nodes import Node, NodeType, node_types
from hansbench.bench.engine.nodes import clustering as clustering_module
from hansbench.bench.engine.nodes import maps as maps_module
from hansbench.bench.engine.planner import Planner
from hansbench.bench.suite.config import load_suite

CALLS = {"compute": 0, "from_state": 0}


class CumulativeSum(NodeType):
    """A toy cached type: the running sum of a seeded vector plus its input's; the cache holds only the vector."""

    cached = True
    order = 1

    @classmethod
    def plan(cls, seed: int, n: int, previous: Node | None = None, sleep: float = 0.0) -> Node:
        return cls.node({"seed": seed, "n": n, "sleep": sleep}, {"previous": previous} if previous else {},
                        cls.code_version(), {"seed": seed})

    @classmethod
    def compute(cls, node, env):
        CALLS["compute"] += 1
        time.sleep(node.params["sleep"])
        values = torch.rand(node.params["n"], generator=torch.Generator().manual_seed(node.params["seed"]))
        value = cls.from_state(node, {"values": values}, env)
        CALLS["from_state"] -= 1  # (the call above is not a load)
        return value, {"values": values}

    @classmethod
    def from_state(cls, node, state, env):
        CALLS["from_state"] += 1
        before = env.output(node.inputs["previous"])["total"] if "previous" in node.inputs else 0.0
        return {"values": state["values"], "total": before + float(state["values"].sum())}


@pytest.fixture
def toy(monkeypatch):
    node_types.register("cumulative-sum", CumulativeSum)
    monkeypatch.setitem(CALLS, "compute", 0)
    monkeypatch.setitem(CALLS, "from_state", 0)
    yield CumulativeSum
    node_types.unregister("cumulative-sum")


def _run(nodes, out, env=None):
    results = {}
    run_nodes("local", nodes, EnvSpec(out=str(out)), lambda n, r: results.setdefault(n.key, r), env=env)
    return results


def test_a_toy_type_runs_cold_then_loads_warm_through_its_from_state(toy, tmp_path):
    first = toy.plan(seed=1, n=5)
    second = toy.plan(seed=2, n=3, previous=first)
    expected = float(torch.rand(5, generator=torch.Generator().manual_seed(1)).sum()
                     + torch.rand(3, generator=torch.Generator().manual_seed(2)).sum())

    env = NodeEnv(EnvSpec(out=str(tmp_path)))
    cold = _run([second], tmp_path, env)  # the input is computed on demand, as its own sub-node
    assert cold[second.key].status == "done" and CALLS == {"compute": 2, "from_state": 0}
    assert [r["key"] for r in cold[second.key].records] == [first.key]
    assert env.memo[second.key]["total"] == pytest.approx(expected)
    for node in (first, second):
        assert entry_path(tmp_path / "cache", "cumulative-sum", node.key).is_file()

    warm_env = NodeEnv(EnvSpec(out=str(tmp_path)))  # an empty memo: served from the cache entries
    warm = _run([second], tmp_path, warm_env)
    assert warm[second.key].status == "done" and not warm[second.key].records
    assert CALLS == {"compute": 2, "from_state": 2}  # both loaded, nothing recomputed
    assert warm_env.memo[second.key]["total"] == pytest.approx(expected)  # what from_state rebuilt


def test_ray_computes_a_runs_on_driver_type_in_the_driver(toy, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(toy, "runs_on_driver", True)
    node = toy.plan(seed=1, n=4)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        results = {}
        run_nodes("ray", [node], EnvSpec(out=str(tmp_path)), lambda n, r: results.setdefault(n.key, r))
    finally:
        ray.shutdown()
    assert results[node.key].status == "done"
    assert CALLS["compute"] == 1  # counted in this process: no worker ran it
    assert entry_path(tmp_path / "cache", "cumulative-sum", node.key).is_file()


def test_each_node_on_demand_is_billed_its_own_time_only(toy, tmp_path):
    """A node computed inside a node computed inside another: each record holds its own seconds."""
    a = toy.plan(seed=1, n=2, sleep=0.3)
    b = toy.plan(seed=2, n=2, previous=a, sleep=0.1)
    c = toy.plan(seed=3, n=2, previous=b)
    result = _run([c], tmp_path)[c.key]
    seconds = {r["key"]: r["seconds"] for r in result.records}
    assert seconds.keys() == {a.key, b.key}
    assert 0.3 <= seconds[a.key] < 0.6 and 0.1 <= seconds[b.key] < 0.3  # b's time without a's 0.3 s inside it
    assert result.seconds < 0.2


def test_a_cached_type_without_from_state_fails_at_registration():
    class Unloadable(NodeType):
        cached = True

        @classmethod
        def compute(cls, node, env):
            return 1, {"x": torch.ones(1)}

    with pytest.raises(TypeError, match="'unloadable' is cached but defines no from_state"):
        node_types.register("unloadable", Unloadable)
    assert "unloadable" not in node_types
    with pytest.raises(TypeError, match="defines no compute"):
        node_types.register("nothing", type("Nothing", (NodeType,), {}))


def _type_from_file(tmp_path, monkeypatch, name: str, body: str) -> type:
    folder = tmp_path / name
    folder.mkdir()
    path = folder / "toy_type.py"
    path.write_text("from hansbench.bench.engine.nodes import NodeType\n\n\nclass Toy(NodeType):\n" + body)
    spec = importlib.util.spec_from_file_location(f"toy_type_{name}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module.Toy


def test_a_types_code_version_is_a_digest_of_its_code(tmp_path, monkeypatch):
    body = "    @classmethod\n    def compute(cls, node, env):\n        return {}, None\n"
    a = _type_from_file(tmp_path, monkeypatch, "a", body)
    same = _type_from_file(tmp_path, monkeypatch, "same", body)
    edited = _type_from_file(tmp_path, monkeypatch, "edited", body.replace("{}", "{'x': 1}"))
    assert a.code_version() == same.code_version()  # the code, not where it lies
    assert a.code_version() != edited.code_version()
    assert a.code_version("plugin-1") != a.code_version("plugin-2")  # and the plugins it runs


SUITE = """
[suite]
name = "node-types"
seeds = [0]
[data]
dataset = "signs"
image_size = 16
n_train = 40
n_test = 10
[[scenarios]]
name = "CH-50"
poisoning = "CH"
fraction = 0.5
[models.classifier]
backbone = "small-resnet"
epochs = 1
[explainers]
gradcam = {}
[clusterers]
spray = {}
activation-clustering = {}
[metrics]
cluster-detection = {}
model-accuracy = {}
"""


def _keys(suite) -> dict[tuple, str]:
    return {(n.type, n.ids.get("explainer", ""), n.ids.get("clusterer", ""), n.ids.get("family", "")): n.key
            for n in Planner(suite).plan().all_nodes()}


def test_editing_the_map_bank_reruns_maps_and_what_clusters_them_without_a_constant(tmp_path, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text(SUITE)
    suite = load_suite(path)
    before = _keys(suite)
    edited = maps_module.__file__
    real = keys._source_digest
    monkeypatch.setattr(keys, "_source_digest", lambda f: "edited" if f == edited else real(f))
    after = _keys(suite)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {("maps", "gradcam", "", ""), ("clustering", "gradcam", "spray", ""),
                       ("metric", "gradcam", "spray", "cluster-detection"),
                       ("figure-inputs", "", "", "")}  # the figures draw the clustering: redrawn from new inputs
    # the bank's key moves with the maps: old maps are not served to the edited code
    env = NodeEnv(EnvSpec(out=str(tmp_path / "out")))
    exp_node = next(n for n in Planner(suite).plan().all_nodes() if n.type == "explainer")
    bank_key = maps_module.MapBank(env, exp_node, "train").key
    monkeypatch.setattr(keys, "_source_digest", real)
    assert maps_module.MapBank(env, exp_node, "train").key != bank_key


def test_editing_the_views_code_reruns_every_clustering_and_its_metrics_but_no_maps(tmp_path, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text(SUITE)
    suite = load_suite(path)
    before = _keys(suite)
    edited = clustering_module.__file__
    real = keys._source_digest
    monkeypatch.setattr(keys, "_source_digest", lambda f: "edited" if f == edited else real(f))
    after = _keys(suite)
    changed = {k for k in before if before[k] != after[k]}
    clusterings = {k for k in before if k[0] == "clustering"}
    assert len(clusterings) == 3  # gradcam maps, the pixels control, activations
    assert changed == clusterings | {("metric", e, c, "cluster-detection") for _, e, c, _ in clusterings} | {
        ("figure-inputs", "", "", "")}


def test_the_plan_orders_types_by_their_declared_order_inputs_first(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SUITE)
    nodes = Planner(load_suite(path)).plan().all_nodes()
    position = {n.key: i for i, n in enumerate(nodes)}
    assert all(position[a.key] < position[n.key] for n in nodes for a in n.inputs.values())
    for name in node_types.names():
        kind = node_types.get(name)
        assert not (kind.cached and kind.produces_rows)
    assert {n for n in node_types.names() if node_types.get(n).produces_rows} >= {"metric", "timing"}


class ModelSize(NodeType):
    """A toy row type registered from outside the engine: one row per model, the number of its parameters."""

    produces_rows = True
    order = 6

    @classmethod
    def plan_for_model(cls, planner, at):
        return [cls.node({"kind": at.kind}, {"model": at.model}, cls.code_version(), {**at.model.ids,
                                                                                    "family": "model-size"})], []

    @classmethod
    def compute(cls, node, env):
        n = sum(p.numel() for p in env.output(node.inputs["model"]).parameters())
        return [{"metric": "parameters", "value": float(n), "unit": "count", "higher_is_better": False,
                 "split": "", "stage": "", "detail": ""}]


def test_a_new_row_type_is_planned_by_registering_it_alone(tmp_path):
    """The planner asks the registry: a type registered from a plugin gets its nodes into every plan, one per
    scenario x seed x model kind, and nothing else is edited."""
    suite = load_suite("smoke")
    before = Planner(suite).plan()
    node_types.register("model-size", ModelSize)
    try:
        after = Planner(suite).plan()
    finally:
        node_types.unregister("model-size")
    added = [n for n in after.nodes if n.type == "model-size"]
    kinds = [(s.name, seed, k) for s in suite.scenarios for seed in suite.seeds for k in suite.models]
    assert sorted((n.ids["scenario"], n.ids["seed"], n.ids["model"]) for n in added) == sorted(kinds)
    assert [n.key for n in after.nodes if n.type != "model-size"] == [n.key for n in before.nodes]
    assert "model-size" not in node_types
