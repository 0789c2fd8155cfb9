"""All-to-one backdoors, label-flip controls, the clean control, and data without ground truth (C3, C4)."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from hansbench.datasets.base import BlindSplit, GroundTruthUnavailable, ScenarioData, Split
from hansbench.datasets.poisonings import AllToOneBackdoor, AllToOneLabelFlip, LabelFlip, default_scenario_name
from hansbench.datasets.scenarios import make_scenario
from hansbench.methods.base import Explainer
from hansbench.metrics.base import EvalContext
from hansbench.registry import artifacts, explainers, metrics, poisonings
from hansbench.testing import CornerSquare, tiny_model

KW = dict(image_size=16, n_train=80, n_test=30)
TARGET = "speed limit"


@pytest.fixture(autouse=True)
def builtin_poisonings():
    """tests/test_plugin_kinds.py fakes a plugin named "LF" and removes it afterwards: restore the built-ins."""
    for cls in (AllToOneBackdoor, LabelFlip, AllToOneLabelFlip):
        poisonings.register(cls.name, cls, replace=True)


@functools.cache  # the tests only read the scenarios
def _scenario(poisoning: str, fraction: float = 0.5, seed: int = 3) -> ScenarioData:
    return make_scenario(poisoning=poisoning, fraction=fraction, seed=seed, target_class=TARGET, **KW)


# ----------------------------------------------------------------------------- all-to-one backdoor


@pytest.mark.parametrize("fraction", [0.1, 0.5, 1.0])
def test_all_to_one_draws_from_every_non_target_class_and_never_the_target(fraction):
    d = _scenario("BD-A2O", fraction)
    tr, tgt = d.train, d.target_class
    non_target = tr.true_labels != tgt
    chosen = torch.nonzero(tr.poisoned).flatten()
    assert chosen.numel() == round(fraction * int(non_target.sum()))  # exact count: share of non-target images
    assert not (tr.true_labels[chosen] == tgt).any(), "the target's own images are never poisoned"
    if fraction >= 0.5:  # ~32 of ~64 images from 4 classes: every source class is hit
        assert set(tr.true_labels[chosen].tolist()) == set(range(d.num_classes)) - {tgt}
    assert (tr.labels[chosen] == tgt).all() and torch.equal(tr.labels[~tr.poisoned], tr.true_labels[~tr.poisoned])
    assert tr.masks[chosen].flatten(1).any(1).all() and not tr.masks[~tr.poisoned].any()  # stamped, only they
    clean = _scenario("none", seed=3).train.images
    assert torch.equal(tr.images[~tr.poisoned], clean[~tr.poisoned])
    changed = (tr.images != clean).any(1)
    assert not (changed & ~tr.masks).any(), "pixels change only inside the artifact masks"
    assert d.inspect_class == tgt and d.source_classes == [c for c in range(d.num_classes) if c != tgt]


def test_all_to_one_artifact_test_carries_the_trigger_on_every_non_target_image():
    d = _scenario("BD-A2O", 0.2)
    art, clean, tgt = d.artifact_test, d.clean_test, d.target_class
    assert torch.equal(art.poisoned, art.true_labels != tgt)
    assert art.masks[art.poisoned].flatten(1).any(1).all() and not clean.poisoned.any()
    assert torch.equal(art.images[~art.poisoned], clean.images[~art.poisoned])  # the same images otherwise
    one_to_one = _scenario("BD", 0.2).artifact_test
    assert torch.equal(one_to_one.poisoned, one_to_one.true_labels == d.affected_class)  # BD unchanged
    targets = d.explain_targets("artifact_test")
    assert (targets[art.poisoned] == tgt).all() and torch.equal(targets[~art.poisoned], art.labels[~art.poisoned])


def test_default_names_and_control_relations():
    assert default_scenario_name("BD-A2O", 0.1) == "BD-A2O-10"
    assert default_scenario_name("LF", 0.3) == "LF-30"
    assert default_scenario_name("LF-A2O", 0.1) == "LF-A2O-10"
    assert _scenario("LF-A2O", 0.1).name == "LF-A2O-10"
    rules = {name: poisonings.get(name) for name in ("CH", "BD", "BD-A2O", "LF", "LF-A2O", "none")}
    assert {n: r.control_of for n, r in rules.items()} == {
        "CH": "", "BD": "", "BD-A2O": "", "LF": "BD", "LF-A2O": "BD-A2O", "none": ""}
    assert [n for n, r in rules.items() if r.is_control] == ["LF", "LF-A2O", "none"]
    for name in ("BD-A2O", "LF", "LF-A2O"):
        assert rules[name]().inspected_class_holds(0.2) == (True, True)


# ----------------------------------------------------------------------------- label-flip controls


@pytest.mark.parametrize("control, backdoor", [("LF", "BD"), ("LF-A2O", "BD-A2O")])
@pytest.mark.parametrize("seed, fraction", [(0, 0.3), (5, 0.8)])
def test_label_flip_relabels_exactly_the_backdoors_images_without_stamping(control, backdoor, seed, fraction):
    lf, bd = _scenario(control, fraction, seed), _scenario(backdoor, fraction, seed)
    clean = _scenario("none", seed=seed)
    assert lf.train.poisoned.any()
    assert torch.equal(lf.train.poisoned, bd.train.poisoned), "the same selection stream as the backdoor"
    assert torch.equal(lf.train.labels, bd.train.labels) and torch.equal(lf.train.true_labels, bd.train.true_labels)
    assert torch.equal(lf.train.images, clean.train.images), "not stamped"
    assert not lf.train.masks.any()
    assert not torch.equal(bd.train.images, clean.train.images)  # the backdoor does stamp
    # the test sets mirror the backdoor's: the artifact on the same images
    assert torch.equal(lf.artifact_test.images, bd.artifact_test.images)
    # no trigger, no decision to explain for: every image is explained for its label
    assert torch.equal(lf.explain_targets("artifact_test"), lf.artifact_test.labels)
    assert lf.inspect_class == lf.target_class


# ----------------------------------------------------------------------------- reliance of A2O and LF

H, A, B, TGT = 12, 0, 1, 2
artifacts.register("test-poisonings-corner", CornerSquare, replace=True)


def _hand_scenario(poisoning: str) -> ScenarioData:
    """30 test images, 10 per class; class k bright in vertical third k. The artifact test stamps every
    source-class image (all-to-one: classes 0 and 1; one-to-one: class 0)."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(30) % 3
    x = 0.5 * torch.rand(30, 3, H, H, generator=g)
    for k in range(3):
        x[labels == k, :, :, 4 * k:4 * k + 4] = 0.9
    rule = poisonings.get(poisoning)()
    stamped = torch.isin(labels, torch.tensor(rule.source_classes(3, A, TGT)))
    art_x, masks = CornerSquare().stamp(x)
    art = Split(torch.where(stamped[:, None, None, None], art_x, x), labels, labels.clone(), stamped,
                masks & stamped[:, None, None])
    clean = Split(x.clone(), labels.clone(), labels.clone(), torch.zeros(30, dtype=torch.bool), torch.zeros_like(masks))
    return ScenarioData(poisoning, clean, art, clean, ["a", "b", "t"], affected_class=A, target_class=TGT,
                        artifact="test-poisonings-corner", poisoning=poisoning)


