"""PRP's prototype rule by hand, conservation, batching against a reference loop, and SpRAy-LRP of a ProtoPNet."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from zennit.core import Composite

from hansbench.methods.explainers import _zennit
from hansbench.methods.explainers.prp import (
    PRP,
    ProtoPNetLRP,
    PrototypeRule,
    class_prototype_views,
    prototype_relevance,
    prp_composite,
)
from hansbench.models.backbones import FeatureBackbone
from hansbench.models.protopnet import ProtoPNet, PrototypeLayer
from hansbench.testing import prp_reference_loop

TARGET = torch.tensor([0, 1, 2, 1])


def test_prototype_rule_hand_computed():
    # D = 2, 2x2 latent, one prototype p = (1, 0); rule epsilon 0.5 so that gamma is readable.
    z = torch.tensor([[[[0.0, 1.0], [2.0, 0.5]], [[0.0, 0.5], [2.0, 0.5]]]])  # [1, 2, 2, 2]
    layer = PrototypeLayer(1, 2)
    with torch.no_grad():
        layer.prototypes.copy_(torch.tensor([1.0, 0.0]).view(1, 2, 1, 1))
    net = nn.Sequential(layer, nn.AdaptiveMaxPool2d(1))
    composite = Composite(module_map=lambda ctx, name, m: PrototypeRule(0.5) if isinstance(m, PrototypeLayer) else None)
    with composite.context(net):
        zg = z.clone().requires_grad_(True)
        s = net(zg)
        (rel,) = torch.autograd.grad(s, zg, s.detach())  # start R = s
    # distances: (0,0) 1, (0,1) 0.25 (winner), (1,0) 5, (1,1) 0.5; per channel at (0,1): (0, 0.25)
    score = math.log((0.25 + 1) / (0.25 + 1e-4))
    gamma = torch.tensor([1 / (0 + 0.5), 1 / (0.25 + 0.5)])  # (2, 4/3)
    expected = torch.zeros(1, 2, 2, 2)
    expected[0, :, 0, 1] = gamma / (gamma.sum() + 0.5) * score  # (12/23, 8/23) * s
    assert s.item() == pytest.approx(score, rel=1e-5)
    torch.testing.assert_close(rel, expected, rtol=1e-5, atol=1e-7)
    # conservation of this layer: sum_c R_c = R * sum(gamma) / (sum(gamma) + eps) = s * 20/23
    assert rel.sum().item() == pytest.approx(score * 20 / 23, rel=1e-5)


def test_prototype_rule_conserves_and_matches_dense_formula():
    g = torch.Generator().manual_seed(0)
    z = torch.rand(3, 5, 4, 4, generator=g)
    protos = torch.rand(6, 5, 1, 1, generator=g)
    rel = torch.randn(3, 6, 4, 4, generator=g) * (torch.rand(3, 6, 4, 4, generator=g) > 0.5)
    eps = 1e-3
    out = prototype_relevance(z, protos, rel, eps)
    # straightforward reference: loop over images, prototypes and positions
    ref = torch.zeros_like(z)
    lost = 0.0
    for b in range(3):
        for m in range(6):
            for i in range(4):
                for j in range(4):
                    gamma = 1 / ((z[b, :, i, j] - protos[m, :, 0, 0]) ** 2 + eps)
                    ref[b, :, i, j] += gamma / (gamma.sum() + eps) * rel[b, m, i, j]
                    lost += (rel[b, m, i, j] * eps / (gamma.sum() + eps)).item()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert out.sum().item() == pytest.approx(rel.sum().item() - lost, rel=1e-5, abs=1e-6)
    # chunking over prototypes (memory bound) gives the same result
    torch.testing.assert_close(prototype_relevance(z, protos, rel, eps, max_elements=200), out, rtol=1e-5, atol=1e-6)


def _bias_free_protopnet() -> ProtoPNet:
    """Bias-free z+ chain: conv/ReLU backbone without BatchNorm, add-on with |weights| and zero bias."""
    torch.manual_seed(3)
    layers = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False),
        nn.ReLU(),
    )
    net = ProtoPNet(FeatureBackbone(layers, 8), 2, (0.5,) * 3, (0.25,) * 3, prototypes_per_class=2, prototype_dim=6)
    with torch.no_grad():
        for conv in (net.add_on[0], net.add_on[2]):
            conv.weight.abs_()
            conv.bias.zero_()
    return net.eval()


def test_prp_conserves_relevance_on_bias_free_chain(tiny_images):
    net = _bias_free_protopnet()
    target = torch.tensor([0, 1, 1, 0])
    maps = PRP().explain(net, tiny_images, target)  # start R = s_m; eps = 1e-12 loses nothing measurable
    views = class_prototype_views(net, target)
    scores = net.scores(tiny_images).gather(1, views).detach()
    torch.testing.assert_close(maps.sum(dim=(-1, -2)), scores, rtol=1e-4, atol=1e-5)


def test_prp_batch_equals_prp_reference_loop(tiny_protopnet, tiny_images):
    maps = PRP().explain(tiny_protopnet, tiny_images, TARGET)
    torch.testing.assert_close(maps, prp_reference_loop(tiny_protopnet, tiny_images, TARGET), rtol=1e-4, atol=1e-6)
    assert maps.abs().sum() > 0


def test_prp_pads_pruned_prototypes_with_zero_maps(tiny_protopnet, tiny_images):
    tiny_protopnet.prototype_mask[1] = 0  # class 0 keeps prototypes 0 and 2
    views = class_prototype_views(tiny_protopnet, TARGET)
    assert views[0].tolist() == [0, 2, -1] and views[1].tolist() == [3, 4, 5]
    maps = PRP().explain(tiny_protopnet, tiny_images, TARGET)
    assert maps.shape == (4, 3, 16, 16)
    assert maps[0, 2].abs().sum() == 0 and maps[0, 1].abs().sum() > 0
    torch.testing.assert_close(maps, prp_reference_loop(tiny_protopnet, tiny_images, TARGET), rtol=1e-4, atol=1e-6)


def test_prp_start_one_is_a_rescaling(tiny_protopnet, tiny_images):
    by_score = PRP().explain(tiny_protopnet, tiny_images, TARGET)
    by_one = PRP(start="one").explain(tiny_protopnet, tiny_images, TARGET)
    scores = tiny_protopnet.scores(tiny_images).gather(1, class_prototype_views(tiny_protopnet, TARGET)).detach()
    torch.testing.assert_close(by_one * scores[..., None, None], by_score, rtol=1e-4, atol=1e-6)


def test_protopnet_lrp_is_epsilon_weighted_sum_of_prp(tiny_protopnet, tiny_images):
    """App. B by linearity: epsilon through the last layer gives R_j = w_cj s_j (x logit/(logit+eps)), then PRP."""
    model = tiny_protopnet
    lrp = ProtoPNetLRP().explain(model, tiny_images, TARGET)[:, 0]
    logit = model(tiny_images).gather(1, TARGET.view(-1, 1)).detach()
    ratio = logit / (logit + 1e-6 * logit.sign())
    expected = torch.zeros_like(lrp)
    for k in range(model.num_classes):  # PRP of every class's prototypes covers all prototypes
        cls = torch.full_like(TARGET, k)
        prp = PRP().explain(model, tiny_images, cls)  # [B, V, H, W], start s_j
        w = model.last_layer.weight.detach()[TARGET][:, class_prototype_views(model, cls)[0]]  # [B, V]
        expected += (w[..., None, None] * prp).sum(1)
    torch.testing.assert_close(lrp, expected * ratio[..., None], rtol=1e-4, atol=1e-6)


def test_prp_composite_rules(tiny_protopnet):
    composite = prp_composite(tiny_protopnet)
    with composite.context(tiny_protopnet):
        ctx: dict = {}
        rules = {name: composite.module_map(ctx, name, m) for name, m in tiny_protopnet.named_modules()}
    assert isinstance(rules["prototype_layer"], PrototypeRule)
    assert type(rules["backbone.layers.0"]).__name__ == "ZBox"
    assert isinstance(rules["add_on.0"], _zennit.ZPlusIgnoreBias)
    assert type(rules["add_on.3"]).__name__ == "Pass"  # Sigmoid
    assert type(rules["last_layer"]).__name__ == "Epsilon"
    assert rules["pool"] is None  # max-pool: plain gradient = winner takes all
