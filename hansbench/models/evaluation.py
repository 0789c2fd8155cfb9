"""Prediction and accuracy on a split: batched, on the model's device, in eval mode (restored after)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hansbench.datasets.base import Split
from hansbench.models.modes import eval_mode

__all__ = ["accuracy", "predict"]


@torch.no_grad()
def predict(model: nn.Module, images01: torch.Tensor, *, device: torch.device | str, batch_size: int = 256
            ) -> torch.Tensor:
    """Logits ``[N, K]`` on the CPU for images in [0, 1]; runs in eval mode and restores the mode."""
    device = torch.device(device)
    with eval_mode(model):
        out = [model(model.normalize(images01[i:i + batch_size].to(device, non_blocking=True))).float().cpu()
               for i in range(0, len(images01), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, model.num_classes)


def accuracy(model: nn.Module, split: Split, *, device: torch.device | str, classes: Sequence[int] | None = None,
             labels: str = "labels", batch_size: int = 256) -> float:
    """Share of samples predicted as their ``labels`` (or ``true_labels``); with ``classes``, only the
    samples whose true class is among them (e.g. stop signs of the artifact test)."""
    if labels not in ("labels", "true_labels"):
        raise ValueError(f"labels must be 'labels' or 'true_labels', got {labels!r}")
    if classes is not None:
        keep = torch.isin(split.true_labels, torch.as_tensor(list(classes), dtype=split.true_labels.dtype))
        if not keep.any():
            raise ValueError(f"no sample of true class {list(classes)} in the split")
        split = split.subset(keep)
    if len(split) == 0:
        raise ValueError("accuracy of an empty split")
    pred = predict(model, split.images, device=device, batch_size=batch_size).argmax(dim=1)
    return (pred == getattr(split, labels)).float().mean().item()
