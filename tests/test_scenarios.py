"""Poisoning scenarios: CH-x / BD-x stamp and relabel exactly what they say, with ground truth."""

from __future__ import annotations

import math

import pytest
import torch

from hansbench.datasets.base import ScenarioData
from hansbench.datasets.scenarios import make_scenario
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
    with pytest.raises(TypeError, match="accepted options"):
        make_scenario(dataset_options={"colour": 1}, **KW)


def test_errors_name_the_allowed_values():
    with pytest.raises(ValueError, match=r"CH, BD, none"):
        make_scenario(poisoning="backdoor", **KW)
    for bad in (1.5, -0.1, math.nan, "0.5"):
        with pytest.raises(ValueError, match=r"fraction .*\[0, 1\]"):
            make_scenario(fraction=bad, **KW)
    with pytest.raises(UnknownNameError, match="signs"):
        make_scenario("traffic", **KW)
    with pytest.raises(UnknownNameError, match="postit"):
        make_scenario(artifact="sticker", **KW)
    with pytest.raises(ValueError, match="'stop'"):
        make_scenario(affected_class="stp", **KW)
    with pytest.raises(ValueError, match="out of range"):
        make_scenario(affected_class=7, **KW)
    with pytest.raises(ValueError, match="another class"):
        make_scenario(poisoning="BD", target_class="stop", **KW)
    with pytest.raises(ValueError, match="target_class"):
        make_scenario(poisoning="BD", target_class=None, **KW)
    # CH ignores the target entirely, even a nonsense one
    assert make_scenario(poisoning="CH", target_class=None, **KW).target_class is None
