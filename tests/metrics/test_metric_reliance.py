"""reliance: hand-built models whose reliance on the artifact is known by construction (no training)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from hansbench.datasets.base import ScenarioData, Split
from hansbench.metrics.base import EvalContext
from hansbench.registry import artifacts, metrics
from hansbench.testing import CornerSquare

H = 12
AFF, OTHER, TGT = 0, 1, 2



artifacts.register("test-reliance-corner", CornerSquare, replace=True)


def _scenario(backdoor: bool) -> ScenarioData:
    """30 test images, 10 per class; class k has a bright vertical third k. Half the affected-class
    images have a dim third (0.55 instead of 0.9). The artifact test stamps every affected image."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(30) % 3
    x = 0.5 * torch.rand(30, 3, H, H, generator=g)
    for k in range(3):
        x[labels == k, :, :, 4 * k:4 * k + 4] = 0.9
    dim = torch.nonzero(labels == AFF).flatten()[::2]
    x[dim, :, :, 0:4] = 0.55
    art_x, masks = CornerSquare().stamp(x)
    poisoned = labels == AFF
    art_x = torch.where(poisoned[:, None, None, None], art_x, x)
    masks = masks & poisoned[:, None, None]
    art = Split(art_x, labels, labels.clone(), poisoned, masks)
    clean = Split(x.clone(), labels.clone(), labels.clone(), torch.zeros(30, dtype=torch.bool), torch.zeros_like(masks))
    return ScenarioData("BD-t" if backdoor else "CH-t", clean, art, clean, ["stop", "other", "speed"],
                        affected_class=AFF, target_class=TGT if backdoor else None, artifact="test-reliance-corner",
                        meta={"poisoning": "BD" if backdoor else "CH"})


class HandModel(nn.Module):
    """logits = brightness of each vertical third, then ``rule`` edits them using the corner flag."""

    kind = "classifier"
    num_classes = 3

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def normalize(self, x01):
        return x01

    def forward(self, x):
        thirds = torch.stack([x[:, :, :, 4 * k:4 * k + 4].mean((1, 2, 3)) for k in range(3)], 1)
        corner = (x[:, :, -3:, -3:].mean((1, 2, 3)) > 0.95).float()
        return self.rule(thirds.clone(), corner)


def honest(t, c):
    return t


def flipper(t, c):  # the artifact pulls every image to the affected class; affected images are recognised anyway
    t[:, AFF] += 10 * c
    return t


def clever_hans(t, c):  # the affected class is recognised by the artifact alone
    t[:, AFF] = 10 * c - 1
    return t


def partial(t, c):  # dim affected images need the artifact; other classes' images are not flipped by it
    t[:, AFF] = t[:, AFF] - 0.35 + 10 * c * torch.relu(t[:, AFF] - 0.4)
    return t


def backdoor(t, c):
    t[:, TGT] += 10 * c
    return t


def leaky_backdoor(t, c):  # also sends clean affected images to the target
    t[:, TGT] += 10 * c + t[:, AFF]
    return t


def constant(t, c):
    return torch.tensor([0.0, 1.0, 0.0]).expand(t.shape[0], 3)


def _run(rule, backdoor_data=False, **options):
    data = _scenario(backdoor_data)
    ctx = EvalContext(data=data, model=HandModel(rule), seed=0, device=torch.device("cpu"))
    rows = metrics.get("reliance")(**options).evaluate(ctx)
    return {r["metric"]: r["value"] for r in rows}, rows


def _reference(rule, backdoor_data=False):
    """The same quantities by direct counting, one image at a time."""
    data, model = _scenario(backdoor_data), HandModel(rule)
    pred = lambda img: int(model(img[None]).argmax())  # noqa: E731
    art, clean = data.artifact_test, data.clean_test
    aff = [i for i in range(30) if int(clean.true_labels[i]) == AFF]
    out = {"clean-acc": 100 * sum(pred(clean.images[i]) == int(clean.true_labels[i]) for i in range(30)) / 30}
    if backdoor_data:
        out["asr"] = 100 * sum(pred(art.images[i]) == TGT for i in aff) / len(aff)
        out["clean-to-target"] = 100 * sum(pred(clean.images[i]) == TGT for i in aff) / len(aff)
    else:
        out["artifact-class-acc"] = 100 * sum(pred(art.images[i]) == AFF for i in aff) / len(aff)
        out["clean-class-acc"] = 100 * sum(pred(clean.images[i]) == AFF for i in aff) / len(aff)
        others = [i for i in range(30) if i not in aff and pred(clean.images[i]) != AFF]
        stamped = CornerSquare().stamp(clean.images[others])[0]
        out["flip-rate"] = 100 * sum(pred(s) == AFF for s in stamped) / len(others)
    return out


