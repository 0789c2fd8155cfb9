"""A metric's presentation is one declared structure (``presentation = Shows(...)``), shared by the metrics that share
a table and validated once, when the metric registers: a plugin metric with a bad declaration fails at registration,
in one line naming the metric, the attribute and what is allowed."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

from hansbench.metrics.base import Metric
from hansbench.metrics.presentation import (
    EXPLAINERS,
    SHAPES,
    Presentation,
    PresentationError,
    Shows,
    declare,
    presentation_of,
)
from hansbench.registry import Registry, metrics


def _metric(presentation: Shows | None = None, **attrs) -> type:
    body = {"__doc__": "Plugged: how plugged in a map is.", "level": "explainer",
            "values": {"plug": ("", True), "n": ("", True)}, **attrs}
    if presentation is not None:
        body["presentation"] = presentation
    return type("Plugged", (Metric,), body)


def _registry() -> Registry:  # the metrics registry's check, on a registry of its own (the real one stays clean)
    return Registry(metrics.kind, validator=metrics.validator, interface=metrics.interface)


def test_a_good_plugin_registers_with_its_presentation_filled_in():
    shows = Shows(headline=["plug"], undirected=("n",), column_detail="fraction")
    cls = _registry().register("plugged")(_metric(shows))
    p = declare(cls, "plugged")
    assert p == Presentation("plugged", "plugged", "explainer", ("plug",), False, "random", True,
                             "Plugged: how plugged in a map is.", (), "fraction", {}, (), {}, ("n",))
    assert declare(_metric(level="clustering"), "x").shape == "detection"  # shape "" follows the level
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.shape = "model"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cls.presentation.headline = ("n",)


def test_the_declaration_has_the_fields_the_report_reads():
    """``Shows`` declares exactly the fields of ``Presentation`` after ``family``, in order: nothing the report reads
    is left undeclarable, nothing declared is dropped."""
    assert [f.name for f in dataclasses.fields(Shows)] == [f.name for f in dataclasses.fields(Presentation)][1:]


def test_metrics_that_share_a_table_share_one_declared_object():
    shared = Shows(table="together", shape="stages", undirected=("n",))
    a = _registry().register("first")(_metric(shared))
    b = _registry().register("second")(_metric(dataclasses.replace(shared, headline=("plug",))))
    pa, pb = presentation_of(a, "first"), presentation_of(b, "second")
    assert (pa.table, pa.shape, pa.undirected) == (pb.table, pb.shape, pb.undirected) == ("together", "stages", ("n",))
    assert (pa.headline, pb.headline) == ((), ("plug",))
    explainer_tables = {n for n in metrics.names() if metrics.get(n).presentation.table == EXPLAINERS.table}
    assert {"relevance-ordering", "roar", "artifact-localisation"} <= explainer_tables  # built-ins derive from one
    cleaning, baselines = (metrics.get(n).presentation for n in ("data-cleaning", "data-cleaning-baselines"))
    assert baselines == dataclasses.replace(cleaning, headline=(*cleaning.headline, "oracle-restores"))  # one table


@pytest.mark.parametrize("shows, attr, allowed", [
    ({"shape": "grid"}, "presentation.shape", ", ".join(SHAPES)),
    ({"headline": ("plug", "plgu")}, "presentation.headline", "declared: plug, n"),
    ({"headline": "plug"}, "presentation.headline", "tuple"),  # a bare string, not a tuple of names
    ({"undirected": ("count",)}, "presentation.undirected", "declared: plug, n"),
    ({"gates": {"took": "poisoning did not take"}}, "presentation.gates", "declared: plug, n"),
    ({"marks": {"plug": 1}}, "presentation.marks", "str -> str"),
    ({"label_free": ("f1",)}, "presentation.label_free", "declared: plug, n"),
    ({"label_matched": ("acc",)}, "presentation.label_matched", "declared: plug, n"),
    ({"control": ("flagged",)}, "presentation.control", "declared: plug, n"),
    ({"effect": ("asr",)}, "presentation.effect", "declared: plug, n"),
    ({"ranked": "no"}, "presentation.ranked", "True or False"),
    ({"table": 3}, "presentation.table", "not a string"),
    ({"stages": "before"}, "presentation.stages", "tuple"),
])
def test_a_bad_declaration_fails_at_registration_in_one_line(shows, attr, allowed):
    _fails_in_one_line(_metric(Shows(**shows)), attr, allowed)


@pytest.mark.parametrize("attrs, attr, allowed", [
    ({"level": "image"}, "level", "explainer, clustering, flagging, model"),
    ({"values": {"plug": ("", "yes")}}, "values", "(unit: str, higher_is_better: bool)"),
    ({"values": {}}, "values", "declares no values"),
    ({"presentation": {"table": "mine"}}, "presentation", "not a Shows; declare presentation = Shows("),
])
def test_bad_values_a_bad_level_or_no_shows_fail_at_registration_in_one_line(attrs, attr, allowed):
    _fails_in_one_line(_metric(**attrs), attr, allowed)


def _fails_in_one_line(cls: type, attr: str, allowed: str) -> None:
    reg = _registry()
    with pytest.raises(PresentationError) as err:
        reg.register("bad-plugin")(cls)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"metric 'bad-plugin': {attr} ") and allowed in msg, msg
    assert "bad-plugin" not in reg  # not registered


def test_a_class_that_is_no_metric_is_refused():
    reg = _registry()
    with pytest.raises(TypeError, match="not a subclass of hansbench.metrics.base.Metric"):
        reg.register("not-a-metric")(type("Loose", (), {"values": {"v": ("", True)}}))
    assert "not-a-metric" not in reg
    with pytest.raises(PresentationError, match="not a subclass of hansbench.metrics.base.Metric"):
        declare(type("Loose", (), {"check_declarations": classmethod(lambda cls, name: None)}), "loose")


def test_a_plugin_with_the_old_class_attributes_still_registers_and_is_told_what_to_write():
    """Deprecated, not refused: the pre-``Shows`` attributes give the same presentation, with a one-line warning
    that spells out the declaration to write instead."""
    old = _metric(table="mine", table_shape="stages", headline=("plug",), undirected=("n",))
    new = _metric(Shows(table="mine", shape="stages", headline=("plug",), undirected=("n",)))
    with pytest.warns(DeprecationWarning) as caught:
        _registry().register("old-style")(old)
    (warning,) = caught
    msg = str(warning.message)
    assert "\n" not in msg and msg.startswith("metric 'old-style': the class attributes table, table_shape, ")
    assert "presentation = Shows(table='mine', shape='stages', headline=('plug',), undirected=('n',))" in msg, msg
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new declaration warns about nothing
        assert presentation_of(old, "old-style") == declare(new, "old-style")
    with pytest.warns(DeprecationWarning), pytest.raises(PresentationError, match="presentation.shape 'grid'"):
        _registry().register("old-bad")(_metric(table_shape="grid"))  # old attributes are validated like new ones


def test_a_subclass_derives_its_presentation_from_its_base():
    base = _metric(Shows(table="mine", ranked=False))
    sub = type("Sub", (base,), {"presentation": dataclasses.replace(base.presentation, headline=("n",))})
    p = _registry().register("sub")(sub) and presentation_of(sub, "sub")
    assert (p.table, p.ranked, p.headline) == ("mine", False, ("n",))


def test_the_shipped_registry_validates_every_builtin_at_registration():
    from hansbench.metrics import presentation as pres

    for name in metrics.names():
        assert (metrics.get(name), name) in pres._DECLARED, name  # declared by the registry's hook, not later
    assert declare(metrics.get("roar"), "roar").column_detail == "fraction"


def test_the_docs_metric_example_registers_and_scores(monkeypatch):
    """docs/plugins.md's metric, as written there: it joins the shared explainer table with its own headline, and
    its rows keep the contract (a share in [0, 1] of the relevance on the artifact's pixels)."""
    import re
    from pathlib import Path
    from types import SimpleNamespace

    import torch

    from hansbench.bench.engine.checks import check_rows

    text = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "@metrics.register" in b]
    from hansbench import registry

    fresh = _registry()
    monkeypatch.setattr(registry, "metrics", fresh)  # the block's import gets a registry of its own; the real one stays
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the documented way is not deprecated
        exec(compile(block, "docs/plugins.md", "exec"), namespace)
    cls = fresh.get("artifact-share")
    p = presentation_of(cls, "artifact-share")
    assert (p.table, p.shape, p.headline) == ("explainers", "explainer", ("artifact-share",))
    assert p.undirected == ("n-images",)
    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[:, :2] = True
    maps = torch.zeros(3, 2, 4, 4)
    maps[:, :, :2] = 1.0  # all positive relevance on the artifact
    maps[0, :, 2:] = 1.0  # image 0: half of it
    data = SimpleNamespace(artifact_test=SimpleNamespace(masks=masks), explain_targets=lambda split: torch.zeros(3))
    rows = cls().evaluate(SimpleNamespace(data=data, explain=lambda split, target: maps))
    assert check_rows(rows, "artifact-share") is rows
    assert [(r["metric"], r["value"]) for r in rows] == [("artifact-share", pytest.approx((0.5 + 1 + 1) / 3)),
                                                         ("n-images", 3.0)]
    assert "artifact-share" not in metrics
