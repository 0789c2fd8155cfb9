"""Grad-CAM, Integrated Gradients and the random baseline: hand computations, completeness, seeding.

The explainer contract is in test_explainer_contract.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from hansbench.registry import explainers

TARGET = torch.tensor([0, 1, 2, 1])


def _hand_gradcam(model, x, target):
    """ReLU(sum_c alpha_c A_c), alpha = spatial mean of d logit / d A, bilinearly upsampled."""
    store = {}
    h = model.cam_layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        logits = model(x)
    finally:
        h.remove()
    a = store["a"]
    (g,) = torch.autograd.grad(logits[torch.arange(len(x)), target].sum(), a)
    cam = F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False).detach()


@pytest.mark.parametrize("kind", ["classifier", "protopnet"])
def test_gradcam_matches_hand_computation(kind, tiny_classifier, tiny_protopnet, tiny_images):
    model = tiny_classifier if kind == "classifier" else tiny_protopnet
    maps = explainers.get("gradcam")().explain(model, tiny_images, TARGET)
    torch.testing.assert_close(maps, _hand_gradcam(model, tiny_images, TARGET), rtol=1e-4, atol=1e-7)
    assert (maps >= 0).all()


def test_ig_completeness(tiny_classifier, tiny_images):
    model = copy.deepcopy(tiny_classifier)
    with torch.no_grad():
        model.fc.weight.mul_(50)  # logit differences well above float noise
    ig = explainers.get("integrated-gradients")(n_steps=64, internal_batch_size=64)
    attr, delta = ig.attribute(model, tiny_images, TARGET, return_delta=True)
    with torch.no_grad():
        diff = (model(tiny_images) - model(torch.zeros_like(tiny_images)))[torch.arange(4), TARGET]
    assert diff.abs().min() > 0.1
    assert (delta.abs() <= 0.005 * diff.abs()).all(), (delta, diff)
    maps = ig.explain(model, tiny_images, TARGET)
    torch.testing.assert_close(maps, attr.sum(dim=1, keepdim=True))  # channels summed
    torch.testing.assert_close(maps.sum(dim=(1, 2, 3)), diff, rtol=0.005, atol=1e-4)


def test_ig_internal_batch_size_does_not_change_maps(tiny_classifier, tiny_images):
    a = explainers.get("integrated-gradients")(n_steps=8, internal_batch_size=5).explain(tiny_classifier, tiny_images, TARGET)
    b = explainers.get("integrated-gradients")(n_steps=8, internal_batch_size=1000).explain(tiny_classifier, tiny_images, TARGET)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_random_is_seeded_content_hashed_uniform(tiny_classifier, tiny_images):
    r0, r1 = explainers.get("random")(seed=0), explainers.get("random")(seed=1)
    a = r0.explain(tiny_classifier, tiny_images, TARGET)
    assert not torch.equal(a, r1.explain(tiny_classifier, tiny_images, TARGET))  # the seed matters
    assert not torch.equal(a[0], a[1])  # different images, different maps
    flipped = r0.explain(tiny_classifier, tiny_images.flip(0), TARGET)
    assert torch.equal(flipped, a.flip(0))  # a map depends on its image only, not on its batch position
    changed = tiny_images.clone()
    changed[0, 0, 0, 0] += 1e-3
    assert not torch.equal(r0.explain(tiny_classifier, changed, TARGET)[0], a[0])
    big = r0.explain(tiny_classifier, torch.randn(16, 3, 32, 32), torch.zeros(16, dtype=torch.long))
    assert 0 <= big.min() and big.max() < 1
    assert abs(big.mean().item() - 0.5) < 0.01 and abs(big.std().item() - (1 / 12) ** 0.5) < 0.01
    hist = torch.histc(big, bins=10, min=0, max=1) / big.numel()
    assert (hist - 0.1).abs().max() < 0.01
