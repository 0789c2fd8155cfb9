"""LRP-CMP conserves relevance through a ResNet whose BatchNorms zennit's canonizer merged into the convs.

Why it must hold: every rule of the composite is conservative when the bias is left out. z^B on the
first conv (its bias terms cancel: b - b+ - b- = 0), z+ with the bias ignored on every other conv
(merged BatchNorm gives them biases), residual sums and average pooling split in proportion (Norm),
ReLU and max-pool pass relevance on. Only the dense layer's epsilon rule keeps its bias in the
denominator, so the last layer's bias absorbs its share: the input relevance sums to the explained
logit minus that class's bias, up to what units without a positive input term absorb: z+ can send
a unit's relevance only to its positive contributions, so a unit whose output comes from its merged
bias (or from negative terms) alone keeps it. Measured here: 0.1 % (small ResNet) and 0.015 %
(ResNet-18), the same in float64 and with the 1e-6 stabilisers made 1e-12, so it is structural, not
rounding; checked to 0.5 %. Two negative controls show the check can fail:
zennit's stock z+ (positive bias in the denominator: 10-40 % off) and the composite without the
canonizer (BatchNorm's scale then multiplies relevance).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from hansbench.methods.explainers import _zennit
from hansbench.models.backbones import build_backbone
from hansbench.models.classifier import Classifier, InputNormalization
from hansbench.registry import explainers

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _with_batchnorm_statistics(model: nn.Module, size: int) -> nn.Module:
    """Non-trivial running statistics, scales and shifts, so that merging BatchNorm matters."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.2, 0.2, generator=g)
        model.train()
        model(torch.randn(16, 3, size, size, generator=g))
    return model.eval()


class TorchvisionResNet(nn.Module):
    """torchvision's ResNet-18 (max-pool, downsampling shortcuts) dressed as a hansbench classifier."""

    kind = "classifier"

    def __init__(self):
        super().__init__()
        self.input_norm = InputNormalization(MEAN, STD)
        self.net = resnet18(num_classes=5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @property
    def last_layer(self) -> nn.Linear:
        return self.net.fc


def _small_resnet() -> nn.Module:
    torch.manual_seed(0)
    model = Classifier(build_backbone("small-resnet", widths=(8, 16, 16)), 5, MEAN, STD)
    model.last_layer = model.fc
    return _with_batchnorm_statistics(model, 24)


def _torchvision_resnet() -> nn.Module:
    torch.manual_seed(0)
    return _with_batchnorm_statistics(TorchvisionResNet(), 32)


MODELS = {"small-resnet": (_small_resnet, 24), "torchvision-resnet18": (_torchvision_resnet, 32)}


def _setting(name: str):
    build, size = MODELS[name]
    model = build()
    x = torch.randn(6, 3, size, size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = model(x)
    target = logits.argmax(1)
    explained = logits.gather(1, target[:, None]).squeeze(1) - model.last_layer.bias[target].detach()
    return model, x, target, explained


@pytest.mark.parametrize("name", MODELS)
def test_input_relevance_sums_to_the_logit_minus_the_dense_bias(name):
    model, x, target, explained = _setting(name)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    maps = explainers.get("lrp")(ignore_bias=True, epsilon=1e-9).explain(model, x, target)
    assert maps.shape == (6, 1, *x.shape[-2:])
    torch.testing.assert_close(maps.sum(dim=(1, 2, 3)), explained, rtol=5e-3, atol=1e-5)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items()), "the merge is undone afterwards"


@pytest.mark.parametrize("name", MODELS)
def test_the_check_fails_where_conservation_does_not_hold(name):
    """Stock z+ absorbs relevance in the merged biases; without merging, BatchNorm rescales it."""
    model, x, target, explained = _setting(name)
    stock = explainers.get("lrp")(ignore_bias=False, epsilon=1e-9).explain(model, x, target).sum(dim=(1, 2, 3))
    assert not torch.allclose(stock, explained, rtol=5e-2, atol=1e-3)

    low, high = _zennit.zbox_bounds(model)
    from zennit.composites import SpecialFirstLayerMapComposite
    from zennit.rules import ZBox
    from zennit.types import Convolution

    unmerged = SpecialFirstLayerMapComposite(layer_map=_zennit.lrp_cmp_layer_map(True, 1e-9),
                                             first_map=[(Convolution, ZBox(low, high))], canonizers=[])
    rel = _zennit.input_relevance(model, unmerged, model, x, _zennit.one_hot_logit(target))
    assert not torch.allclose(rel.sum(dim=(1, 2)), explained, rtol=5e-2, atol=1e-3)
