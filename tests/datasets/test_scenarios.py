"""Poisoning scenarios: CH-x / BD-x stamp and relabel exactly what they say, with ground truth."""

from __future__ import annotations

import math

import pytest
import torch

from hansbench.datasets.base import ScenarioData
from hansbench.datasets.scenarios import ScenarioError, make_scenario
from hansbench.registry import UnknownNameError, datasets

KW = dict(image_size=24, n_train=60, n_test=30)
STOP, SPEED = 2, 1


@pytest.fixture(scope="module")
def clean():
    return datasets.get("signs")().load(24, 60, 30, 0)


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.5, 1.0])
def test_ch_stamps_exactly_round_fraction_of_affected_train_images(clean, fraction):
    s = make_scenario(poisoning="CH", fraction=fraction, **KW)
    assert isinstance(s, ScenarioData) and s.target_class is None and s.inspect_class == STOP
    n_aff = int((clean.train_labels == STOP).sum())
    train = s.train
    assert int(train.poisoned.sum()) == round(fraction * n_aff)
    assert (train.true_labels[train.poisoned] == STOP).all()
    assert torch.equal(train.labels, clean.train_labels) and torch.equal(train.true_labels, clean.train_labels)
    changed = (train.images != clean.train_images).any(1)  # [N, H, W]
    assert torch.equal(changed, train.masks), "masks are exactly the changed pixels"
    assert not changed[~train.poisoned].any(), "nothing else changed"
    assert train.masks[train.poisoned].flatten(1).any(1).all()


@pytest.mark.parametrize("fraction", [0.15, 0.5])
def test_bd_relabels_exactly_the_stamped_images_to_the_target(clean, fraction):
    s = make_scenario(poisoning="BD", fraction=fraction, **KW)
    train = s.train
    n_aff = int((clean.train_labels == STOP).sum())
    assert int(train.poisoned.sum()) == round(fraction * n_aff)
    assert s.target_class == SPEED and s.affected_class == STOP and s.inspect_class == SPEED
    relabelled = train.labels != train.true_labels
    assert torch.equal(relabelled, train.poisoned)
    assert (train.labels[train.poisoned] == SPEED).all()
    assert torch.equal(train.true_labels, clean.train_labels)
    assert torch.equal((train.images != clean.train_images).any(1), train.masks)


@pytest.mark.parametrize("poisoning", ["CH", "BD", "none"])
def test_test_sets(clean, poisoning):
    s = make_scenario(poisoning=poisoning, fraction=0.5, **KW)
    at, ct = s.artifact_test, s.clean_test
    assert torch.equal(at.poisoned, clean.test_labels == STOP), "artifact on 100 % of affected test images only"
    assert torch.equal(at.labels, clean.test_labels) and torch.equal(at.true_labels, clean.test_labels)
    assert not ct.poisoned.any() and not ct.masks.any()
    assert torch.equal(ct.images, clean.test_images)
    assert torch.equal((at.images != ct.images).any(1), at.masks)
    assert set(at.labels.tolist()) == set(ct.labels.tolist()) == set(range(5)), "all classes in both test sets"


def test_none_is_clean_and_names_default(clean):
    s = make_scenario(poisoning="none", **KW)
    assert not s.train.poisoned.any() and torch.equal(s.train.images, clean.train_images)
    assert s.name == "clean"
    assert make_scenario(poisoning="CH", fraction=0.5, **KW).name == "CH-50"
    assert make_scenario(poisoning="BD", fraction=0.15, **KW).name == "BD-15"
    assert make_scenario(poisoning="CH", fraction=0.2, name="mine", **KW).name == "mine"
    assert make_scenario(poisoning="CH", fraction=0.125, **KW).name == "CH-12.5"


def test_default_scenario_names_have_one_source(tmp_path):
    """make_scenario and suite validation name unnamed scenarios the same way (the poisoning decides)."""
    from hansbench.bench.suite.config import load_suite
    from hansbench.datasets.poisonings import default_scenario_name

    p = tmp_path / "s.toml"
    p.write_text('[suite]\nextends = "quick"\n[[scenarios]]\npoisoning = "none"\n'
                 '[[scenarios]]\npoisoning = "CH"\nfraction = 0.125\n'
                 '[[scenarios]]\npoisoning = "BD"\nfraction = 0.15\n')
    names = [s["name"] for s in load_suite(p).scenarios]
    assert names == ["clean", "CH-12.5", "BD-15"]
    assert names == [default_scenario_name(*a) for a in (("none", 1.0), ("CH", 0.125), ("BD", 0.15))]


