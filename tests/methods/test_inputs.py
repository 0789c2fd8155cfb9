"""Clusterer input kinds: pixel views, the planner's controls, stored and checked scores, a plugin kind,
the clean control, and methods seeing the data without ground truth."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hansbench import registry
from hansbench.bench.engine.execute import EnvSpec, NodeEnv
from hansbench.bench.engine.nodes import clustering, maps
from hansbench.bench.engine.planner import Planner
from hansbench.bench.suite.config import SuiteError, load_suite
from hansbench.registry import clusterer_inputs, clusterers, explainers

SUITE = """
[suite]
name = "tiny-inputs"
seeds = [0]
device = "cpu"
[data]
dataset = "signs"
artifact = "postit"
image_size = 16
n_train = 100
n_test = 20
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
[clusterers]
spray = { n_neighbors = 4 }
coreg = { n_neighbors = 4 }
activation-clustering = {}
[metrics]
cluster-detection = {}
"""


def _suite(tmp_path, text: str = SUITE, name: str = "s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return load_suite(p)


def _clusterings(plan) -> set[tuple[str, str]]:
    return {(n.ids["explainer"], n.ids["clusterer"]) for n in plan.all_nodes() if n.type == "clustering"}


def _node(plan, explainer: str, clusterer: str, type_: str = "clustering"):
    return next(n for n in plan.all_nodes() if n.type == type_ and n.ids.get("explainer") == explainer
                and n.ids.get("clusterer") == clusterer)


# ------------------------------------------------------------------------------------------- views
def test_pixel_views_are_the_pooled_images_of_the_inspected_class(tmp_path):
    suite = _suite(tmp_path, SUITE.replace("[metrics]", "[clustering]\nmap_size = 4\n[metrics]"))
    node = _node(Planner(suite).plan(), "pixels", "spray")
    env = NodeEnv(EnvSpec(out=str(tmp_path / "out")))
    views = clustering.views(env, node)
    data = env.output(node.inputs["data"])
    index = torch.nonzero(data.train.labels == data.inspect_class).flatten()
    expected = F.adaptive_avg_pool2d(data.train.images[index], 4).reshape(len(index), 1, -1)  # RGB, 3 * 4 * 4
    assert views.shape == (len(index), 1, 3 * 4 * 4) and views.dtype == np.float64
    np.testing.assert_allclose(views, expected.numpy(), rtol=1e-6)
    # the default side is the maps' rule (~1/3 of the input side, at least 4): 16 px -> 5
    plain = clusterer_inputs.get("pixels")().views(model=None, data=data, index=index, device=torch.device("cpu"),
                                                   settings={})
    np.testing.assert_allclose(plain, F.adaptive_avg_pool2d(data.train.images[index], 5).reshape(len(index), 1, -1))


def test_input_kinds_get_the_data_without_ground_truth(tmp_path, monkeypatch):
    seen = {}
    orig = clusterer_inputs.get("pixels").views

    def spy(self, *, model, data, index, device, settings):
        seen["available"] = data.train.ground_truth_available
        with pytest.raises(Exception, match="ground truth is not available"):
            data.train.poisoned  # noqa: B018
        return orig(self, model=model, data=data, index=index, device=device, settings=settings)

    monkeypatch.setattr(clusterer_inputs.get("pixels"), "views", spy)
    node = _node(Planner(_suite(tmp_path)).plan(), "pixels", "spray")
    clustering.views(NodeEnv(EnvSpec(out=str(tmp_path / "out"))), node)
    assert seen == {"available": False}


def test_explainer_setup_gets_the_data_without_ground_truth(tmp_path, monkeypatch):
    seen = {}
    gradcam = explainers.get("gradcam")

    def setup(self, model, data, workspace):
        seen["available"] = data.train.ground_truth_available

    monkeypatch.setattr(gradcam, "setup", setup)
    node = next(n for n in Planner(_suite(tmp_path)).plan().all_nodes() if n.type == "explainer")
    assert NodeEnv(EnvSpec(out=str(tmp_path / "out"))).run(node).status == "done"
    assert seen == {"available": False}


# ------------------------------------------------------------------------------------------ planner
def test_planner_plans_the_pixels_control_and_activation_clustering(tmp_path):
    plan = Planner(_suite(tmp_path)).plan()
    got = _clusterings(plan)
    assert got == {("gradcam", "spray"), ("gradcam", "coreg"), ("pixels", "spray"),
                   ("activations", "activation-clustering")}  # coreg is multi-view: no pixels control
    metric = _node(plan, "pixels", "spray", "metric")
    assert metric.ids["family"] == "cluster-detection" and "explainer" not in metric.inputs
    pixels = _node(plan, "pixels", "spray")
    assert set(pixels.inputs) == {"data"}  # raw pixels need no trained model
    # the filter: spray only on gradcam's maps leaves the control out; naming pixels keeps it
    text = SUITE.replace("spray = { n_neighbors = 4 }", 'spray = { n_neighbors = 4, explainers = ["gradcam"] }')
    assert ("pixels", "spray") not in _clusterings(Planner(_suite(tmp_path, text, "f.toml")).plan())
    text = SUITE.replace("spray = { n_neighbors = 4 }", 'spray = { n_neighbors = 4, explainers = ["pixels"] }')
    assert {c for c in _clusterings(Planner(_suite(tmp_path, text, "g.toml")).plan()) if c[1] == "spray"} == {
        ("pixels", "spray")}
    # the switch
    off = SUITE.replace("[metrics]", "[clustering]\npixels = false\n[metrics]")
    got_off = _clusterings(Planner(_suite(tmp_path, off, "o.toml")).plan())
    assert got_off == got - {("pixels", "spray")}
    # the switch does not shape the views: the map clusterings keep their keys
    on = {n.key for n in Planner(_suite(tmp_path)).plan().all_nodes() if n.type == "clustering"}
    assert {n.key for n in Planner(_suite(tmp_path, off, "o.toml")).plan().all_nodes()
            if n.type == "clustering"} < on


def test_config_validates_input_kinds(tmp_path, monkeypatch):
    with pytest.raises(SuiteError, match="expected true"):
        _suite(tmp_path, SUITE.replace("[metrics]", '[clustering]\npixels = "yes"\n[metrics]'))
    # a metric's explainer filter takes input-kind names (data-cleaning on activations only, say)
    text = SUITE.replace("cluster-detection = {}", 'cluster-detection = { explainers = ["activations", "pixels"] }')
    plan = Planner(_suite(tmp_path, text, "m.toml")).plan()
    assert {n.ids["explainer"] for n in plan.nodes if n.ids.get("family") == "cluster-detection"} == {
        "activations", "pixels"}
    with pytest.raises(SuiteError, match="unknown name 'pixel'"):
        _suite(tmp_path, SUITE.replace("cluster-detection = {}", 'cluster-detection = { explainers = ["pixel"] }'),
               "t.toml")
    # an explainer named like an input kind would make its rows indistinguishable from the baseline's
    fake = type("PixelsExplainer", (explainers.get("gradcam"),), {"__doc__": "A clash."})
    with explainers.scratch():
        explainers.register("pixels", fake)
        with pytest.raises(SuiteError, match="explainers.pixels: 'pixels' is the name of a clusterer input kind"):
            _suite(tmp_path, SUITE.replace("gradcam = {}", "gradcam = {}\npixels = {}"), "c.toml")
    # a clusterer whose input kind is not registered
    bad = type("Bad", (clusterers.get("spray"),), {"input": "nowhere", "__doc__": "Bad."})
    with clusterers.scratch():
        clusterers.register("bad-input", bad)
        with pytest.raises(SuiteError, match="clusterers.bad-input: its input kind 'nowhere' is not registered"):
            _suite(tmp_path, SUITE.replace("[metrics]", "bad-input = {}\n[metrics]"), "b.toml")


# -------------------------------------------------------------------------------------------- scores
def test_scores_are_stored_loaded_and_checked(tmp_path, monkeypatch):
    node = _node(Planner(_suite(tmp_path)).plan(), "pixels", "spray")
    out = str(tmp_path / "out")
    env = NodeEnv(EnvSpec(out=out))
    res = env.run(node)
    assert res.status == "done", res.error
    first = env.output(node)
    assert first.scores is not None and first.scores.shape == first.labels.shape
    assert np.array_equal(first.scores > 0, first.flagged_mask)  # oriented: the flagged cluster scores high
    fresh = NodeEnv(EnvSpec(out=out))  # an empty memo: served from the cache entry
    loaded = fresh.output(node)
    assert not fresh._records  # nothing recomputed
    np.testing.assert_array_equal(loaded.scores, first.scores)
    assert loaded.scores.dtype == np.float64
    # a clusterer whose scores do not match its samples fails its node with a message that says so
    spray = clusterers.get("spray")
    real = spray._fit
    monkeypatch.setattr(spray, "_fit", lambda self, views: (*real(self, views)[:2], np.zeros(3)))
    monkeypatch.setattr(spray, "version", "bad-scores")  # a new key: not served from the cache
    node = _node(Planner(_suite(tmp_path)).plan(), "pixels", "spray")
    res = NodeEnv(EnvSpec(out=out)).run(node)
    assert res.status == "failed" and "scores of shape (3,)" in res.error and "one suspicion score" in res.error
    monkeypatch.setattr(spray, "_fit", lambda self, views: (*real(self, views)[:2],
                                                           np.full(views[0].shape[0], np.nan)))
    monkeypatch.setattr(spray, "version", "nan-scores")
    res = NodeEnv(EnvSpec(out=out)).run(_node(Planner(_suite(tmp_path)).plan(), "pixels", "spray"))
    assert res.status == "failed" and "non-finite scores" in res.error


def test_a_clusterer_without_scores_loads_none(tmp_path, monkeypatch):
    spray = clusterers.get("spray")
    real = spray._fit
    monkeypatch.setattr(spray, "_fit", lambda self, views: real(self, views)[:2])  # (labels, info) still works
    monkeypatch.setattr(spray, "version", "no-scores")
    node = _node(Planner(_suite(tmp_path)).plan(), "pixels", "spray")
    out = str(tmp_path / "out")
    assert NodeEnv(EnvSpec(out=out)).run(node).status == "done"
    assert NodeEnv(EnvSpec(out=out)).output(node).scores is None


# ------------------------------------------------------------------------------------- clean control
def test_the_clean_control_gives_each_rules_false_alarms_and_no_separability(tmp_path):
    """Issue 28: the clean control's false alarms are each flagging rule's (flag-detection); separability
    (cluster-detection, version 4) runs there too, every value missing with the reason."""
    text = SUITE.replace('name = "CH-50"\npoisoning = "CH"\nfraction = 0.5', 'name = "clean"\npoisoning = "none"')
    plan = Planner(_suite(tmp_path, text.replace("cluster-detection = {}", "cluster-detection = {}\nflag-detection = {}"))
                   ).plan()
    assert not [o for o in plan.omitted if o.ids["family"] in ("cluster-detection", "flag-detection")]
    nodes = [n for n in plan.all_nodes() if n.type == "metric" and n.ids.get("explainer") == "pixels"
             and n.ids.get("clusterer") == "spray"]
    assert {n.ids["family"] for n in nodes} == {"cluster-detection", "flag-detection"}
    for metric in nodes:
        res = NodeEnv(EnvSpec(out=str(tmp_path / "out"))).run(metric)
        assert res.status == "done", res.error
        values = {r["metric"]: r["value"] for r in res.rows}
        if metric.ids["family"] == "flag-detection":  # the false-alarm rate and the abstention are defined
            assert 0 <= values.pop("flagged-fraction") < 1 and values.pop("abstained") in (0.0, 1.0)
        assert all(v is None for v in values.values())  # undefined without poisoned images: missing, not NaN
        assert all("no poisoned sample" in r["detail"] for r in res.rows)


# ------------------------------------------------------------------------------------- plugin kind
@pytest.fixture
def brightness_plugin(monkeypatch):
    """`pip install brightness-baseline`, faked: an input kind and a clusterer on it, via the entry point."""
    module = types.ModuleType("brightness_baseline")
    seen: dict = {}

    def register() -> None:
        from hansbench.methods.clusterers._base import BaseClusterer
        from hansbench.methods.inputs import ClustererInput
        from hansbench.registry import clusterer_inputs, clusterers

        @clusterer_inputs.register("brightness", replace=True)
        class Brightness(ClustererInput):
            """Mean brightness of each image (one number): a plugin's model-free baseline input."""

            uses_model = False

            def views(self, *, model, data, index, device, settings):
                seen["ground_truth_available"] = data.train.ground_truth_available
                return data.train.images[index].mean(dim=(1, 2, 3)).reshape(-1, 1, 1).double().numpy()

        @clusterers.register("brightness-split", replace=True)
        class BrightnessSplit(BaseClusterer):
            """Brighter than the median = flagged; the score is the brightness."""

            input = "brightness"

            def _fit(self, views):
                x = views[0][:, 0]
                labels = (x > np.median(x)).astype(int)
                return labels, {}, x if self._flagged_of(labels) == 1 else -x

    module.register = register
    monkeypatch.setitem(sys.modules, "brightness_baseline", module)
    ep = EntryPoint(name="brightness-baseline", value="brightness_baseline:register", group=registry.PLUGIN_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == registry.PLUGIN_GROUP else [])
    registry.reset_for_tests()
    yield seen
    registry.clusterer_inputs.unregister("brightness")
    registry.clusterers.unregister("brightness-split")
    registry.reset_for_tests()


