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
    bad = torch.zeros(n, 1, h, h)
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