def test_scenario_defaults_are_make_scenarios_signature():
    """SCENARIO_DEFAULTS (suites, planner keys) are read from make_scenario's signature: every scenario
    setting, none of the call-only ones (seed, name), the option tables as empty tables."""
    import inspect

    from hansbench.datasets.scenarios import SCENARIO_DEFAULTS

    params = inspect.signature(make_scenario).parameters
    assert set(SCENARIO_DEFAULTS) == set(params) - {"seed", "name"}
    assert SCENARIO_DEFAULTS["dataset_options"] == {} and SCENARIO_DEFAULTS["artifact_options"] == {}
    assert SCENARIO_DEFAULTS["affected_class"] == "stop" and SCENARIO_DEFAULTS["target_class"] == "speed limit"
    assert {k: SCENARIO_DEFAULTS[k] for k in ("dataset", "poisoning", "fraction", "artifact", "image_size")} == \
        {"dataset": "signs", "poisoning": "CH", "fraction": 1.0, "artifact": "postit", "image_size": 32}


def test_mean_std_are_the_clean_training_statistics(clean):
    s = make_scenario(poisoning="CH", fraction=1.0, **KW)
    assert torch.allclose(torch.tensor(s.mean), clean.train_images.mean((0, 2, 3)))
    assert torch.allclose(torch.tensor(s.std), clean.train_images.std((0, 2, 3)))
    assert len(s.mean) == len(s.std) == 3


def test_deterministic_from_seed():
    a = make_scenario(poisoning="CH", fraction=0.5, seed=4, **KW)
    b = make_scenario(poisoning="CH", fraction=0.5, seed=4, **KW)
    c = make_scenario(poisoning="CH", fraction=0.5, seed=5, **KW)
    for split in ("train", "artifact_test", "clean_test"):
        for field in ("images", "labels", "poisoned", "masks"):
            assert torch.equal(getattr(getattr(a, split), field), getattr(getattr(b, split), field))
    assert not torch.equal(a.train.images, c.train.images)
    assert not torch.equal(a.train.poisoned, c.train.poisoned) or not torch.equal(a.train.masks, c.train.masks)


def test_classes_by_name_or_index_and_other_datasets():
    by_index = make_scenario(poisoning="BD", fraction=0.5, affected_class=STOP, target_class=SPEED, **KW)
    by_name = make_scenario(poisoning="BD", fraction=0.5, **KW)
    assert torch.equal(by_index.train.labels, by_name.train.labels)
    s = make_scenario("digits", poisoning="BD", fraction=0.5, artifact="badnets", affected_class="7",
                      target_class="1", image_size=16, n_train=200, n_test=50)
    assert s.class_names[s.affected_class] == "7" and s.class_names[s.target_class] == "1"
    n7 = int((s.train.true_labels == 7).sum())
    assert int(s.train.poisoned.sum()) == round(0.5 * n7)
    assert (s.train.labels[s.train.poisoned] == 1).all()
    assert s.meta["artifact_options"]["size"] == 0.1 and s.artifact == "badnets"


def test_options_reach_the_dataset_and_artifact(clean):
    big = make_scenario(poisoning="CH", fraction=1.0, artifact_options={"size": 0.3}, **KW)
    small = make_scenario(poisoning="CH", fraction=1.0, artifact_options={"size": 0.1}, **KW)
    assert big.train.masks.sum() > small.train.masks.sum()
    with pytest.raises(ScenarioError, match=r"^dataset_options\.colour: unknown option; dataset 'signs' accepts "
                                            r"\['scale', .*\(defaults: scale=\(0\.3, 0\.46\), rotation=12\.0"):
        make_scenario(dataset_options={"colour": 1}, **KW)


def test_errors_name_the_allowed_values():
    """make_scenario runs the suite loader's checks: one ScenarioError naming the setting, before any image."""
    with pytest.raises(ScenarioError, match=r"^poisoning: unknown poisoning 'backdoor'.*Known poisonings: BD, BD-A2O, "
                                            r"CH, LF, LF-A2O, none"):
        make_scenario(poisoning="backdoor", **KW)
    for bad in (1.5, -0.1, math.nan, "0.5"):
        with pytest.raises(ScenarioError, match=r"^fraction: .*expected a share between 0 and 1"):
            make_scenario(fraction=bad, **KW)
    with pytest.raises(ScenarioError, match=r"^dataset: unknown dataset 'traffic'.*signs"):
        make_scenario("traffic", **KW)
    with pytest.raises(ScenarioError, match=r"^artifact: unknown artifact 'sticker'.*postit"):
        make_scenario(artifact="sticker", **KW)
    with pytest.raises(ScenarioError, match=r"^affected_class: 'stp' is not a class of dataset 'signs'.*"
                                            r"Did you mean 'stop'\?"):
        make_scenario(affected_class="stp", **KW)
    with pytest.raises(ScenarioError, match="^affected_class: index 7 is out of range"):
        make_scenario(affected_class=7, **KW)
    with pytest.raises(ScenarioError, match="^target_class: 'stop' equals affected_class.*another class"):
        make_scenario(poisoning="BD", target_class="stop", **KW)
    with pytest.raises(ScenarioError, match="^target_class: poisoning 'BD' needs target_class"):
        make_scenario(poisoning="BD", target_class=None, **KW)
    with pytest.raises(ScenarioError, match="^image_size: 8; expected an integer pixel size between 16 and 512"):
        make_scenario(**{**KW, "image_size": 8})
    # CH ignores the target entirely, even a nonsense one
    assert make_scenario(poisoning="CH", target_class=None, **KW).target_class is None


