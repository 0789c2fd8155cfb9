"""Typed suites: scenarios with defaults filled in once, components with their filters, the ``family`` id."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

from hansbench.bench.engine import keys
from hansbench.bench.engine.planner import Planner
from hansbench.bench.engine.runner import omitted_key
from hansbench.bench.suite.config import Component, load_suite, validate
from hansbench.datasets.scenarios import SCENARIO_DEFAULTS, SETTINGS, Scenario, make_scenario
from hansbench.methods.base import Explainer
from hansbench.metrics.base import Metric
from hansbench.registry import explainers, metrics

SUITE = """
[suite]
name = "typed"
[data]
image_size = 16
n_train = 30
n_test = 20
[[scenarios]]
poisoning = "BD"
fraction = 0.5
[[scenarios]]
name = "clean"
poisoning = "none"
fraction = 0.0
only = { metrics = ["old-dict"] }
[models.classifier]
backbone = "small-resnet"
backbone_options = { widths = [4, 8] }
epochs = 1
[explainers]
gradcam = {}
[metrics]
old-dict = { models = ["classifier"] }
model-accuracy = {}
"""


class OldDictMetric(Metric):
    """Written against the scenario dicts of before: indexes, ``get``s, ``in``, ``**`` and ``dict()``."""

    level = "model"
    values = {"v": ("", True)}
    seen: list[dict] = []

    def not_applicable(self, *, model_kind, scenario, **kw):
        OldDictMetric.seen.append({**scenario})
        assert dict(scenario) == {k: scenario[k] for k in scenario.keys()} == dict(scenario.items())
        if "only" in scenario and scenario.get("fraction") == 0.0:
            return f"{scenario['poisoning']} at {scenario.get('fraction'):g} in {scenario['name']}"
        return super().not_applicable(model_kind=model_kind, scenario=scenario, **kw)


@pytest.fixture
def old_dict_metric():
    metrics.register("old-dict", OldDictMetric)
    OldDictMetric.seen = []
    yield OldDictMetric
    metrics.unregister("old-dict")


def test_scenario_fields_are_make_scenarios_keywords_with_its_defaults():
    params = inspect.signature(make_scenario).parameters
    fields = {f.name: f for f in dataclasses.fields(Scenario)}
    assert set(SETTINGS) == set(params) - {"seed"} == set(fields) - {"only", "sweep", "written"}
    bare = Scenario(name="x")
    for k in SETTINGS[1:]:
        want = {} if k.endswith("_options") else params[k].default  # an option table's None means "no options"
        assert getattr(bare, k) == want, k


def test_defaults_are_filled_in_once_by_validate_and_written_settings_stay_as_written(tmp_path,
                                                                                      old_dict_metric):
    import tomllib

    suite = validate(tomllib.loads(SUITE))
    bd, clean = suite.scenarios
    assert isinstance(bd, Scenario) and bd.name == "BD-50"  # the poisoning's default name
    assert bd.settings() == {**SCENARIO_DEFAULTS, "image_size": 16, "n_train": 30, "n_test": 20,
                             "poisoning": "BD", "fraction": 0.5, "name": "BD-50"}
    assert bd.written == {"image_size", "n_train", "n_test", "poisoning", "fraction"}  # not "name": defaulted
    assert bd.written_settings() == {"image_size": 16, "n_train": 30, "n_test": 20, "poisoning": "BD",
                                     "fraction": 0.5, "name": "BD-50"}
    assert "only" not in bd and "only" in clean and clean["only"] == {"metrics": ("old-dict",)}
    assert "only" not in clean.settings() and "sweep" not in clean.settings()
    assert bd.runs_in("metrics", "model-accuracy") and not clean.runs_in("metrics", "model-accuracy")
    assert clean.runs_in("explainers", "gradcam")  # no explainers list: everything
    with pytest.raises(KeyError):
        bd["only"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        bd.fraction = 0.1


def test_make_scenario_gets_the_same_data_from_all_settings_and_from_the_written_ones(old_dict_metric):
    import tomllib

    bd = validate(tomllib.loads(SUITE)).scenarios[0]
    full, written = make_scenario(**bd.settings(), seed=1), make_scenario(**bd.written_settings(), seed=1)
    assert full.meta == written.meta and torch.equal(full.train.images, written.train.images)


def test_a_metric_written_against_scenario_dicts_still_gets_its_answers(tmp_path, old_dict_metric):
    p = tmp_path / "s.toml"
    p.write_text(SUITE)
    plan = Planner(load_suite(p)).plan()
    by_name = {s["name"]: s for s in old_dict_metric.seen}
    assert by_name["BD-50"] == {**SCENARIO_DEFAULTS, "image_size": 16, "n_train": 30, "n_test": 20,
                                "poisoning": "BD", "fraction": 0.5, "name": "BD-50"}  # what the merge gave
    assert by_name["clean"]["only"] == {"metrics": ("old-dict",)}
    omitted = {o.ids["scenario"]: o for o in plan.omitted if o.ids["family"] == "old-dict"}
    assert omitted["clean"].reason == "none at 0 in clean"
    assert [n.ids["scenario"] for n in plan.nodes if n.ids.get("family") == "old-dict"] == ["BD-50"]
    assert {n.ids["family"] for n in plan.nodes if n.type == "timing"} == {"timing"}
    assert not [ids for ids in [*(n.ids for n in plan.all_nodes()), *(o.ids for o in plan.omitted)] if "metric" in ids]
    assert "old-dict" in next(n for n in plan.nodes if n.type == "metric").label()  # labels name the family


def test_components_carry_their_options_and_filters(old_dict_metric):
    import tomllib

    raw = tomllib.loads(SUITE)
    raw["clusterers"] = {"spray": {"explainers": ["gradcam"], "models": ["classifier"], "n_neighbors": 3}}
    suite = validate(raw)
    spray = suite.clusterers["spray"]
    assert spray == Component("spray", {"n_neighbors": 3}, {"explainers": ("gradcam",), "models": ("classifier",)})
    assert suite.allows("clusterers", "spray", model="classifier", explainer="gradcam")
    assert not suite.allows("clusterers", "spray", explainer="pixels")
    assert not suite.allows("metrics", "old-dict", model="prototype")
    assert suite.allows("metrics", "model-accuracy", model="prototype")  # no filters
    assert suite.allows("clusterers", "not-in-the-suite", model="prototype")
    assert suite.raw["clusterers"]["spray"]["explainers"] == ["gradcam"]  # the TOML as written is kept


def test_omitted_keys_digest_family_under_its_former_name():
    ids = {"scenario": "CH-50", "seed": 0, "model": "classifier", "explainer": "e", "clusterer": "", "family": "m"}
    old = {**{k: v for k, v in ids.items() if k != "family"}, "metric": "m"}
    assert omitted_key(ids) == "n/a-" + keys.digest(old, 20) != "n/a-" + keys.digest(ids, 20)


class _FileExplainer(Explainer):
    """Names a file in its options (as a plugin's weights would be)."""

    model_kinds = ("classifier",)

    def __init__(self, table: str = ""):
        self.table = table

    def explain(self, model, x, target):
        return torch.zeros(x.shape[0], 1, *x.shape[2:])


def test_options_is_what_the_plugin_is_built_with_and_files_the_digested_copy(tmp_path, old_dict_metric):
    import tomllib

    table = tmp_path / "table.txt"
    table.write_text("a")
    explainers.register("file-explainer", _FileExplainer, replace=True)
    try:
        raw = tomllib.loads(SUITE)
        raw["explainers"] = {"file-explainer": {"table": str(table)}}
        raw["clusterers"] = {"spray": {}}
        raw["metrics"] = {"cluster-detection": {}}
        plan = Planner(validate(raw)).plan()
        exp = next(n for n in plan.all_nodes() if n.type == "explainer")
        clu = next(n for n in plan.all_nodes() if n.type == "clustering" and n.ids["explainer"] == "file-explainer")
        met = next(n for n in plan.nodes if n.type == "metric")
        assert exp.params["options"] == {"table": str(table)}  # built with the path ...
        assert exp.params["files"] == {"table": {"path": str(table), "content_sha256": keys.path_digest(table)}}
        assert set(clu.params["options"]) >= {"random_state"} and clu.params["files"] == {}
        assert met.params["options"] == met.params["files"] == {}
        assert _FileExplainer(**exp.params["options"]).table == str(table)
        table.write_text("b")  # ... and its content enters the key
        assert Planner(validate(raw)).plan().nodes[0].inputs["explainer"].key != exp.key
    finally:
        explainers.unregister("file-explainer")
