"""Sweeps expand into scenarios named by their values, validated before any work (issue 19)."""

from __future__ import annotations

import copy

import pytest

from hansbench.bench.engine.nodes.data import data_settings
from hansbench.bench.engine.planner import Planner
from hansbench.bench.suite.config import SuiteError, load_suite, validate
from hansbench.bench.suite.files import load_raw
from hansbench.bench.suite.sweep import SWEEP_META, sweep_axes


def _suite(**sweep) -> dict:
    """The smoke suite with its scenarios replaced by one sweep."""
    raw = load_raw("smoke")
    raw = copy.deepcopy(raw)
    raw["scenarios"] = []
    raw["sweep"] = [sweep]
    return raw


def test_two_field_grid_expands_and_names_every_point():
    raw = _suite(poisoning="CH", grid={"fraction": [0.2, 0.05], "artifact_options.size": [0.2, 0.3]})
    raw["data"]["artifact_options"] = {"margin": 0.1, "size": 0.25}
    suite = validate(raw)
    names = [s["name"] for s in suite.scenarios]
    assert names == ["CH-20-size0.2", "CH-20-size0.3", "CH-5-size0.2", "CH-5-size0.3"]
    point = next(s for s in suite.scenarios if s["name"] == "CH-5-size0.3")
    assert point["fraction"] == 0.05 and point["artifact_options"]["size"] == 0.3
    assert point[SWEEP_META]["values"] == {"fraction": 0.05, "artifact_options.size": 0.3}
    assert point["artifact_options"]["margin"] == 0.1  # the option table keeps what [data] set besides the swept key
    axes = sweep_axes(suite.raw)
    by_field = {}
    for a in axes:
        by_field.setdefault(a.field, []).append(a)
    assert len(by_field["fraction"]) == 2 and len(by_field["artifact_options.size"]) == 2
    frac = next(a for a in by_field["fraction"] if a.fixed == (("artifact_options.size", 0.3),))
    assert frac.points == ((0.05, "CH-5-size0.3"), (0.2, "CH-20-size0.3"))  # ascending, not grid order
    assert frac.numeric and frac.level == 0.8
    assert frac.title == "CH: fraction (artifact_options.size = 0.3)"
    assert frac.stem == "sweep-CH-fraction-size0.3"


def test_nested_grid_table_and_string_values():
    raw = _suite(name="trig", poisoning="BD-A2O", target_class="speed limit",
                 grid={"artifact": ["postit", "badnets"], "artifact_options": {}}, fraction=0.1)
    raw["sweep"][0]["grid"].pop("artifact_options")
    suite = validate(raw)
    assert [s["name"] for s in suite.scenarios] == ["BD-A2O-10-postit", "BD-A2O-10-badnets"]
    (axis,) = sweep_axes(suite.raw)
    assert axis.sweep == "trig" and not axis.numeric and [v for v, _ in axis.points] == ["postit", "badnets"]


def test_sweep_entry_never_enters_the_data_key():
    suite = validate(_suite(poisoning="CH", grid={"fraction": [0.5]}, level=0.9))
    other = validate(_suite(poisoning="CH", grid={"fraction": [0.5]}, level=0.7))
    key = Planner(suite).node("data", suite.scenarios[0], 0).key
    assert key == Planner(other).node("data", other.scenarios[0], 0).key
    assert SWEEP_META not in data_settings(suite.scenarios[0])


