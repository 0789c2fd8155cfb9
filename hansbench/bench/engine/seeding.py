"""Seeding of the global RNGs before a node computes.

Nodes pass their own seeds to the code they call (``random_state``, generators); the global
RNGs of ``random``, NumPy and torch are seeded too, for third-party code that draws from
them, and cuDNN is put in its deterministic mode, so a node gives the same output each run.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed the global RNGs too, for third-party code that draws from them."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
