"""ROAR on a scenario whose class information lives in a known 3x3 block of pixels.

Maps that mark exactly that block remove all the information at t = 0.3 (11 of 36 pixels >= 9),
so the retrained model is at chance; random maps leave most of the block and accuracy stays high.
The block mask is the same for every image, so the removal pattern itself leaks no label.
"""

from __future__ import annotations

import json

import pytest
import torch

from hansbench.datasets.base import ScenarioData, Split
from hansbench.metrics.base import EvalContext
from hansbench.metrics.roar import relevance_ranks, remove_pixels
from hansbench.registry import metrics
from tests._seeds import mean, per_seed
from tests.metrics.test_metric_data_cleaning import MEAN, STD, H, Trainer, W, train_linear

BLOCK = (slice(1, 4), slice(2, 5))


def split(n: int, g: torch.Generator) -> Split:
    labels = torch.arange(n) % 2
    x = torch.rand(n, 3, H, W, generator=g)
    sign = (2 * labels - 1).float().view(-1, 1, 1, 1)
    x[:, :, BLOCK[0], BLOCK[1]] = (0.5 + 0.3 * sign + 0.1 * torch.randn(n, 3, 3, 3, generator=g)).clamp(0, 1)
    return Split(x, labels, labels.clone(), torch.zeros(n, dtype=torch.bool), torch.zeros(n, H, W, dtype=torch.bool))


def scenario(seed: int = 0) -> ScenarioData:
    g = torch.Generator().manual_seed(3 + seed)
    return ScenarioData(name="roar", train=split(200, g), artifact_test=split(20, g), clean_test=split(200, g),
                        class_names=["a", "b"], affected_class=0, mean=MEAN, std=STD)


def explainer(kind: str, data: ScenarioData):
    def explain(split_name, index=None, target=None):
        n = len(getattr(data, split_name))
        if kind == "exact":
            maps = torch.zeros(n, 1, H, W)
            maps[:, :, BLOCK[0], BLOCK[1]] = 1.0
            return maps
        return torch.rand(n, 2, H, W, generator=torch.Generator().manual_seed(len(split_name)))  # 2 views
    return explain


def run(kind: str, fractions=(0.3,), seed: int = 0):
    data = scenario(seed)
    ctx = EvalContext(data=data, model=train_linear(data.train, seed=seed), seed=seed, device=torch.device("cpu"),
                      explainer=kind, explain=explainer(kind, data), train_model=Trainer(seed))
    rows = metrics.get("roar")(fractions=fractions).evaluate(ctx)
    return {str(json.loads(r["detail"])["fraction"]): r["value"] for r in rows}, ctx


def test_exact_maps_reach_chance_random_maps_do_not():
    """Accuracies (%) are learned: asserted on the mean over SEEDS (data and training seeded alike).

    Measured (t = 0, exact maps at t = 0.3, random maps at t = 0.3) per seed 0, 1, 2, the same with torch
    threads 1 and 2 on a 16-core x86 host: (100, 50.5, 100), (100, 46.5, 99), (100, 47, 99.5) (the 2-core dev VM,
    threads 1 and 2: the same). Asserted: mean t = 0 > 95, mean exact in (35, 65) (chance: 50), mean random > 85 and > mean
    exact + 30.
    """

    def accuracies(seed: int) -> tuple[float, float, float]:
        exact, ctx = run("exact", fractions=(0.0, 0.3), seed=seed)
        rand, _ = run("random", fractions=(0.0, 0.3), seed=seed)
        assert rand["0.0"] == exact["0.0"]  # t = 0: the context's model, no retraining
        assert ctx.train_model.tags == ["roar:exact:0.3"]  # one retraining per t > 0
        return round(exact["0.0"], 2), round(exact["0.3"], 2), round(rand["0.3"], 2)

    values = per_seed(accuracies)
    at_0, exact, rand = (mean(v[i] for v in values) for i in range(3))
    assert at_0 > 95, values
    assert 35 < exact < 65, values  # chance for two classes
    assert rand > 85 and rand > exact + 30, values


def test_removal_sets_the_normalisation_mean_on_the_top_pixels():
    data = scenario()
    maps = torch.arange(H * W, dtype=torch.float32).view(1, 1, H, W).repeat(2, 1, 1, 1)  # bottom-right first
    ranks = relevance_ranks(maps, torch.Generator().manual_seed(0))
    assert ranks[0].flatten().tolist() == list(range(H * W - 1, -1, -1))
    out = remove_pixels(data.train.subset(torch.arange(2)), ranks, 0.25, MEAN)
    removed = (out.images != data.train.images[:2]).any(dim=1)
    assert removed.flatten(1)[:, -9:].all() and removed.sum().item() == 2 * 9  # round(0.25 * 36) = 9 per image
    assert torch.all(out.images[:, :, -1, -1] == 0.5)


def test_ties_are_broken_randomly_but_reproducibly():
    flat = torch.zeros(3, 1, H, W)
    a = relevance_ranks(flat, torch.Generator().manual_seed(1))
    b = relevance_ranks(flat, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a[0].flatten(), torch.arange(H * W))


def test_bad_fractions():
    with pytest.raises(ValueError, match="fractions"):
        metrics.get("roar")(fractions=[1.0])