@pytest.mark.parametrize(("sweep", "message"), [
    ({"poisoning": "CH", "grid": {"fractoin": [0.1]}}, "sweep[0].grid.fractoin: not a sweepable field; did you mean 'fraction'?"),
    ({"poisoning": "CH", "grid": {}}, "sweep[0].grid: expected a non-empty table"),
    ({"poisoning": "CH"}, "sweep[0].grid: expected a non-empty table"),
    ({"poisoning": "CH", "grid": {"fraction": []}}, "sweep[0].grid.fraction: expected a non-empty list"),
    ({"poisoning": "CH", "grid": {"fraction": [0.1, 1.5]}}, "sweep[0].grid.fraction[1]: 1.5; expected a share"),
    ({"poisoning": "CH", "grid": {"fraction": [0.1, 0.1]}}, "sweep[0].grid.fraction: a value is listed twice"),
    ({"poisoning": "CH", "grid": {"image_size": [8]}}, "sweep[0].grid.image_size[0]: 8; expected an integer"),
    ({"poisoning": "CH", "grid": {"poisoning": ["CH", "XX"]}}, "sweep[0].grid.poisoning[1]: 'XX'"),
    ({"poisoning": "CH", "grid": {"fraction": [0.1]}, "level": 1.5}, "sweep[0].level: 1.5"),
    ({"poisoning": "CH", "grid": {"fraction": [0.1]}, "levels": 0.5}, "sweep[0].levels: unknown key; did you mean 'level'?"),
    ({"poisoning": "CH", "fraction": 0.2, "grid": {"fraction": [0.1]}}, "sweep[0].grid.fraction: also set as a fixed"),
    ({"poisoning": "none", "grid": {"fraction": [0.0, 0.1]}}, "would both be named 'clean'"),
])
def test_bad_sweeps_are_refused_naming_the_key(sweep, message):
    with pytest.raises(SuiteError) as exc:
        validate(_suite(**sweep))
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_a_point_named_like_a_written_scenario_is_refused():
    raw = _suite(poisoning="CH", grid={"fraction": [0.2, 0.5]})
    raw["scenarios"] = [{"name": "CH-50", "poisoning": "CH", "fraction": 0.5}]
    with pytest.raises(SuiteError, match=r"sweep\[0\]: its point fraction = 0.5 is named 'CH-50', the name of "
                                         r"scenarios\[0\].*prefix"):
        validate(raw)
    raw["sweep"][0]["prefix"] = "sw"
    assert [s["name"] for s in validate(raw).scenarios] == ["CH-50", "sw-CH-20", "sw-CH-50"]


def test_two_sweeps_need_their_own_names():
    raw = _suite(poisoning="CH", grid={"fraction": [0.2]})
    raw["sweep"].append({"poisoning": "CH", "grid": {"artifact_options.size": [0.2]}})
    with pytest.raises(SuiteError, match=r"sweep\[1\].name: 'CH' names an earlier sweep"):
        validate(raw)


def test_a_scenario_may_not_carry_the_sweep_entry():
    raw = _suite(poisoning="CH", grid={"fraction": [0.2]})
    raw["scenarios"] = [{"name": "x", SWEEP_META: {}}]
    with pytest.raises(SuiteError, match=r"scenarios\[0\].sweep: not a scenario setting"):
        validate(raw)


def test_builtin_sweep_suite_expands_and_validates():
    suite = load_suite("sweep")
    names = [s["name"] for s in suite.scenarios]
    assert names == [f"CH-{p}" for p in (5, 10, 20, 33, 50, 60, 70)] + [f"BD-A2O-{p}" for p in (5, 10, 20, 30, 50)]
    assert len(suite.seeds) >= 3 and not set(suite.seeds) & set(suite.dev_seeds)
    assert {a.sweep for a in sweep_axes(suite.raw)} == {"CH", "BD-A2O"}


def test_a_points_own_error_names_its_sweep_and_values():
    raw = _suite(poisoning="CH", grid={"artifact_options.size": [0.2, 7.0]})
    with pytest.raises(SuiteError) as exc:
        validate(raw)
    msg = str(exc.value)
    assert msg.startswith("sweep[0] point artifact_options.size = 7 ('CH-100-size7').artifact_options"), msg


def test_a_sweep_naming_another_artifact_does_not_inherit_the_data_options():
    raw = _suite(poisoning="BD-A2O", target_class="speed limit", artifact="badnets", fraction=0.1,
                 grid={"artifact_options.cells": [2, 3]})
    raw["data"]["artifact_options"] = {"size": 0.3}  # a post-it option: badnets has no size
    suite = validate(raw)
    assert [s["artifact_options"] for s in suite.scenarios] == [{"cells": 2}, {"cells": 3}]
