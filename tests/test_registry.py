"""Registry: lookup errors name the known entries; entry-point plugins appear without touching the repo."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

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
    registry.explainers.unregister("my-method")
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


# ----------------------------------------------------------------------------- names and broken plugins


@pytest.mark.parametrize("bad", ["My-Method", "my method", "-lead", "<script>alert(1)</script>", "a&b_%#$", "",
                                 "x" * 65, "naïve", "a/b", 3])
def test_register_refuses_names_outside_the_pattern(bad):
    r = Registry("widget")
    with pytest.raises(ValueError, match=r"invalid widget name .*lowercase letters, digits and \. _ \+ -"):
        r.register(bad, object())
    assert bad not in r.names()


@pytest.mark.parametrize("good", ["a", "my-method", "lrp-epsilon-plus-flat", "v1.2", "c++", "x_y", "0day", "x" * 64])
def test_register_accepts_pattern_names(good):
    Registry("widget").register(good, object())


def test_every_builtin_name_matches_the_pattern():
    for reg in registry.REGISTRIES.values():
        for name in reg.names():
            assert reg.pattern.fullmatch(name), (reg.kind, name)
            if reg is not registry.poisonings:  # poisonings alone keep the papers' upper-case names
                assert registry.NAME_PATTERN.fullmatch(name), (reg.kind, name)


def test_poisoning_names_may_be_upper_case_but_nothing_else_may():
    registry.Registry("p", pattern=registry.UPPER_NAME_PATTERN, rule=registry.UPPER_NAME_RULE).register("LF", object())
    with pytest.raises(ValueError, match="invalid poisoning name 'a b': use letters"):
        registry.Registry("poisoning", pattern=registry.UPPER_NAME_PATTERN,
                          rule=registry.UPPER_NAME_RULE).register("a b", object())
    with pytest.raises(ValueError, match="invalid widget name 'LF'"):
        Registry("widget").register("LF", object())


def test_every_pluggable_kind_is_a_registry_listed_by_the_cli(capsys):
    """One Registry for every kind: `hansbench list` shows each, with its built-ins."""
    from hansbench.bench.cli import main

    expected = {"explainers": "prp", "clusterers": "spray", "metrics": "cluster-detection", "datasets": "signs",
                "artifacts": "postit", "poisonings": "BD", "models": "protopnet", "backbones": "small-resnet",
                "inputs": "pixels", "flagging": "relative-size"}
    assert set(registry.REGISTRIES) == set(expected)
    assert all(isinstance(r, Registry) for r in registry.REGISTRIES.values())
    for key, builtin in expected.items():
        assert main(["list", key]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{key}:\n") and f"  {builtin} " in out, out
        assert registry.REGISTRIES[key].describe(builtin), f"{key} {builtin!r} has no description line"


def test_unknown_name_suggests_a_case_insensitive_match():
    with pytest.raises(UnknownNameError, match="Did you mean 'BD'") as err:
        registry.poisonings.get("bd")
    assert isinstance(err.value, ValueError) and "Known poisonings: BD, BD-A2O, CH, LF, LF-A2O, none." in str(err.value)


def test_model_kinds_build_models_that_carry_their_kind():
    from hansbench.models.kinds import build_model

    for name, spec in registry.model_kinds.items():
        assert spec.model_class.kind == name
        model = build_model(name, num_classes=3, mean=(0.5,) * 3, std=(0.25,) * 3,
                            backbone_options={"widths": (4, 8)})
        assert model.kind == name and isinstance(model, spec.model_class)
    assert registry.model_kinds.get("protopnet").model_class.has_prototypes
    assert not registry.model_kinds.get("classifier").model_class.has_prototypes


@pytest.fixture
def broken_plugin(monkeypatch):
    """An installed plugin whose import fails (a missing dependency)."""
    ep = EntryPoint(name="bad-import", value="no_such_module_xyz:register", group=registry.PLUGIN_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == registry.PLUGIN_GROUP else [])
    registry.reset_for_tests()
    yield "bad-import"
    registry.plugin_errors.pop("bad-import", None)
    registry.reset_for_tests()


def test_unknown_name_of_a_broken_plugin_says_why(broken_plugin):
    with pytest.raises(UnknownNameError) as err:
        registry.explainers.get("bad-import")
    msg = str(err.value)
    assert msg.startswith("unknown explainer 'bad-import' (the plugin 'bad-import' failed to load: "
                          "ModuleNotFoundError: No module named 'no_such_module_xyz').")
    assert "gradcam" in msg and "\n" not in msg
    with pytest.raises(UnknownNameError, match="Plugins that failed to load: 'bad-import' "
                                               r"\(ModuleNotFoundError: No module named 'no_such_module_xyz'\)"):
        registry.explainers.get("other-name")


def test_suite_naming_a_broken_plugin_reports_its_load_error(broken_plugin, tmp_path, capsys):
    from hansbench.bench.cli import main

    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nextends = "quick"\n[explainers]\nbad-import = {}\n')
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "explainers.bad-import: unknown explainer 'bad-import' (the plugin 'bad-import' failed to load: " \
           "ModuleNotFoundError: No module named 'no_such_module_xyz')" in err
    assert not (tmp_path / "out").exists()


def test_plugin_registering_an_invalid_name_is_reported_not_fatal(monkeypatch):
    module = types.ModuleType("badly_named_plugin")
    module.register = lambda: registry.explainers.register("Bad Name", object())
    monkeypatch.setitem(sys.modules, "badly_named_plugin", module)
    ep = EntryPoint(name="badly-named", value="badly_named_plugin:register", group=registry.PLUGIN_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep])
    registry.reset_for_tests()
    try:
        assert "gradcam" in registry.explainers.names()
        assert registry.plugin_errors["badly-named"].startswith("ValueError: invalid explainer name 'Bad Name'")
        from hansbench.bench.cli import plugin_warnings

        assert plugin_warnings() == [f"warning: plugin 'badly-named' failed to load: "
                                     f"{registry.plugin_errors['badly-named']}"]
    finally:
        registry.plugin_errors.pop("badly-named", None)
        registry.reset_for_tests()


def test_the_registry_imports_nothing_of_hansbench():
    """Everything stands on the registry (docs/architecture.md): it names the built-in packages as text for
    ``load_all`` and validates entries through their own method, never through an import of theirs."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(registry.__file__).read_text(encoding="utf-8"))
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imported if m.split(".")[0] == "hansbench"], imported


