"""The plain classifier: backbone -> global average pool -> linear."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class InputNormalization(nn.Module):
    """Holds the input mean/std; models take normalised input, this converts and bounds it."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        """``(x01 - mean) / std`` per channel."""
        return (x01 - self.mean) / self.std

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel smallest and largest normalised pixel values ([1, C, 1, 1]), for LRP's z^B rule."""
        return (0 - self.mean) / self.std, (1 - self.mean) / self.std


class ImageModel(nn.Module):
    """What every model kind shares: normalised input, a backbone, and its Grad-CAM layer.

    ``kind``: the registered model kind's name. ``has_prototypes``: the model has ProtoPNet's
    prototype interface (``scores``, ``prototypes_of``, ``last_layer``); code that needs it asks
    this, never the kind's name.
    """

    kind = ""
    has_prototypes = False

    def __init__(self, backbone: nn.Module, num_classes: int, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.input_norm = InputNormalization(mean, std)
        self.backbone = backbone
        self.num_classes = num_classes

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        """[0, 1] images -> the model's normalised input space."""
        return self.input_norm(x01)

    @property
    def cam_layer(self) -> nn.Module:
        """The backbone's Grad-CAM layer."""
        return self.backbone.cam_layer

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's feature maps of normalised images."""
        return self.backbone(x)


class Classifier(ImageModel):
    """``forward`` takes normalised images and returns logits ``[B, K]``."""

    kind = "classifier"

    def __init__(self, backbone: nn.Module, num_classes: int, mean: Sequence[float], std: Sequence[float]):
        super().__init__(backbone, num_classes, mean, std)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(backbone.out_channels, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations ``[B, D]`` (activation clustering, ClaDec)."""
        return self.flatten(self.pool(self.backbone(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, K]`` of normalised images."""
        return self.fc(self.embed(x))
