"""A metric's presentation is one validated structure, built when it registers: a plugin metric with a bad
declaration fails at registration, in one line naming the metric, the attribute and what is allowed."""

from __future__ import annotations

import dataclasses

import pytest

from hansbench.metrics.base import Metric
from hansbench.metrics.presentation import SHAPES, Presentation, PresentationError, declare
from hansbench.registry import Registry, _check_metric, metrics


def _metric(**attrs) -> type:
    body = {"__doc__": "Plugged: how plugged in a map is.", "level": "explainer",
            "values": {"plug": ("", True), "n": ("", True)}, **attrs}
    return type("Plugged", (Metric,), body)


def _registry() -> Registry:  # the metrics registry's check, on a registry of its own (the real one stays clean)
    return Registry("metric", on_register=_check_metric)


def test_a_good_plugin_registers_with_its_presentation_filled_in():
    cls = _registry().register("plugged")(_metric(headline=["plug"], undirected=("n",), column_detail="fraction"))
    p = declare(cls, "plugged")
    assert p == Presentation("plugged", "plugged", "explainer", ("plug",), False, "random", True,
                             "Plugged: how plugged in a map is.", (), "fraction", {}, (), {}, ("n",))
    assert declare(_metric(level="clustering"), "x").shape == "detection"  # table_shape "" follows the level
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.shape = "model"


@pytest.mark.parametrize("attrs, attr, allowed", [
    ({"table_shape": "grid"}, "table_shape", ", ".join(SHAPES)),
    ({"headline": ("plug", "plgu")}, "headline", "declared: plug, n"),
    ({"headline": "plug"}, "headline", "tuple"),  # a bare string, not a tuple of names
    ({"undirected": ("count",)}, "undirected", "declared: plug, n"),
    ({"gates": {"took": "poisoning did not take"}}, "gates", "declared: plug, n"),
    ({"marks": {"plug": 1}}, "marks", "str -> str"),
    ({"label_free": ("f1",)}, "label_free", "declared: plug, n"),
    ({"label_matched": ("acc",)}, "label_matched", "declared: plug, n"),
    ({"control": ("flagged",)}, "control", "declared: plug, n"),
    ({"effect": ("asr",)}, "effect", "declared: plug, n"),
    ({"level": "image"}, "level", "explainer, clustering, model"),
    ({"values": {"plug": ("", "yes")}}, "values", "(unit: str, higher_is_better: bool)"),
    ({"values": {}}, "values", "declares no values"),
    ({"ranked": "no"}, "ranked", "True or False"),
])
def test_a_bad_declaration_fails_at_registration_in_one_line(attrs, attr, allowed):
    reg = _registry()
    with pytest.raises(PresentationError) as err:
        reg.register("bad-plugin")(_metric(**attrs))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"metric 'bad-plugin': {attr} ") and allowed in msg, msg
    assert "bad-plugin" not in reg._entries  # not registered


def test_a_class_that_is_no_metric_is_refused():
    with pytest.raises(PresentationError, match="not a subclass of hansbench.metrics.base.Metric"):
        _registry().register("not-a-metric")(type("Loose", (), {"values": {"v": ("", True)}}))


def test_the_shipped_registry_validates_every_builtin_at_registration():
    from hansbench.metrics import presentation as pres

    for name in metrics.names():
        assert (metrics.get(name), name) in pres._DECLARED, name  # declared by the registry's hook, not later
    assert declare(metrics.get("roar"), "roar").column_detail == "fraction"