@pytest.mark.parametrize("rule, gap, flips, took", [
    (honest, 0, 0, 0.0), (flipper, 0, 100, 1.0), (clever_hans, 100, 100, 1.0), (partial, 50, 0, 1.0)])
def test_clever_hans_reliance(rule, gap, flips, took):
    v, rows = _run(rule)
    ref = _reference(rule)
    for name, value in ref.items():
        assert v[name] == pytest.approx(value), name
    assert v["acc-gap"] == pytest.approx(ref["artifact-class-acc"] - ref["clean-class-acc"])
    assert v["acc-gap"] == pytest.approx(gap) and v["flip-rate"] == pytest.approx(flips)  # known by construction
    assert v["took"] == took and v["near-chance"] == 0.0
    assert "asr" not in v
    assert json.loads(rows[0]["detail"])["poisoning"] == "CH"


def test_thresholds_are_options():
    assert _run(partial, min_gap=0.5)[0]["took"] == 1.0  # gap 50 pp >= 50 %
    assert _run(partial, min_gap=0.6)[0]["took"] == 0.0
    assert _run(flipper, min_flip_rate=1.0)[0]["took"] == 1.0
    assert _run(honest, min_gap=0.0)[0]["took"] == 1.0  # a zero threshold accepts anything
    for bad in (20, -0.1, True):
        with pytest.raises(ValueError, match="share in \\[0, 1\\]"):
            metrics.get("reliance")(min_gap=bad)


@pytest.mark.parametrize("rule, asr, to_target, took", [
    (backdoor, 100, 0, 1.0), (leaky_backdoor, 100, 100, 1.0), (honest, 0, 0, 0.0)])
def test_backdoor_reliance(rule, asr, to_target, took):
    v, rows = _run(rule, backdoor_data=True)
    ref = _reference(rule, backdoor_data=True)
    for name, value in ref.items():
        assert v[name] == pytest.approx(value), name
    assert v["asr"] == pytest.approx(asr) and v["clean-to-target"] == pytest.approx(to_target)
    assert v["took"] == took
    assert "acc-gap" not in v and "flip-rate" not in v
    assert _run(rule, backdoor_data=True, min_asr=1.0)[0]["took"] == took  # 100 % >= 100 %, 0 % < 100 %


def test_near_chance_and_declared_units():
    v, rows = _run(constant)
    assert v["clean-acc"] == pytest.approx(100 / 3) and v["near-chance"] == 1.0
    assert _run(constant, chance_margin=0.0)[0]["near-chance"] == 1.0  # 33.3 % <= 33.3 %
    assert _run(honest)[0]["near-chance"] == 0.0
    declared = metrics.get("reliance").values
    assert metrics.get("reliance").level == "model"
    for r in rows + _run(backdoor, backdoor_data=True)[1]:
        assert (r["unit"], r["higher_is_better"]) == declared[r["metric"]]
        json.loads(r["detail"])


def test_insertion_flip_rate_is_the_artifact_insertion_one():
    """reliance reuses artifact-insertion's images and stamps: the same flip rate on a CH scenario."""
    data = _scenario(False)
    ctx = EvalContext(data=data, model=HandModel(flipper), seed=3, device=torch.device("cpu"))
    ins = {r["metric"]: r["value"] for r in metrics.get("artifact-insertion")(n_images=7).evaluate(ctx)}
    rel = {r["metric"]: r["value"] for r in metrics.get("reliance")(n_images=7).evaluate(ctx)}
    assert rel["flip-rate"] == ins["insertion-flip-rate"] and not math.isnan(rel["flip-rate"])
