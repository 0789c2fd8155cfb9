"""CRP: conservation across concepts, agreement with zennit-crp, concept sets and scores, views.

The explainer contract is in test_explainer_contract.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from hansbench.datasets.base import ScenarioData, Split
from hansbench.methods.explainers.crp import lrp_composite, module_name
from hansbench.registry import explainers

MEAN, STD, NUM_CLASSES = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 3  # as in conftest
TARGET = torch.tensor([0, 1, 2, 1])
K = 4


def _data(n: int = 30, size: int = 16) -> ScenarioData:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, size, size, generator=g)
    labels = torch.arange(n) % NUM_CLASSES
    split = Split(images, labels, labels.clone(), torch.zeros(n, dtype=torch.bool),
                  torch.zeros(n, size, size, dtype=torch.bool))
    return ScenarioData("tiny", split, split, split, ["a", "b", "c"], affected_class=0, mean=MEAN, std=STD)


@pytest.fixture
def crp(tiny_classifier):
    e = explainers.get("crp")(k=K, images_per_class=6)
    e.setup(tiny_classifier, _data(), None)
    return e


def _lrp(model, x, target):
    """The unconditional LRP map with zennit's own attributor (same composite)."""
    from zennit.attribution import Gradient

    with Gradient(model, lrp_composite()) as attributor:
        _, rel = attributor(x, lambda out: F.one_hot(target, out.shape[1]) * out)
    return rel.sum(dim=1)


def test_conservation_across_concepts(crp, tiny_classifier, tiny_images):
    n_ch = tiny_classifier.cam_layer.conv2.out_channels
    every = torch.arange(n_ch).expand(len(tiny_images), n_ch)
    maps = crp.conditional_maps(tiny_classifier, tiny_images, TARGET, every)  # [B, C, H, W]
    full = _lrp(tiny_classifier, tiny_images, TARGET)
    assert full.abs().max() > 0
    torch.testing.assert_close(maps.sum(dim=1), full, rtol=1e-4, atol=1e-5 * full.abs().max().item())
    assert not torch.allclose(maps[:, 0], maps[:, 1])  # the views really are different


def test_single_concepts_match_zennit_crp(crp, tiny_classifier, tiny_images):
    from crp.attribution import CondAttribution

    model = copy.deepcopy(tiny_classifier)
    layer = module_name(model, model.cam_layer)
    channels = torch.tensor([[3, 5], [0, 7], [1, 2], [6, 4]])
    ours = crp.conditional_maps(model, tiny_images, TARGET, channels)
    attribution = CondAttribution(model, no_param_grad=False)
    conditions = [{"y": [int(t)], layer: [int(c)]} for t, row in zip(TARGET, channels) for c in row]
    data = tiny_images.repeat_interleave(2, 0).requires_grad_(True)
    theirs = attribution(data, conditions, lrp_composite()).heatmap.view(4, 2, 16, 16)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6 * theirs.abs().max().item())


def test_concept_sets_are_deterministic_distinct_and_most_relevant(crp, tiny_classifier):
    from crp.attribution import CondAttribution

    data = _data()
    again = explainers.get("crp")(k=K, images_per_class=6, max_batch=7)  # other chunking, same sets
    again.setup(tiny_classifier, data, None)
    assert crp.concepts_ == again.concepts_
    assert sorted(crp.concepts_) == list(range(NUM_CLASSES))
    for channels in crp.concepts_.values():
        assert len(channels) == K and len(set(channels)) == K
    # independent reference: zennit-crp's recorded layer relevance, mean per class, top-k
    model = copy.deepcopy(tiny_classifier)
    layer = module_name(model, model.cam_layer)
    x = model.normalize(data.train.images[:18]).requires_grad_(True)
    y = data.train.labels[:18]
    attr = CondAttribution(model, no_param_grad=False)(
        x, [{"y": [int(t)]} for t in y], lrp_composite(), record_layer=[layer])
    rel = attr.relevances[layer].sum(dim=(2, 3))
    for c in range(NUM_CLASSES):
        top = rel[y == c].mean(0).topk(K).indices.tolist()
        assert crp.concepts_[c] == top


def test_concept_scores(crp, tiny_classifier, tiny_images):
    scores = crp.concept_scores(tiny_classifier, tiny_images, TARGET)
    assert scores.shape == (4, K)
    full = torch.ones(4, 16, 16, dtype=torch.bool)
    torch.testing.assert_close(crp.concept_scores_in_region(tiny_classifier, tiny_images, TARGET, full), scores)
    left = torch.zeros(4, 16, 16, dtype=torch.bool)
    left[..., :8] = True
    a = crp.concept_scores_in_region(tiny_classifier, tiny_images, TARGET, left)
    b = crp.concept_scores_in_region(tiny_classifier, tiny_images, TARGET, ~left)
    torch.testing.assert_close(a + b, scores, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(a, scores)


def test_views_are_the_target_class_concepts(crp, tiny_classifier, tiny_images):
    maps = crp.explain(tiny_classifier, tiny_images, TARGET)
    assert maps.shape == (4, K, 16, 16)
    expected = torch.tensor([crp.concepts_[int(t)] for t in TARGET])
    ref = crp.conditional_maps(tiny_classifier, tiny_images, TARGET, expected)
    torch.testing.assert_close(maps, ref)  # view v = concept v of the target's class set


def test_missing_setup_and_options(tiny_classifier, tiny_images):
    e = explainers.get("crp")(k=K)
    with pytest.raises(RuntimeError, match="setup"):
        e.explain(tiny_classifier, tiny_images, TARGET)
    assert e.options == {"k": K, "layer": None, "images_per_class": 64, "max_batch": 256}


@pytest.mark.parametrize("max_batch", [256, 6])  # one pass, and chunks of 1 image x 4 views
def test_batched_concepts_equal_one_masked_backward_per_view(tiny_classifier, tiny_images, max_batch):
    """One forward, one backward to the layer, one view-batched backward = the B*k repeated-image
    backward with the mask in a hook (the formulation before batching, kept as the reference)."""
    e = explainers.get("crp")(k=K, max_batch=max_batch)
    n_ch = tiny_classifier.cam_layer.conv2.out_channels
    g = torch.Generator().manual_seed(0)
    channels = torch.stack([torch.randperm(n_ch, generator=g)[:K] for _ in range(len(tiny_images))])
    fast = e.conditional_maps(tiny_classifier, tiny_images, TARGET, channels)
    ref = e.conditional_maps_reference(tiny_classifier, tiny_images, TARGET, channels)
    assert fast.shape == ref.shape == (4, K, 16, 16) and ref.abs().max() > 0
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6 * ref.abs().max().item())