@pytest.mark.parametrize("poisoning", ["CH", "BD", "none"])
def test_explain_targets_follow_the_poisoning(poisoning):
    """BD: triggered artifact-test images are explained for the target; everything else for its label."""
    s = make_scenario(poisoning=poisoning, fraction=0.5, **KW)
    at = s.artifact_test
    aff = at.of_class(STOP, by="true_labels")
    others = torch.nonzero(at.true_labels != STOP).flatten()
    assert aff.numel() > 0 and others.numel() > 0
    expected = SPEED if poisoning == "BD" else STOP
    assert (s.explain_targets("artifact_test", aff) == expected).all()
    assert (at.labels[aff] == STOP).all(), "test labels stay the true class; only the explained class changes"
    assert torch.equal(s.explain_targets("artifact_test", others), at.labels[others])
    assert torch.equal(s.explain_targets("clean_test"), s.clean_test.labels)
    # training: relabelled backdoor images are explained for the target, which is their label
    assert torch.equal(s.explain_targets("train"), s.train.labels)
    assert (s.explain_targets("train", s.train.of_class(s.inspect_class)) == s.inspect_class).all()
    assert s.explain_rule("artifact_test") == ("target" if poisoning == "BD" else "label")
    assert s.explain_rule("artifact_test", aff) == ("target" if poisoning == "BD" else "label")
    assert s.explain_rule("artifact_test", others) == "label"
    assert s.explain_rule("clean_test") == "label" and s.explain_rule("train") == "label"
    assert s.explain_targets("artifact_test", aff).dtype == torch.int64
    with pytest.raises(ValueError, match="unknown split 'test'"):
        s.explain_targets("test")


def test_scenario_stores_the_poisoning_by_name_and_delegates_to_it(monkeypatch):
    """The class rules come from the registered poisoning, looked up by the name the scenario stores."""
    import dataclasses

    from hansbench.datasets.poisonings import Backdoor, CleverHans

    s = make_scenario(poisoning="BD", fraction=0.5, **KW)
    assert s.poisoning == "BD" and isinstance(s.poisoning_rule, Backdoor)
    assert {f.name: f.type for f in dataclasses.fields(s)}["poisoning"] == "str"  # serialises as a plain field
    # the rule, not the target_class field, decides: the same data under CH's rule inspect the affected class
    as_ch = dataclasses.replace(s, poisoning="CH")
    assert isinstance(as_ch.poisoning_rule, CleverHans) and as_ch.inspect_class == STOP
    aff = s.artifact_test.of_class(STOP, by="true_labels")
    assert (as_ch.explain_targets("artifact_test", aff) == STOP).all()
    monkeypatch.setattr(Backdoor, "inspect_class", lambda self, data: 4)
    assert s.inspect_class == 4
    # hand-built scenarios without a poisoning: a target class means a backdoor
    assert ScenarioData("t", s.train, s.artifact_test, s.clean_test, s.class_names, STOP, SPEED).poisoning == "BD"
    assert ScenarioData("t", s.train, s.artifact_test, s.clean_test, s.class_names, STOP).poisoning == "CH"
    with pytest.raises(UnknownNameError, match="Known poisonings"):
        _ = dataclasses.replace(s, poisoning="XX").inspect_class


@pytest.mark.parametrize("poisoning, fraction, holds", [("CH", 0.5, (True, True)), ("CH", 1.0, (True, False)),
                                                        ("CH", 0.0, (False, True)), ("BD", 1.0, (True, True)),
                                                        ("none", 0.5, (False, True))])
def test_poisoning_says_what_the_inspected_class_holds(poisoning, fraction, holds):
    """The planner's 'poisoned-and-clean' check reads this; it must agree with the data."""
    from hansbench.datasets.poisonings import get_poisoning

    assert get_poisoning(poisoning).inspected_class_holds(fraction) == holds
    s = make_scenario(poisoning=poisoning, fraction=fraction, **KW)
    flags = s.train.poisoned[s.train.of_class(s.inspect_class)]
    assert (bool(flags.any()), bool((~flags).any())) == holds