class TriggerModel(nn.Module):
    """logits = brightness of each third; the corner sends images of the classes in ``fires_on`` to the target."""

    kind = "classifier"
    num_classes = 3

    def __init__(self, fires_on: tuple[int, ...]):
        super().__init__()
        self.fires_on = fires_on

    def normalize(self, x01):
        return x01

    def forward(self, x):
        thirds = torch.stack([x[:, :, :, 4 * k:4 * k + 4].mean((1, 2, 3)) for k in range(3)], 1)
        corner = (x[:, :, -3:, -3:].mean((1, 2, 3)) > 0.95).float()
        shows = torch.zeros_like(corner, dtype=torch.bool)
        for k in self.fires_on:
            shows |= thirds.argmax(1) == k
        return thirds + 10 * (corner * shows.float())[:, None] * torch.tensor([0.0, 0.0, 1.0])


def _reliance(poisoning: str, fires_on: tuple[int, ...]) -> dict[str, float]:
    from hansbench.bench.engine.checks import check_rows

    ctx = EvalContext(data=_hand_scenario(poisoning), model=TriggerModel(fires_on), seed=0, device=torch.device("cpu"))
    rows = check_rows(metrics.get("reliance")().evaluate(ctx), "reliance")  # what the runner accepts
    return {r["metric"]: r["value"] for r in rows}


@pytest.mark.parametrize("fires_on, asr, took", [((A, B), 100.0, 1.0), ((B,), 50.0, 1.0), ((A,), 50.0, 1.0),
                                                 ((), 0.0, 0.0)])
def test_all_to_one_asr_counts_every_source_class(fires_on, asr, took):
    v = _reliance("BD-A2O", fires_on)
    assert v["asr"] == pytest.approx(asr) and v["took"] == took  # 20 triggered images of classes 0 and 1
    assert v["clean-to-target"] == 0.0 and v["control"] == 0.0


def test_one_to_one_asr_counts_the_affected_class_only():
    assert _reliance("BD", (B,))["asr"] == 0.0  # class 1 is not a source of the one-to-one backdoor
    assert _reliance("BD", (A,))["asr"] == 100.0