def test_a_plugin_input_kind_is_listed_and_run(brightness_plugin, tmp_path, capsys):
    from hansbench.bench.cli import main

    assert main(["list", "inputs"]) == 0
    listed = capsys.readouterr().out.split("inputs:\n")[1].split("\n\n")[0].splitlines()
    names = [line.split()[0] for line in listed]
    assert names == sorted(names) and {"activations", "brightness", "maps", "pixels"} <= set(names)
    assert any(line.split()[:3] == ["brightness", "Mean", "brightness"] for line in listed)
    text = SUITE.replace("activation-clustering = {}", "brightness-split = {}")
    plan = Planner(_suite(tmp_path, text)).plan()
    assert ("brightness", "brightness-split") in _clusterings(plan)
    metric = _node(plan, "brightness", "brightness-split", "metric")
    env = NodeEnv(EnvSpec(out=str(tmp_path / "out")))
    res = env.run(metric)
    assert res.status == "done", res.error
    assert brightness_plugin["ground_truth_available"] is False
    rows = {r["metric"]: r["value"] for r in res.rows}
    clustering = env.output(metric.inputs["clustering"])
    data = env.output(metric.inputs["model"].inputs["data"])
    index = maps.cluster_index(data)
    from sklearn.metrics import roc_auc_score

    truth = data.train.poisoned[index].numpy()
    assert rows["auroc"] == pytest.approx(roc_auc_score(truth, clustering.scores))
    brightness = data.train.images[index].mean(dim=(1, 2, 3)).double().numpy()
    assert np.allclose(np.abs(clustering.scores), brightness)
