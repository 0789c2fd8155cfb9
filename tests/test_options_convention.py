"""One options convention: every plugin kind declares options as ``__init__`` keywords with defaults.

Outside plugins written like the README's example (no base-class call, no defaults table) run end to end;
unknown options fail at validation with the accepted ones and their defaults; options inherited from a
parent suite apply only to the plugin they were written for.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from hansbench.bench.engine.execute import EnvSpec, NodeEnv
from hansbench.bench.engine.planner import Planner
from hansbench.bench.suite.config import SuiteError, load_suite
from hansbench.datasets._helpers import CleanData
from hansbench.datasets.artifacts import Artifact
from hansbench.datasets.scenarios import make_scenario
from hansbench.options import OptionError, accepted_options, check_options, resolved_options
from hansbench.registry import artifacts, datasets, explainers, poisonings

SMALL = 'image_size = 16\nn_train = 30\nn_test = 15\n'


class RedDot(Artifact):
    """A red disc of ``radius`` (a fraction of the side) at the image centre: written like the README's example."""

    def __init__(self, radius=0.08):
        self.radius = radius

    def stamp(self, images, boxes, generator):
        n, _, h, w = images.shape
        ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        r = max(self.radius * min(h, w), 1.0)
        inside = ((ys - h / 2) ** 2 + (xs - w / 2) ** 2 <= r * r).to(images.device)
        red = torch.tensor([1.0, 0.0, 0.0], device=images.device).view(1, 3, 1, 1)
        stamped = torch.where(inside, red, images)
        return stamped, (stamped != images).any(1)


class Stripes:
    """A plugin dataset that subclasses nothing: grey images whose brightness tells the class."""

    def __init__(self, classes=("a", "b", "c"), contrast=0.5):
        self.classes, self.contrast = list(classes), contrast

    def class_names(self):
        return list(self.classes)

    def load(self, image_size, n_train, n_test, seed):
        g = torch.Generator().manual_seed(seed)
        parts = []
        for n in (n_train, n_test):
            labels = torch.arange(n) % len(self.classes)
            level = 0.25 + self.contrast * labels.float() / len(self.classes)
            noise = 0.05 * torch.rand(n, 1, image_size, image_size, generator=g)
            parts.append(((level.view(-1, 1, 1, 1) + noise).clamp(0, 1).expand(-1, 3, -1, -1).contiguous(), labels))
        return CleanData(parts[0][0], parts[0][1], parts[1][0], parts[1][1], list(self.classes))


@pytest.fixture
def plugins():
    artifacts.register("red-dot", RedDot)
    datasets.register("stripes", Stripes)
    yield
    artifacts.unregister("red-dot")
    datasets.unregister("stripes")