@pytest.mark.parametrize("poisoning", ["LF", "LF-A2O"])
def test_label_flip_reliance_is_a_gated_control(poisoning):
    v = _reliance(poisoning, (A, B))
    assert v["took"] is None, "no trigger: nothing to take (explicitly missing)"
    assert v["control"] == 1.0 and v["asr"] == 100.0 and "clean-to-target" in v
    gates = metrics.get("reliance").presentation.gates
    assert "control" in gates and metrics.get("reliance").values["control"] == ("bool", False)


def test_leaderboard_gates_a_label_flip_control():
    from hansbench.bench.report.leaderboard import gate_notes, presentation

    rows = []
    for scenario, poisoning in (("BD-t", "BD"), ("LF-t", "LF")):
        ctx = EvalContext(data=_hand_scenario(poisoning), model=TriggerModel((A,)), seed=0, device=torch.device("cpu"))
        for r in metrics.get("reliance")().evaluate(ctx):
            rows.append({**r, "family": "reliance", "model": scenario, "seed": 0})
    import pandas as pd

    notes = gate_notes(pd.DataFrame(rows), {"reliance": presentation("reliance")})
    assert "BD-t" not in notes  # the backdoor took: ranked
    assert notes["LF-t"] == [f"{metrics.get('reliance').presentation.gates['control']} (seed 0)"]


# ----------------------------------------------------------------------------- without ground truth


def test_without_ground_truth_hides_flags_masks_and_true_labels():
    d = _scenario("BD", 0.5)
    blind = d.without_ground_truth()
    for name in ("poisoned", "masks", "true_labels"):
        with pytest.raises(GroundTruthUnavailable, match="ground truth is not available to methods"):
            getattr(blind.train, name)
        with pytest.raises(GroundTruthUnavailable):
            getattr(blind.train.subset(torch.arange(5)), name)
    with pytest.raises(GroundTruthUnavailable):
        blind.train.of_class(d.affected_class, by="true_labels")
    assert isinstance(blind.train, BlindSplit) and not blind.train.ground_truth_available
    assert torch.equal(blind.train.images, d.train.images) and torch.equal(blind.train.labels, d.train.labels)
    assert torch.equal(blind.train.boxes, d.train.boxes) and len(blind.train) == len(d.train)
    assert blind.class_names == d.class_names and (blind.mean, blind.std) == (d.mean, d.std)
    assert blind.inspect_class == d.inspect_class and "n_poisoned" not in blind.meta
    assert torch.equal(blind.train.of_class(d.target_class), d.train.of_class(d.target_class))
    # the class rule still works on it: triggered training images are labelled with the target already
    assert torch.equal(blind.explain_targets("train"), d.explain_targets("train"))
    assert d.train.poisoned.any() and torch.equal(d.without_ground_truth().artifact_test.poisoned,
                                                  d.artifact_test.poisoned)  # metrics' data untouched


def _setup_explainers() -> list:
    return [pytest.param(name, id=name) for name, cls in explainers.items() if cls.setup is not Explainer.setup]


CHEAP = {"cladec": {"epochs": 1, "max_train_images": 24, "batch_size": 12},
         "cladec-diff": {"epochs": 1, "max_train_images": 24, "batch_size": 12},
         "crp": {"k": 3, "images_per_class": 6}}


@pytest.mark.parametrize("name", _setup_explainers())
def test_every_explainer_setup_works_without_ground_truth(name):
    """CRP concept sets, ClaDec decoders (and any explainer with a setup) need only images and labels."""
    cls = explainers.get(name)
    g = torch.Generator().manual_seed(0)
    n, side = 24, 16
    labels = torch.arange(n) % 3
    poisoned = torch.arange(n) % 4 == 0
    masks = torch.zeros(n, side, side, dtype=torch.bool)
    masks[poisoned, -3:, -3:] = True
    split = Split(torch.rand(n, 3, side, side, generator=g), labels, (labels + poisoned.long()) % 3, poisoned, masks)
    data = ScenarioData("t", split, split, split, ["a", "b", "c"], affected_class=0, target_class=1,
                        mean=(0.5,) * 3, std=(0.25,) * 3)
    for kind in cls.model_kinds:
        if kind not in ("classifier", "protopnet"):
            continue
        opts = {"prototypes_per_class": 3, "prototype_dim": 8} if kind == "protopnet" else {}
        model = tiny_model(kind, num_classes=3, **opts)
        x = model.normalize(split.images[:4])
        maps = []
        for d in (data, data.without_ground_truth()):
            ex = cls(**CHEAP.get(name, {}))
            ex.setup(model, d, None)
            maps.append(ex.explain(model, x, labels[:4]))
        torch.testing.assert_close(maps[1], maps[0])  # the same setup: it never needed the ground truth
