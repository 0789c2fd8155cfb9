"""Registry: lookup errors name the known entries; entry-point plugins appear without touching the repo."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint

import pytest

from hansbench import registry
from hansbench.registry import Registry, UnknownNameError


def test_unknown_name_lists_known_and_closest():
    r = Registry("widget")
    r.register("spray", object())
    r.register("coreg", object())
    with pytest.raises(UnknownNameError) as err:
        r.get("sprya")
    msg = str(err.value)
    assert "Did you mean 'spray'" in msg and "coreg" in msg and "spray" in msg


def test_double_registration_refused():
    r = Registry("widget")
    r.register("a", object())
    with pytest.raises(ValueError, match="registered twice"):
        r.register("a", object())


def test_decorator_sets_name_and_description():
    r = Registry("widget")

    @r.register("my-thing")
    class Thing:
        """First line.

        More text."""

    assert Thing.name == "my-thing"
    assert r.describe("my-thing") == "First line."


@pytest.fixture
def fake_plugin(monkeypatch):
    """An installed third-party package, faked through importlib.metadata entry points."""
    from hansbench.methods.base import Explainer

    module = types.ModuleType("my_method_plugin")

    def register() -> None:
        import torch

        @registry.explainers.register("my-method", replace=True)
        class MyMethod(Explainer):
            """A plugin explainer: absolute input times gradient-free constant."""

            model_kinds = ("classifier", "protopnet")

            def explain(self, model, x, target):
                return x.abs().sum(1, keepdim=True).to(torch.float32)

    module.register = register
    monkeypatch.setitem(sys.modules, "my_method_plugin", module)
    ep = EntryPoint(name="my-method", value="my_method_plugin:register", group=registry.PLUGIN_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == registry.PLUGIN_GROUP else [])
    registry.reset_for_tests()
    yield "my-method"
    registry.explainers._entries.pop("my-method", None)
    registry.reset_for_tests()


def test_entry_point_plugin_is_listed(fake_plugin, capsys):
    from hansbench.bench.cli import main

    assert fake_plugin in registry.explainers.names()
    assert main(["list", "explainers"]) == 0
    assert "my-method" in capsys.readouterr().out


def test_broken_plugin_does_not_take_the_harness_down(monkeypatch):
    ep = EntryPoint(name="broken", value="no_such_module_xyz:register", group=registry.PLUGIN_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep])
    registry.reset_for_tests()
    try:
        assert "gradcam" in registry.explainers.names()
        assert "broken" in registry.plugin_errors
    finally:
        registry.plugin_errors.pop("broken", None)
        registry.reset_for_tests()
