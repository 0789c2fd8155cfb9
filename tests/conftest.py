"""Shared tiny fixtures: models small enough that every test runs in seconds on 2 CPU cores."""

from __future__ import annotations

import pytest
import torch

from hansbench.models.classifier import Classifier
from hansbench.models.protopnet import ProtoPNet
from hansbench.testing import tiny_model

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
NUM_CLASSES = 3


@pytest.fixture
def tiny_classifier() -> Classifier:
    return tiny_model("classifier", num_classes=NUM_CLASSES)


@pytest.fixture
def tiny_protopnet() -> ProtoPNet:
    return tiny_model("protopnet", num_classes=NUM_CLASSES, prototypes_per_class=3, prototype_dim=8)


@pytest.fixture
def tiny_images() -> torch.Tensor:
    """Four normalised 16x16 RGB images."""
    g = torch.Generator().manual_seed(1)
    return (torch.rand(4, 3, 16, 16, generator=g) - 0.5) / 0.25


@pytest.fixture
def devices() -> list[torch.device]:
    """CPU, plus CUDA where present (for CPU/CUDA agreement tests)."""
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
