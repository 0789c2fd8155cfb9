"""The device is chosen once per run, here; everything else follows the model's device."""

from __future__ import annotations

import torch


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else the CPU; a named device is checked to exist."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {spec!r} requested but CUDA is not available; use device = 'auto' or 'cpu'")
    return device
