"""LRP-CMP and the zennit presets: rule per layer, agreement with zennit run directly, conservation.

The explainer contract (shape, determinism, batching, max_batch, model untouched, kind check, CUDA) is in
test_explainer_contract.py.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18
from zennit.attribution import Gradient
from zennit.composites import LAYER_MAP_BASE, EpsilonGammaBox, EpsilonPlusFlat, SpecialFirstLayerMapComposite
from zennit.core import Composite
from zennit.rules import Epsilon, Norm, Pass, ZBox, ZPlus
from zennit.torchvision import ResNetCanonizer
from zennit.types import Convolution

from hansbench.methods.explainers import _zennit
from hansbench.methods.explainers.lrp import LRP
from hansbench.models.classifier import InputNormalization
from hansbench.registry import explainers


class TorchvisionClassifier(nn.Module):
    """A torchvision ResNet-18 dressed as a hansbench classifier (kind, input_norm)."""

    kind = "classifier"

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.input_norm = InputNormalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        self.net = resnet18(num_classes=5)
        self.net.train()
        with torch.no_grad():  # non-trivial BatchNorm statistics
            self.net(torch.randn(4, 3, 32, 32))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.fixture(scope="module")
def resnet():
    return TorchvisionClassifier()


@pytest.fixture(scope="module")
def resnet_input():
    return torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))


def _rules(composite: Composite, model: nn.Module) -> dict:
    with composite.context(model):
        ctx: dict = {}
        return {name: composite.module_map(ctx, name, m) for name, m in model.named_modules()}


def test_lrp_cmp_maps_each_layer_type_to_its_rule(resnet):
    rules = _rules(LRP().composite(resnet), resnet)
    assert isinstance(rules["net.conv1"], ZBox)  # first conv: z^B
    convs = [n for n, m in resnet.named_modules() if isinstance(m, nn.Conv2d) and n != "net.conv1"]
    assert convs and all(isinstance(rules[n], _zennit.ZPlusIgnoreBias) for n in convs)  # z+, bias ignored
    assert isinstance(rules["net.fc"], Epsilon)  # dense: epsilon
    assert isinstance(rules["net.relu"], Pass) and isinstance(rules["net.layer1.0.relu"], Pass)
    assert isinstance(rules["net.avgpool"], Norm)
    assert isinstance(rules["net.layer1.0.canonizer_sum"], Norm)  # residual sum split proportionally
    assert all(rules[n] is None for n, m in resnet.named_modules() if isinstance(m, nn.BatchNorm2d))  # merged
    assert type(LRP(ignore_bias=False).composite(resnet).layer_map[3][1]) is ZPlus


def _zennit_direct(model, x, target, composite):
    with Gradient(model=model, composite=composite) as attributor:
        onehot = torch.eye(5)[target]
        _, rel = attributor(x, lambda out: out * onehot)
    return rel.sum(1, keepdim=True)


def test_lrp_equals_zennit_run_directly(resnet, resnet_input):
    low, high = resnet.input_norm.bounds()
    target = torch.tensor([3])
    stock = SpecialFirstLayerMapComposite(
        layer_map=LAYER_MAP_BASE + [(Convolution, ZPlus()), (nn.Linear, Epsilon())],
        first_map=[(Convolution, ZBox(low, high))],
        canonizers=[ResNetCanonizer()],
    )
    ours = LRP(ignore_bias=False).explain(resnet, resnet_input, target)
    ref = _zennit_direct(resnet, resnet_input, target, stock)
    assert ref.abs().sum() > 0
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(LRP().explain(resnet, resnet_input, target), ref)  # bias ignored changes the map


@pytest.mark.parametrize(
    "name, stock",
    [
        ("lrp-epsilon-plus-flat", lambda m: EpsilonPlusFlat(canonizers=[ResNetCanonizer()])),
        ("lrp-epsilon-gamma-box", lambda m: EpsilonGammaBox(*m.input_norm.bounds(), canonizers=[ResNetCanonizer()])),
    ],
)
def test_presets_equal_zennit_run_directly(name, stock, resnet, resnet_input):
    target = torch.tensor([1])
    ours = explainers.get(name)().explain(resnet, resnet_input, target)
    torch.testing.assert_close(ours, _zennit_direct(resnet, resnet_input, target, stock(resnet)), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("signed_input", [False, True])  # the x>=0 fast path and the two-term path
def test_zplus_ignore_bias_is_zennit_zplus_without_bias(signed_input):
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 5, 5) if signed_input else torch.rand(2, 3, 5, 5)
    start = torch.rand(2, 4, 5, 5)  # the same upper relevance for every rule

    def relevance(rule, bias):
        with torch.no_grad():
            conv.bias.fill_(bias)
        composite = Composite(module_map=lambda ctx, name, m: rule if m is conv else None)
        with composite.context(conv):
            xg = x.clone().requires_grad_(True)
            out = conv(xg)
            (r,) = torch.autograd.grad(out, xg, start)
        return r

    ours = relevance(_zennit.ZPlusIgnoreBias(), 0.7)
    torch.testing.assert_close(ours, relevance(ZPlus(), 0.0), rtol=1e-5, atol=1e-7)
    assert not torch.allclose(relevance(ZPlus(), 0.7), ours)  # zennit's ZPlus lets the bias absorb relevance


class BiasFreeChain(nn.Module):
    kind = "classifier"

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.input_norm = InputNormalization((0.5,) * 3, (0.25,) * 3)
        self.layers = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(6, 6, 3, stride=2, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(6, 4, 3, padding=1, bias=False),
        )

    def forward(self, x):
        return self.layers(x)


def test_lrp_cmp_conserves_relevance_on_bias_free_chain(tiny_images):
    model = BiasFreeChain()
    out = model(tiny_images).detach()
    flat = out.flatten(1)
    unit = flat.argmax(1)  # the most positive output unit of each image

    def start(o, rows):
        s = torch.zeros_like(o.flatten(1))
        s[torch.arange(len(s)), unit[rows]] = flat[rows].max(1).values
        return s.view_as(o)

    rel = _zennit.input_relevance(model, _zennit.lrp_cmp_composite(model), model, tiny_images, start)
    torch.testing.assert_close(rel.sum(dim=(1, 2)), flat.max(1).values, rtol=1e-4, atol=1e-6)
