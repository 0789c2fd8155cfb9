"""Convolutional feature extractors: a small ResNet for the CPU default, torchvision ones for larger suites.

Every backbone is an ``nn.Module`` mapping ``[B, 3, H, W]`` to a feature map
``[B, out_channels, h, w]`` and exposes ``cam_layer`` (its last block, for Grad-CAM).
ResNets are built from torchvision's ``BasicBlock`` so zennit's ``ResNetCanonizer``
recognises their residual additions. A plugin backbone is a factory registered with
``@backbones.register("name")`` (from :mod:`hansbench.registry`) whose keyword arguments are the
suite's ``backbone_options``.

User weights (``weights = "path"``) load strictly: a state dict of the backbone itself or of the
full torchvision net (its unused classifier head may be missing), every other key mismatch, and
every shape mismatch, is refused in one line naming the missing and unexpected keys. Suite
validation calls :func:`check_weights`, which compares keys and shapes on the meta device (no
weights are read into memory, no network is built for real), so a bad file fails before any work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

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
        """The last block: where Grad-CAM (and CRP by default) look."""
        return self.layers[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps ``[B, out_channels, h, w]``."""
        return self.layers(x)


def _stage(in_ch: int, out_ch: int, stride: int) -> BasicBlock:
    down = None
    if stride != 1 or in_ch != out_ch:
        down = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))
    return BasicBlock(in_ch, out_ch, stride=stride, downsample=down)


def _small_resnet(widths: tuple[int, ...] = (16, 32, 64)) -> tuple[FeatureBackbone, None]:
    layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    in_ch = widths[0]
    for i, w in enumerate(widths):
        layers.append(_stage(in_ch, w, 1 if i == 0 else 2))
        in_ch = w
    return FeatureBackbone(nn.Sequential(*layers), widths[-1]), None


def _torchvision_resnet(factory) -> tuple[FeatureBackbone, nn.Module]:
    net = factory(weights=None)
    layers = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)
    return FeatureBackbone(layers, net.fc.in_features), net  # the Sequential shares its modules with net


def _vgg16() -> tuple[FeatureBackbone, nn.Module]:
    net = vgg16(weights=None)
    return FeatureBackbone(nn.Sequential(*list(net.features)[:-1]), 512), net


# registered name -> (backbone, full torchvision net or None) without weights, for check_weights
_STRUCTURES: dict[str, Callable[..., tuple[FeatureBackbone, nn.Module | None]]] = {
    "small-resnet": _small_resnet,
    "resnet18": lambda: _torchvision_resnet(resnet18),
    "resnet34": lambda: _torchvision_resnet(resnet34),
    "vgg16": _vgg16,
}


@backbones.register("small-resnet")
def small_resnet(widths: tuple[int, ...] = (16, 32, 64), weights: str | None = None) -> FeatureBackbone:
    """3x3 stem + one BasicBlock per stage (strides 1, 2, 2, ...): 1/4 resolution, CPU-sized."""
    return _load(*_small_resnet(widths), weights)


@backbones.register("resnet18")
def resnet18_backbone(weights: str | None = None) -> FeatureBackbone:
    """torchvision ResNet-18 features (random init, or a state dict from ``weights``)."""
    return _load(*_STRUCTURES["resnet18"](), weights)


@backbones.register("resnet34")
def resnet34_backbone(weights: str | None = None) -> FeatureBackbone:
    """torchvision ResNet-34 features (random init, or a state dict from ``weights``)."""
    return _load(*_STRUCTURES["resnet34"](), weights)


@backbones.register("vgg16")
def vgg16_backbone(weights: str | None = None) -> FeatureBackbone:
    """torchvision VGG-16 conv features without the last max-pool (random init, or a state dict from ``weights``)."""
    return _load(*_vgg16(), weights)


def _read_state(path: str, map_location: str = "cpu") -> dict:
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"backbone weights {str(p)!r} not found; give the path of a saved state dict")
    state = torch.load(p, map_location=map_location, weights_only=True)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"backbone weights {str(p)!r} are not a state dict (name -> tensor); save "
                         "model.state_dict() (a checkpoint's nested 'state_dict' entry, not the checkpoint)")
    return dict(state)


def _keys(keys: list[str], n: int = 20) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")


def _match(state: Mapping[str, torch.Tensor], backbone: FeatureBackbone, full: nn.Module | None,
           path: str) -> nn.Module:
    """The module ``state`` is the state dict of (the backbone, or the full torchvision net), or one
    line naming the missing, unexpected and mis-shaped keys of the closer candidate."""
    candidates = [backbone] + ([full] if full is not None else [])
    target = max(candidates, key=lambda m: len(set(state) & set(m.state_dict())))
    expected = target.state_dict(keep_vars=True)
    used = {id(t) for t in backbone.state_dict(keep_vars=True).values()}
    required = {k for k, t in expected.items() if id(t) in used}  # a full net's unused head may be missing
    missing = sorted(required - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}" for k in set(state) & set(expected)
                    if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or shapes:
        what = "this backbone's" if target is backbone else f"a full torchvision {type(full).__name__}'s"
        parts = [f"missing keys ({len(missing)}): {_keys(missing)}" if missing else "",
                 f"unexpected keys ({len(unexpected)}): {_keys(unexpected)}" if unexpected else "",
                 f"shape mismatches ({len(shapes)}): {_keys(shapes, 3)}" if shapes else ""]
        raise ValueError(f"backbone weights {path!r} do not match {what} state dict: "
                         f"{'; '.join(p for p in parts if p)}; save the state dict of this backbone (or of the full "
                         "torchvision net) with the same architecture options")
    return target


def _load(backbone: FeatureBackbone, full: nn.Module | None, weights: str | None) -> FeatureBackbone:
    """Load user weights strictly: a state dict of this backbone, or of the full torchvision net."""
    if not weights:
        return backbone
    state = _read_state(weights)
    target = _match(state, backbone, full, weights)
    target.load_state_dict(state, strict=target is backbone)  # keys and shapes checked; a full net's head may be absent
    return backbone


def check_weights(name: str, options: Mapping[str, Any]) -> None:
    """Refuse ``options["weights"]`` of built-in backbone ``name`` before any work (suite validation).

    Compares the file's keys and shapes (read on the meta device: no tensor data) with the
    backbone built on the meta device; the same one-line error as loading. A plugin backbone
    (or a built-in name re-registered by a plugin) loads its weights its own way: not checked.
    """
    weights = options.get("weights")
    if not weights or name not in _STRUCTURES or backbones.get(name) is not _FACTORIES.get(name):
        return
    state = _read_state(weights, map_location="meta")
    rest = {k: v for k, v in options.items() if k != "weights"}
    with torch.device("meta"):
        backbone, full = _STRUCTURES[name](**rest)
    _match(state, backbone, full, weights)


_FACTORIES = {"small-resnet": small_resnet, "resnet18": resnet18_backbone, "resnet34": resnet34_backbone,
              "vgg16": vgg16_backbone}


def build_backbone(name: str, **options) -> FeatureBackbone:
    """Build a registered backbone by name (unknown names list the known ones)."""
    return backbones.get(name)(**options)
