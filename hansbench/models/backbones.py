"""Convolutional feature extractors: a small ResNet for the CPU default, torchvision ones for larger suites.

Every backbone is an ``nn.Module`` mapping ``[B, 3, H, W]`` to a feature map
``[B, out_channels, h, w]`` and exposes ``cam_layer`` (its last block, for Grad-CAM).
ResNets are built from torchvision's ``BasicBlock`` so zennit's ``ResNetCanonizer``
recognises their residual additions. A plugin backbone is a factory registered with
``@backbones.register("name")`` (from :mod:`hansbench.registry`) whose keyword arguments are the
suite's ``backbone_options``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet18, resnet34, vgg16
from torchvision.models.resnet import BasicBlock

from hansbench.registry import backbones


class FeatureBackbone(nn.Module):
    """A sequential feature extractor with its output width and Grad-CAM layer."""

    def __init__(self, layers: nn.Sequential, out_channels: int):
        super().__init__()
        self.layers = layers
        self.out_channels = out_channels

    @property
    def cam_layer(self) -> nn.Module:
        return self.layers[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _stage(in_ch: int, out_ch: int, stride: int) -> BasicBlock:
    down = None
    if stride != 1 or in_ch != out_ch:
        down = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))
    return BasicBlock(in_ch, out_ch, stride=stride, downsample=down)


@backbones.register("small-resnet")
def small_resnet(widths: tuple[int, ...] = (16, 32, 64), weights: str | None = None) -> FeatureBackbone:
    """3x3 stem + one BasicBlock per stage (strides 1, 2, 2, ...): 1/4 resolution, CPU-sized."""
    layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    in_ch = widths[0]
    for i, w in enumerate(widths):
        layers.append(_stage(in_ch, w, 1 if i == 0 else 2))
        in_ch = w
    return _load(FeatureBackbone(nn.Sequential(*layers), widths[-1]), weights)


def _torchvision_resnet(factory, weights: str | None) -> FeatureBackbone:
    net = factory(weights=None)
    layers = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)
    return _load(FeatureBackbone(layers, net.fc.in_features), weights, prefix_from=net)


@backbones.register("resnet18")
def resnet18_backbone(weights: str | None = None) -> FeatureBackbone:
    """torchvision ResNet-18 features (random init, or a state dict from ``weights``)."""
    return _torchvision_resnet(resnet18, weights)


@backbones.register("resnet34")
def resnet34_backbone(weights: str | None = None) -> FeatureBackbone:
    """torchvision ResNet-34 features (random init, or a state dict from ``weights``)."""
    return _torchvision_resnet(resnet34, weights)


@backbones.register("vgg16")
def vgg16_backbone(weights: str | None = None) -> FeatureBackbone:
    """torchvision VGG-16 conv features without the last max-pool."""
    net = vgg16(weights=None)
    if weights:
        net.load_state_dict(_read_state(weights), strict=False)
    return FeatureBackbone(nn.Sequential(*list(net.features)[:-1]), 512)


def _read_state(path: str) -> dict:
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"backbone weights {str(p)!r} not found; give the path of a saved state dict")
    return torch.load(p, map_location="cpu", weights_only=True)


def _load(backbone: FeatureBackbone, weights: str | None, prefix_from: nn.Module | None = None) -> FeatureBackbone:
    """Load user weights: a state dict of this backbone, or of the full torchvision net."""
    if not weights:
        return backbone
    state = _read_state(weights)
    if prefix_from is not None and "conv1.weight" in state:  # a full torchvision ResNet state dict
        prefix_from.load_state_dict(state, strict=False)
        return backbone  # the Sequential shares its modules with prefix_from
    backbone.load_state_dict(state)
    return backbone


def build_backbone(name: str, **options) -> FeatureBackbone:
    """Build a registered backbone by name (unknown names list the known ones)."""
    return backbones.get(name)(**options)
