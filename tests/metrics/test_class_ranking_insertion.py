"""class-ranking (SpRAy tau) on planted map structure; artifact-insertion on a model with a planted shortcut."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from hansbench.datasets.base import ScenarioData, Split
from hansbench.metrics.artifact_insertion import ArtifactInsertion, class_rank
from hansbench.metrics.base import EvalContext
from hansbench.metrics.class_ranking import ClassRanking, fisher_separability
from hansbench.registry import artifacts
from hansbench.testing import CornerSquare

H = 12


def _split(labels: torch.Tensor, images: torch.Tensor | None = None) -> Split:
    n = labels.numel()
    images = torch.rand(n, 3, H, H, generator=torch.Generator().manual_seed(9)) if images is None else images
    return Split(images, labels, labels.clone(), torch.zeros(n, dtype=torch.bool), torch.zeros(n, H, H, dtype=torch.bool))


def _planted_maps(labels: torch.Tensor) -> torch.Tensor:
    """Class 0's maps: two strategies (top-left or bottom-right blob); other classes: one noisy strategy."""
    g = torch.Generator().manual_seed(4)
    n = labels.numel()
    maps = 0.3 * torch.rand(n, 1, H, H, generator=g)
    maps[:, :, 4:8, 4:8] += 1.0  # the shared 'object' relevance
    zero = torch.nonzero(labels == 0).flatten()
    maps[zero[::2], :, :4, :4] += 2.0
    maps[zero[1::2], :, 8:, 8:] += 2.0
    return maps


def _values(rows):
    return {r["metric"]: r["value"] for r in rows}


def test_fisher_separability_known_values():
    x = np.array([[0.0], [2.0], [10.0], [12.0]])
    # S_b = 2 * 25 = ... per cluster (unweighted, eq. 7): (1-6)^2 + (11-6)^2 = 50; S_w = 4 * 1 = 4
    assert fisher_separability(x, np.array([0, 0, 1, 1])) == pytest.approx(50 / 4, rel=1e-5)
    assert fisher_separability(x, np.array([0, 1, 0, 1])) < 1.0


@pytest.mark.parametrize("inspect, expect_first", [(0, True), (1, False)])
def test_planted_two_strategy_class_ranks_first(inspect, expect_first):
    labels = torch.arange(3).repeat_interleave(40)
    train = _split(labels)
    maps = _planted_maps(labels)
    data = ScenarioData("t", train, train, train, ["a", "b", "c"], affected_class=0,
                        target_class=None if inspect == 0 else inspect)
    calls = []

    def explain(split, index, target):
        calls.append((split, int(target.unique().item())))
        return maps[index]

    ctx = EvalContext(data=data, model=nn.Identity(), seed=0, device=torch.device("cpu"), explain=explain)
    rows = ClassRanking(n_per_class=40, k_max=6).evaluate(ctx)
    v = _values(rows)
    tau = json.loads(rows[0]["detail"])["tau"]
    assert calls == [("train", 0), ("train", 1), ("train", 2)]
    assert tau[0] > max(tau[1], tau[2])
    assert (v["tau-rank"] == 1) == expect_first
    assert v["tau"] == pytest.approx(tau[inspect], rel=1e-3)


def test_constant_maps_do_not_rank_first():
    labels = torch.arange(3).repeat_interleave(12)
    train = _split(labels)
    data = ScenarioData("t", train, train, train, ["a", "b", "c"], affected_class=1)
    ctx = EvalContext(data=data, model=nn.Identity(), seed=0, device=torch.device("cpu"),
                      explain=lambda s, i, t: torch.zeros(i.numel(), 1, H, H))
    assert _values(ClassRanking(k_max=3).evaluate(ctx))["tau-rank"] == 3  # all taus tie: ties count against
    few = ScenarioData("t", _split(torch.tensor([0, 0, 1, 1, 1, 1])), train, train, ["a", "b"], affected_class=0)
    ctx.data = few
    rows = ClassRanking(k_max=3).evaluate(ctx)
    assert all(np.isnan(r["value"]) and "undefined" in r["detail"] for r in rows)


def test_class_rank_is_one_based_and_pessimistic():
    logits = torch.tensor([[3.0, 1.0, 2.0], [1.0, 1.0, 0.0]])
    assert class_rank(logits, 2).tolist() == [2, 3]
    assert class_rank(logits, 0).tolist() == [1, 2]



artifacts.register("test-white-square", CornerSquare, replace=True)


class Shortcut(nn.Module):
    """Class 0 wins iff the bottom-right corner is white; else class = brightest third of the image."""

    kind = "classifier"
    num_classes = 3

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def normalize(self, x01):
        return x01

    def forward(self, x):
        thirds = torch.stack([x[:, :, :, :4].mean((1, 2, 3)), x[:, :, :, 4:8].mean((1, 2, 3)),
                              x[:, :, :, 8:].mean((1, 2, 3))], 1)
        corner = x[:, :, -3:, -3:].mean((1, 2, 3))
        return self.scale * (thirds + 10 * (corner > 0.95).float()[:, None] * torch.tensor([1.0, 0, 0]))


def test_insertion_moves_watched_class_to_top():
    g = torch.Generator().manual_seed(3)
    n = 30
    labels = torch.tensor([1, 2] * (n // 2))
    images = 0.5 * torch.rand(n, 3, H, H, generator=g)
    images[labels == 1, :, :, 4:8] += 0.4
    images[labels == 2, :, :, 8:] += 0.3
    test = _split(labels, images)
    train = _split(torch.zeros(4, dtype=torch.long))
    data = ScenarioData("t", train, test, test, ["a", "b", "c"], affected_class=0, artifact="test-white-square")
    ctx = EvalContext(data=data, model=Shortcut(), seed=0, device=torch.device("cpu"))
    v = _values(ArtifactInsertion().evaluate(ctx))
    with torch.no_grad():
        before = Shortcut()(images)
    rank_before = class_rank(before, 0).float().mean().item()
    assert rank_before > 1.5
    assert v["insertion-rank-change"] == pytest.approx(1.0 - rank_before)
    assert v["insertion-flip-rate"] == pytest.approx(100.0)
    after = Shortcut()(CornerSquare().stamp(images)[0]).detach()
    expected = (after.softmax(1)[:, 0] - before.softmax(1)[:, 0]).mean().item()
    assert v["insertion-prob-change"] == pytest.approx(expected, rel=1e-5) and expected > 0.5
    # a dark square is not the shortcut: nothing moves
    data.meta["artifact_options"] = {"value": 0.0}
    v0 = _values(ArtifactInsertion().evaluate(ctx))
    assert v0["insertion-flip-rate"] == 0.0 and abs(v0["insertion-prob-change"]) < 0.05
    data.artifact = ""
    assert ArtifactInsertion().evaluate(ctx) == []