def _suite(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _data(suite, tmp_path, i=0):
    node = Planner(suite).node("data", suite.scenarios[i], suite.seeds[0])
    return NodeEnv(EnvSpec(out=str(tmp_path / "out"))).output(node, top=True)


def test_outside_dataset_and_artifact_run_through_the_data_node(plugins, tmp_path):
    """A README-style artifact and a dataset subclassing nothing: validated, built by the data node, and the
    options they ran with (defaults filled in from the signature) recorded."""
    suite = load_suite(_suite(tmp_path, '[suite]\nextends = "quick"\n[[scenarios]]\nname = "dot"\n'
                                        'dataset = "stripes"\nartifact = "red-dot"\naffected_class = "b"\n'
                                        'dataset_options = { contrast = 0.6 }\n' + SMALL))
    sc = suite.scenarios[0]
    assert sc["dataset_options"] == {"contrast": 0.6} and "artifact_options" not in sc.written  # quick's are for postit
    data = _data(suite, tmp_path)
    assert data.meta["artifact_options"] == {"radius": 0.08}
    b = data.class_names.index("b")
    poisoned = data.train.poisoned
    assert int(poisoned.sum()) == int((data.train.labels == b).sum()) > 0  # CH-100 on class b
    dot = data.train.masks[poisoned]
    assert dot.any((1, 2)).all() and not data.train.masks[~poisoned].any()
    assert (data.train.images[poisoned][:, 0][dot] == 1.0).all()  # the red disc, where its mask says
    direct = make_scenario("stripes", artifact="red-dot", affected_class="b", dataset_options={"contrast": 0.6},
                           image_size=16, n_train=30, n_test=15, seed=suite.seeds[0])
    assert torch.equal(direct.train.images, data.train.images)
    assert repr(RedDot(radius=0.2)) == "RedDot(radius=0.2)" and RedDot().options == {"radius": 0.08}


def test_unknown_plugin_option_fails_at_validation_with_the_accepted_ones(plugins, tmp_path):
    text = '[suite]\nextends = "quick"\n[[scenarios]]\nartifact = "red-dot"\nartifact_options = { size = 0.3 }\n'
    with pytest.raises(SuiteError) as err:
        load_suite(_suite(tmp_path, text))
    assert str(err.value) == ("scenarios[0].artifact_options.size: unknown option; artifact 'red-dot' accepts "
                              "['radius'] (defaults: radius=0.08)")


def test_inherited_artifact_options_do_not_reach_another_artifact(plugins, tmp_path):
    """quick's artifact_options = { size = 0.3 } are for its post-it: a scenario naming red-dot runs without them;
    one naming the post-it keeps them."""
    suite = load_suite(_suite(tmp_path, '[suite]\nextends = "quick"\n[[scenarios]]\nname = "dot"\n'
                                        'artifact = "red-dot"\n' + SMALL + '[[scenarios]]\nname = "postit"\n'
                                        'artifact = "postit"\n' + SMALL))
    dot, postit = suite.scenarios
    assert "artifact_options" not in dot.written and dot.artifact_options == {} and postit["artifact_options"] == {"size": 0.3}
    assert dot["dataset_options"] == postit["dataset_options"] == {"octagons": 0.4, "scale": [0.38, 0.46]}
    data = _data(suite, tmp_path)
    assert data.artifact == "red-dot" and data.meta["artifact_options"] == {"radius": 0.08}
    assert data.train.masks[data.train.poisoned].any((1, 2)).all()


def test_a_parents_data_options_apply_only_to_its_plugin(plugins, tmp_path):
    """A suite whose [data] names another artifact drops the parent's artifact_options (they are not merged into
    its own); one that keeps the artifact merges them."""
    dot = load_suite(_suite(tmp_path, '[suite]\nextends = "quick"\n[data]\nartifact = "red-dot"\n'
                                      'artifact_options = { radius = 0.2 }\n'))
    assert dot.raw["data"]["artifact_options"] == {"radius": 0.2}
    assert all(sc["artifact_options"] == {"radius": 0.2} for sc in dot.scenarios)
    same = load_suite(_suite(tmp_path, '[suite]\nextends = "quick"\n[data]\nartifact = "postit"\n'
                                       'artifact_options = { jitter = 0.0 }\n', "same.toml"))
    assert same.raw["data"]["artifact_options"] == {"size": 0.3, "jitter": 0.0}


@pytest.mark.parametrize("where, expected", [
    ("parent", "scenarios[0].artifact_options.sise (inherited from [data] of suite 'parent.toml'): unknown option; "
               "artifact 'red-dot' accepts ['radius'] (defaults: radius=0.08)"),
    ("data", "scenarios[0].artifact_options.sise (from [data]): unknown option; artifact 'red-dot' accepts "
             "['radius'] (defaults: radius=0.08)"),
    ("scenario", "scenarios[0].artifact_options.sise: unknown option; artifact 'red-dot' accepts ['radius'] "
                 "(defaults: radius=0.08)"),
])
def test_option_errors_say_where_the_options_were_written(plugins, tmp_path, where, expected):
    data = '[data]\nartifact = "red-dot"\nartifact_options = { sise = 0.1 }\n'
    scenario = '[[scenarios]]\nname = "dot"\n'
    if where == "parent":
        _suite(tmp_path, '[suite]\nextends = "quick"\n' + data, "parent.toml")
        text = '[suite]\nextends = "parent.toml"\n' + scenario
    elif where == "data":
        text = '[suite]\nextends = "quick"\n' + data + scenario
    else:
        text = '[suite]\nextends = "quick"\n' + scenario + 'artifact = "red-dot"\nartifact_options = { sise = 0.1 }\n'
    with pytest.raises(SuiteError) as err:
        load_suite(_suite(tmp_path, text))
    assert str(err.value) == expected


def test_one_checker_for_every_kind(tmp_path):
    """Explainers and datasets are refused by the same checker, with the same message: the accepted options
    and their defaults, as the signature (read independently here) gives them."""
    params = list(inspect.signature(explainers.get("integrated-gradients").__init__).parameters.values())[1:]
    shown = ", ".join(f"{p.name}={p.default!r}" for p in params)
    with pytest.raises(SuiteError) as err:
        load_suite(_suite(tmp_path, '[suite]\nextends = "quick"\n[explainers]\nintegrated-gradients = { stepz = 3 }\n'))
    assert str(err.value) == (f"explainers.integrated-gradients.stepz: unknown option; explainers.integrated-gradients "
                              f"accepts {[p.name for p in params]} (defaults: {shown})")
    with pytest.raises(SuiteError, match=r"^scenarios\[0\]\.dataset_options\.colour: unknown option; dataset 'digits' "
                                         r"accepts \['background'\] \(defaults: background='black'\)$"):
        load_suite(_suite(tmp_path, '[suite]\nextends = "quick"\n[[scenarios]]\ndataset = "digits"\naffected_class = "7"\n'
                                    'dataset_options = { colour = true }\n', "d.toml"))


def test_options_are_read_from_the_signature():
    class Opts:
        def __init__(self, a=1, b=(2, 3), *, c="x"):
            pass

    class Plain:
        pass

    class Anything:
        def __init__(self, **options):
            pass

    assert accepted_options(Opts) == {"a": 1, "b": (2, 3), "c": "x"}
    assert list(resolved_options(Opts, {"c": "y", "a": 5})) == ["a", "b", "c"]  # signature order
    assert resolved_options(Opts, {"c": "y"}) == {"a": 1, "b": (2, 3), "c": "y"}
    assert accepted_options(Plain) == {} and accepted_options(Anything) is None
    assert check_options(Anything, {"z": 1}, what="x") == {"z": 1}  # it checks its own options
    with pytest.raises(OptionError, match=r"^z: unknown option; plain accepts no options$") as err:
        check_options(Plain, {"z": 1}, what="plain")
    assert err.value.key == "z" and isinstance(err.value, TypeError)
    assert accepted_options(lambda width=8: None) == {"width": 8}  # factories (backbones) too


# The defaults tables of the built-ins before their options became __init__ keywords: the options they run with
# (run metadata, artifact insertion's rebuilt artifact) must not change.
OLD_DEFAULTS = {
    ("artifacts", "postit"): {"size": 0.18, "min_px": 3, "margin": 0.08, "jitter": 0.1, "colour": (1.0, 0.88, 0.12)},
    ("artifacts", "watermark"): {"text": "PHOTO", "height": 0.16, "alpha": 0.55, "corner": "bottom-right",
                                 "colour": (1.0, 1.0, 1.0)},
    ("artifacts", "badnets"): {"size": 0.1, "cells": 3, "corner": "bottom-right", "margin": 1},
    ("artifacts", "blend"): {"alpha": 0.1, "seed": 0, "tol": 1 / 255},
    ("datasets", "signs"): {"scale": (0.30, 0.46), "rotation": 12.0, "distractors": 0.4, "noise": 0.05,
                            "octagons": 0.5, "octagon_lettering": "scrambled"},
    ("datasets", "digits"): {"background": "black"},
}


@pytest.mark.parametrize("kind, name", list(OLD_DEFAULTS))
def test_builtin_options_are_the_old_defaults(kind, name):
    registry = artifacts if kind == "artifacts" else datasets
    cls = registry.get(name)
    assert resolved_options(cls) == OLD_DEFAULTS[kind, name] == cls().options
    assert list(cls().options) == list(OLD_DEFAULTS[kind, name])  # the same order, so the same repr
    changed = dict(OLD_DEFAULTS[kind, name])
    key = next(iter(changed))
    obj = cls(**{key: changed[key]})
    assert obj.options == changed and repr(obj).startswith(f"{cls.__name__}({key}=")


def test_poisoning_rule_is_built_once_per_scenario(monkeypatch):
    s = make_scenario(poisoning="BD", fraction=0.5, image_size=16, n_train=30, n_test=15)
    get, calls = poisonings.get, []
    monkeypatch.setattr(poisonings, "get", lambda name: calls.append(name) or get(name))
    rule = s.poisoning_rule
    _ = s.inspect_class, s.source_classes, s.explain_targets("artifact_test"), s.explain_rule("train")
    assert s.poisoning_rule is rule and calls == ["BD"]
    s.poisoning = "CH"  # a changed name is looked up again
    assert type(s.poisoning_rule).__name__ == "CleverHans" and calls == ["BD", "CH"]


def test_the_docs_dataset_and_artifact_examples_run(tmp_path):
    """docs/plugins.md's artifact and dataset examples, as written there: validated in a suite and built."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "def register" in b]
    assert len(blocks) == 2
    try:
        for block in blocks:
            namespace: dict = {}
            exec(compile(block, "docs/plugins.md", "exec"), namespace)
            namespace["register"]()
        suite = load_suite(_suite(tmp_path, '[suite]\nextends = "quick"\n[[scenarios]]\nname = "docs"\n'
                                            'dataset = "grey-levels"\nartifact = "red-dot"\naffected_class = "mid"\n'
                                            'artifact_options = { radius = 0.2 }\n' + SMALL))
        data = _data(suite, tmp_path)
        assert data.class_names == ["dark", "mid", "light"] and data.meta["artifact_options"] == {"radius": 0.2}
        assert data.train.masks[data.train.poisoned].any((1, 2)).all()
        with pytest.raises(SuiteError, match=r"artifact_options: red-dot: radius must be in \(0, 0\.5\]"):
            load_suite(_suite(tmp_path, '[suite]\nextends = "quick"\n[[scenarios]]\nartifact = "red-dot"\n'
                                        'artifact_options = { radius = 2.0 }\n', "bad.toml"))
    finally:
        artifacts.unregister("red-dot")
        datasets.unregister("grey-levels")