def test_an_entry_validates_itself_as_it_registers():
    """A registry with a ``validator`` calls the entry's own method (a metric's ``check_declarations``): what it
    raises stops the registration; an object without the method is refused, naming the interface to subclass."""
    r = Registry("widget", validator="check_widget", interface="my.Widget")
    seen = []

    class Good:
        @classmethod
        def check_widget(cls, name):
            seen.append((cls.name, name))

    class Bad:
        @classmethod
        def check_widget(cls, name):
            raise ValueError(f"widget {name!r}: colour 'plaid' is not a colour; use red or blue")

    assert r.register("good")(Good) is Good and seen == [("good", "good")]
    with pytest.raises(ValueError, match="not a colour"):
        r.register("bad")(Bad)
    with pytest.raises(TypeError, match=r"'loose': .* is not a subclass of my.Widget \(it has no check_widget\)"):
        r.register("loose", object())
    assert r.names() == ["good"]
    assert registry.metrics.validator == "check_declarations"  # the metrics registry's hook, provided by Metric
    from hansbench.metrics.base import Metric

    assert callable(Metric.check_declarations)


def test_no_test_reaches_into_a_registrys_private_entries():
    """Tests use the public API (register, unregister, scratch), so the registry can change how it stores entries
    without a test depending on it."""
    import re

    names = "|".join(["node_types", *(r for r in dir(registry) if isinstance(getattr(registry, r), Registry))])
    pattern = re.compile(rf"\b({names})\._entries\b")
    tests = Path(__file__).resolve().parent
    found = [f"{p.relative_to(tests)}:{i}" for p in tests.rglob("*.py") if p.name != Path(__file__).name
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not found, found
