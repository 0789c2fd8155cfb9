"""Shared tiny fixtures: models small enough that every test runs in seconds on 2 CPU cores."""

from __future__ import annotations

import pytest
import torch

from hansbench.models.backbones import build_backbone
from hansbench.models.classifier import Classifier
from hansbench.models.protopnet import ProtoPNet

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
NUM_CLASSES = 3


def _eval(model: torch.nn.Module) -> torch.nn.Module:
    """Give BatchNorm non-trivial statistics, then freeze in eval mode."""
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 16, 16))
    return model.eval()


@pytest.fixture
def tiny_classifier() -> Classifier:
    torch.manual_seed(0)
    return _eval(Classifier(build_backbone("small-resnet", widths=(8, 16)), NUM_CLASSES, MEAN, STD))


@pytest.fixture
def tiny_protopnet() -> ProtoPNet:
    torch.manual_seed(0)
    net = ProtoPNet(build_backbone("small-resnet", widths=(8, 16)), NUM_CLASSES, MEAN, STD,
                    prototypes_per_class=3, prototype_dim=8)
    return _eval(net)


@pytest.fixture
def tiny_images() -> torch.Tensor:
    """Four normalised 16x16 RGB images."""
    g = torch.Generator().manual_seed(1)
    return (torch.rand(4, 3, 16, 16, generator=g) - 0.5) / 0.25


@pytest.fixture
def devices() -> list[torch.device]:
    """CPU, plus CUDA where present (for CPU/CUDA agreement tests)."""
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
