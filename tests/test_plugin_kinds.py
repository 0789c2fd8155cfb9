"""An outside package adds a poisoning (label flip) and a backbone through the entry point alone:
both are listed, validate in a suite, and are used by make_scenario / build_model and the planner."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint

import pytest
import torch
from torch import nn

from hansbench import registry

KW = dict(image_size=24, n_train=60, n_test=30)
STOP, SPEED = 2, 1


@pytest.fixture
def outside_package(monkeypatch):
    """`pip install label-flip-attack`, faked: a module whose register() adds a poisoning and a backbone."""
    module = types.ModuleType("label_flip_attack")

    def register() -> None:
        from hansbench.datasets.base import Split
        from hansbench.datasets.poisonings import Poisoning
        from hansbench.models.backbones import FeatureBackbone
        from hansbench.registry import backbones, poisonings

        @poisonings.register("LFX")
        class LabelFlip(Poisoning):
            """Label flip: a fraction of the affected class relabelled to target_class, no artifact stamped."""

            needs_target = True

            def poison(self, clean, *, affected, target, fraction, artifact, seed) -> Split:
                g = torch.Generator().manual_seed(seed)
                chosen = self.select(torch.nonzero(clean.train_labels == affected).flatten(), fraction, g)
                labels = clean.train_labels.clone()
                labels[chosen] = target
                poisoned = torch.zeros(len(labels), dtype=torch.bool)
                poisoned[chosen] = True
                n, _, h, w = clean.train_images.shape
                return Split(clean.train_images.clone(), labels, clean.train_labels.clone(), poisoned,
                             torch.zeros(n, h, w, dtype=torch.bool))

            def inspect_class(self, data) -> int:
                return data.target_class

            def inspected_class_holds(self, fraction: float) -> tuple[bool, bool]:
                return fraction > 0, True

        @backbones.register("tiny-cnn", replace=True)
        def tiny_cnn(width: int = 6) -> FeatureBackbone:
            """Two convolutions (a plugin's backbone)."""
            layers = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU())
            return FeatureBackbone(layers, width)

    module.register = register
    monkeypatch.setitem(sys.modules, "label_flip_attack", module)
    ep = EntryPoint(name="label-flip-attack", value="label_flip_attack:register", group=registry.PLUGIN_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == registry.PLUGIN_GROUP else [])
    registry.reset_for_tests()
    yield
    registry.poisonings.unregister("LFX")
    registry.backbones.unregister("tiny-cnn")
    registry.reset_for_tests()


def test_plugin_poisoning_and_backbone_are_listed(outside_package, capsys):
    from hansbench.bench.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    poisonings = out.split("poisonings:\n")[1].split("\n\n")[0]
    backbones = out.split("backbones:\n")[1].split("\n\n")[0]
    assert any(line.split()[:3] == ["LFX", "Label", "flip:"] for line in poisonings.splitlines())
    assert any(line.split()[:3] == ["tiny-cnn", "Two", "convolutions"] for line in backbones.splitlines())
    assert not registry.plugin_errors


def test_plugin_poisoning_and_backbone_validate_in_a_suite(outside_package, tmp_path):
    from hansbench.bench.engine.planner import Planner
    from hansbench.bench.suite.config import SuiteError, load_suite

    p = tmp_path / "s.toml"
    body = ('[suite]\nextends = "quick"\nreplace = ["models", "metrics"]\n'
            '[[scenarios]]\npoisoning = "LFX"\nfraction = 0.2\n'
            '[models.classifier]\nbackbone = "tiny-cnn"\nbackbone_options = { width = 4 }\nepochs = 1\n'
            '[metrics]\ncluster-detection = {}\n')
    p.write_text(body)
    suite = load_suite(p)
    assert suite.scenarios[0]["name"] == "LFX-20"  # the default name comes from the poisoning class
    plan = Planner(suite).plan()
    assert any(n.ids.get("family") == "cluster-detection" for n in plan.nodes)  # LF's inspected class mixes
    p.write_text(body.replace("width = 4", "depth = 4"))
    with pytest.raises(SuiteError, match=r"backbone_options.depth: unknown option; .* accepts \['width'\]"):
        load_suite(p)
    p.write_text(body.replace('poisoning = "LFX"', 'poisoning = "LFX"\naffected_class = "speed limit"'))
    with pytest.raises(SuiteError, match="equals affected_class; poisoning 'LFX' relabels"):
        load_suite(p)  # needs_target is honoured for a plugin too


def test_make_scenario_and_build_model_use_the_plugins(outside_package):
    from hansbench.datasets.scenarios import make_scenario
    from hansbench.models.kinds import build_model

    s = make_scenario(poisoning="LFX", fraction=0.5, **KW)
    clean = make_scenario(poisoning="none", **KW)
    train = s.train
    assert s.name == "LFX-50" and s.poisoning == "LFX" and s.target_class == SPEED
    assert torch.equal(train.images, clean.train.images), "a label flip stamps nothing"
    n_stop = int((train.true_labels == STOP).sum())
    assert int(train.poisoned.sum()) == round(0.5 * n_stop)
    assert (train.labels[train.poisoned] == SPEED).all() and torch.equal(train.labels != train.true_labels,
                                                                         train.poisoned)
    assert s.inspect_class == SPEED
    at = s.artifact_test
    aff = at.of_class(STOP, by="true_labels")
    assert torch.equal(s.explain_targets("artifact_test", aff), at.labels[aff])  # the base rule: their label
    model = build_model("classifier", num_classes=5, mean=s.mean, std=s.std, backbone="tiny-cnn",
                        backbone_options={"width": 4})
    assert model(torch.zeros(2, 3, 24, 24)).shape == (2, 5) and model.backbone.out_channels == 4
