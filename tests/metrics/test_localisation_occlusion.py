"""artifact-localisation and occlusion-delta on hand-made maps, masks and a model with a known shortcut."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hansbench.datasets.base import ScenarioData, Split
from hansbench.metrics.base import EvalContext
from hansbench.metrics.localisation import ArtifactLocalisation, localisation_scores
from hansbench.metrics.occlusion import OcclusionDelta, pick_windows, window_grid, window_relevance


def _ctx(test: Split, explain, model=None, num_classes=2) -> EvalContext:
    data = ScenarioData("t", test, test, test, [str(i) for i in range(num_classes)], affected_class=0)
    return EvalContext(data=data, model=model or nn.Identity(), seed=0, device=torch.device("cpu"), explain=explain)


def _values(rows, split="artifact_test"):
    return {r["metric"]: r["value"] for r in rows if r["split"] == split}


def test_localisation_scores_hand_computed():
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, :2, :2] = True
    a = torch.full((4, 4), -0.2)
    a[0, 0], a[0, 1], a[1, 0], a[1, 1] = 4.0, 3.0, 0.5, -1.0  # inside
    a[3, 3], a[2, 2] = 5.0, 2.0  # outside
    maps = torch.stack([a, mask[0].float()])[None]  # [1, 2, 4, 4]
    s = localisation_scores(maps, mask)
    assert s["relevance-mass-acc"][0].tolist() == pytest.approx([7.5 / 14.5, 1.0])
    assert s["relevance-rank-acc"][0].tolist() == pytest.approx([0.5, 1.0])  # top 4: 5 (out), 4, 3 (in), 2 (out)
    assert s["pointing-game"][0].tolist() == [0.0, 1.0]
    neg = localisation_scores(-torch.rand(1, 1, 4, 4) - 0.1, mask)
    assert neg["relevance-mass-acc"].item() == 0.0  # no positive relevance anywhere
    with pytest.raises(ValueError, match="non-empty"):
        localisation_scores(maps, torch.zeros(1, 4, 4, dtype=torch.bool))


def test_localisation_metric_uses_poisoned_images_and_best_view():
    n, h = 6, 8
    masks = torch.zeros(n, h, h, dtype=torch.bool)
    masks[:, 5:, 5:] = True
    poisoned = torch.tensor([True, True, True, True, False, True])
    masks[~poisoned] = False
    labels = torch.tensor([0, 0, 0, 0, 0, 1])  # the last one shows another class: not scored
    test = Split(torch.rand(n, 3, h, h), labels, labels, poisoned, masks)
    good = masks.float()[:, None]
    bad = -masks.float()[:, None]  # below every pixel outside the mask, so no tie reaches the top |mask|
    bad[:, 0, 0, 0] = 1.0
    maps = torch.cat([good, bad], 1)  # view 0 on the artifact, view 1 elsewhere
    seen = []

    def explain(split, index, target):
        seen.append((split, index.tolist()))
        return maps[index]

    v = _values(ArtifactLocalisation().evaluate(_ctx(test, explain)))
    assert seen == [("artifact_test", [0, 1, 2, 3])]
    for name in ("relevance-mass-acc", "relevance-rank-acc", "pointing-game"):
        assert v[name] == pytest.approx(0.5) and v[f"{name}-best-view"] == pytest.approx(1.0)


def test_window_grid_scales_the_paper_grid():
    assert window_grid(32, 32)[:2] == (12, 12)
    assert window_grid(32, 32)[2].tolist() == [0, 6, 12, 20]
    wh, ww, rows, cols = window_grid(64, 48)
    assert (wh, ww, rows.tolist(), cols.tolist()) == (24, 18, [0, 12, 24, 40], [0, 9, 18, 30])


def test_window_relevance_matches_loop():
    maps = torch.randn(3, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    rel, windows = window_relevance(maps)
    summed = maps.sum(1)
    ref = torch.stack([torch.stack([summed[i][windows[w]].sum() for w in range(16)]) for i in range(3)])
    torch.testing.assert_close(rel, ref, rtol=1e-4, atol=1e-4)
    assert windows.sum((1, 2)).unique().tolist() == [144]


def test_ties_broken_at_random():
    rel = torch.zeros(64, 16)
    picks = pick_windows(rel, torch.Generator().manual_seed(0), largest=True)
    assert picks.unique().numel() > 4
    rel[:, 5] = 1.0
    assert (pick_windows(rel, torch.Generator().manual_seed(0), largest=True) == 5).all()


class CornerShortcut(nn.Module):
    """Predicts class 0 iff the top-left 6x6 block is bright (a planted shortcut)."""

    kind = "classifier"
    num_classes = 2

    def normalize(self, x01):
        return x01

    def forward(self, x):
        block = x[:, :, :6, :6].mean((1, 2, 3))
        return torch.stack([block, torch.full_like(block, 0.5)], 1)


def test_occlusion_delta_ideal_map_100_random_map_near_0():
    n = 40
    g = torch.Generator().manual_seed(2)
    images = torch.rand(n, 3, 32, 32, generator=g) * 0.3
    images[:, :, :6, :6] = 1.0
    labels = torch.zeros(n, dtype=torch.long)
    test = Split(images, labels, labels, torch.zeros(n, dtype=torch.bool), torch.zeros(n, 32, 32, dtype=torch.bool))
    ideal = torch.zeros(n, 1, 32, 32)
    ideal[:, :, :6, :6] = 1.0
    random_map = torch.rand(n, 1, 32, 32, generator=g)
    for maps, expect_ideal in ((ideal, True), (random_map, False)):
        rows = OcclusionDelta(n_images=n).evaluate(_ctx(test, lambda s, i, t, m=maps: m[i], model=CornerShortcut()))
        v = _values(rows, "clean_test")
        if expect_ideal:
            assert v["occlusion-acc-most"] == 0.0 and v["occlusion-acc-least"] == 100.0
            assert v["occlusion-delta-acc"] == 100.0
        else:
            assert v["occlusion-delta-acc"] < 50.0
    with pytest.raises(ValueError, match="fill"):
        OcclusionDelta(fill="grey")


# -- which class is explained: a backdoor's artifact test is explained for the target -----------------

T = 16  # image side; the trigger is the bottom-right 3x3 block
STOP_C, TARGET_C = 1, 2


class TriggerNet(nn.Module):
    """A backdoored model built by hand: the target's logit is driven by the trigger block.

    Linear in the normalised pixels: target = 20 * mean(trigger block) + 0.1 * mean(image),
    stop = mean(centre 6x6 block) + 0.1 * mean(image), class 0 = 0.8. Any faithful attribution
    of the target logit lies on the trigger; of the stop logit, on the centre.
    """

    kind = "classifier"
    num_classes = 3

    def normalize(self, x01):
        return (x01 - 0.5) / 0.25

    def forward(self, x):
        everything = 0.1 * x.mean((1, 2, 3))
        trigger = x[:, :, -3:, -3:].mean((1, 2, 3))
        centre = x[:, :, 5:11, 5:11].mean((1, 2, 3))
        return torch.stack([torch.full_like(trigger, 0.8), centre + everything, 20 * trigger + everything], 1)


def _backdoor_data(n: int = 8) -> ScenarioData:
    g = torch.Generator().manual_seed(4)
    clean = 0.4 * torch.rand(n, 3, T, T, generator=g)
    clean[:, :, 5:11, 5:11] = 0.9  # the stop sign
    stamped = clean.clone()
    stamped[:, :, -3:, -3:] = 1.0
    masks = torch.zeros(n, T, T, dtype=torch.bool)
    masks[:, -3:, -3:] = True
    labels = torch.full((n,), STOP_C)
    art = Split(stamped, labels, labels.clone(), torch.ones(n, dtype=torch.bool), masks)
    cln = Split(clean, labels.clone(), labels.clone(), torch.zeros(n, dtype=torch.bool), torch.zeros_like(masks))
    return ScenarioData("BD-t", art, art, cln, ["other", "stop", "speed"], affected_class=STOP_C,
                        target_class=TARGET_C, mean=(0.5,) * 3, std=(0.25,) * 3)


def _ig_explain(model, data, seen=None):
    from hansbench.registry import explainers

    ig = explainers.get("integrated-gradients")(n_steps=16)

    def explain(split, index, target):
        if seen is not None:
            seen.append((split, target.clone()))
        x = model.normalize(getattr(data, split).images[index])
        return ig.explain(model, x, torch.as_tensor(target))

    return explain


def test_backdoor_localisation_explains_the_target_and_finds_the_trigger():
    import json

    model, data = TriggerNet(), _backdoor_data()
    with torch.no_grad():
        assert (model(model.normalize(data.artifact_test.images)).argmax(1) == TARGET_C).all(), "the backdoor fires"
    seen = []
    ctx = EvalContext(data=data, model=model, seed=0, device=torch.device("cpu"), explain=_ig_explain(model, data, seen))
    rows = ArtifactLocalisation().evaluate(ctx)
    assert [s for s, _ in seen] == ["artifact_test"] and (seen[0][1] == TARGET_C).all()
    assert all(json.loads(r["detail"])["explained"] == "target" for r in rows)
    mass_target = _values(rows)["relevance-mass-acc"]
    # The same images explained for their true class (stop), as the metric did before explain_targets.
    index = torch.arange(len(data.artifact_test))
    maps_true = _ig_explain(model, data)("artifact_test", index, data.artifact_test.labels)
    mass_true = localisation_scores(maps_true, data.artifact_test.masks)["relevance-mass-acc"].mean().item()
    assert mass_target > 0.5 and mass_target > mass_true + 0.4
    # a Clever Hans reading of the same data (no target class) explains the label and records it
    ch = ScenarioData("CH-t", data.train, data.artifact_test, data.clean_test, data.class_names, STOP_C)
    rows_ch = ArtifactLocalisation().evaluate(EvalContext(data=ch, model=model, seed=0, device=torch.device("cpu"),
                                                          explain=_ig_explain(model, ch)))
    assert json.loads(rows_ch[0]["detail"])["explained"] == "label"
    assert _values(rows_ch)["relevance-mass-acc"] == pytest.approx(mass_true, abs=1e-6)


def test_backdoor_occlusion_scores_the_explained_target():
    import json

    model, data = TriggerNet(), _backdoor_data(12)
    ctx = EvalContext(data=data, model=model, seed=0, device=torch.device("cpu"), explain=_ig_explain(model, data))
    rows = OcclusionDelta().evaluate(ctx)
    art, cln = _values(rows, "artifact_test"), _values(rows, "clean_test")
    # explaining the target, the most relevant window holds the trigger: occluding it undoes the backdoor
    assert art["occlusion-acc-most"] == 0.0 and art["occlusion-acc-least"] == 100.0
    details = {r["split"]: json.loads(r["detail"]) for r in rows}
    assert details["artifact_test"]["explained"] == "target" and details["clean_test"]["explained"] == "label"
    assert cln["occlusion-acc-most"] < cln["occlusion-acc-least"]  # clean stop signs: the centre is what matters
