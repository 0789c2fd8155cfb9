"""Prototype pruning: ProtoPNet's own rule [C] and masking prototypes out of a model.

ProtoPNet prunes a prototype when fewer than ``threshold`` of its ``k`` nearest training patches
(one per image) come from its own class, then retrains the last layer
(:func:`hansbench.models.protopnet_training.retrain_last_layer`). The prototype-pruning metric uses
:func:`prune_prototypes` with prototypes chosen by an explanation method instead.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from hansbench.datasets.base import Split
from hansbench.models.modes import eval_mode
from hansbench.models.protopnet import ProtoPNet

__all__ = ["nearest_images", "protopnet_prune_candidates", "prune_prototypes"]


@torch.no_grad()
def nearest_images(model: ProtoPNet, images01: torch.Tensor, *, k: int, device: torch.device | str,
                   batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """For every prototype, the ``k`` images whose closest latent patch is nearest to it.

    Returns ``(distances, indices)``, both ``[P, k]`` on the CPU, nearest first. Batched with a
    running top-k, so memory stays ``O(P * (k + batch))``.
    """
    n = len(images01)
    if not 0 < k <= n:
        raise ValueError(f"k must be in 1..{n} (the number of images), got {k}")
    device = torch.device(device)
    best_d = best_i = None
    with eval_mode(model):
        for start in range(0, n, batch_size):
            x = images01[start:start + batch_size].to(device, non_blocking=True)
            d = model.min_distances(model.normalize(x)).t()  # [P, B]
            idx = torch.arange(start, start + len(x), device=d.device).expand_as(d)
            if best_d is not None:
                d, idx = torch.cat([best_d, d], dim=1), torch.cat([best_i, idx], dim=1)
            top = d.topk(min(k, d.shape[1]), dim=1, largest=False)  # sorted, nearest first
            best_d, best_i = top.values, idx.gather(1, top.indices)
    return best_d.cpu(), best_i.cpu()


def protopnet_prune_candidates(model: ProtoPNet, push_set: Split, *, k: int = 6, threshold: int = 3,
                               device: torch.device | str, batch_size: int = 128) -> torch.Tensor:
    """Indices of the (unpruned) prototypes that ProtoPNet's rule would prune [C].

    A prototype is a candidate when fewer than ``threshold`` of its ``k`` nearest training images
    (nearest patch per image) carry its class in ``push_set.labels``.
    """
    if not 0 <= threshold <= k:
        raise ValueError(f"threshold must be in 0..k={k}, got {threshold}")
    _, idx = nearest_images(model, push_set.images, k=k, device=device, batch_size=batch_size)
    proto_class = model.prototype_class_identity.argmax(dim=1).cpu()  # [P]
    own = (push_set.labels[idx] == proto_class[:, None]).sum(dim=1)  # [P]
    active = model.prototype_mask.cpu() > 0
    return torch.nonzero((own < threshold) & active).flatten()


def prune_prototypes(model: ProtoPNet, indices: Sequence[int] | torch.Tensor) -> ProtoPNet:
    """A copy of ``model`` with the prototypes at ``indices`` removed (the original is untouched).

    Their scores are masked to 0 (``prototype_mask``) and their last-layer columns zeroed, so they
    contribute nothing to any logit; retraining the last layer keeps those columns at zero.
    """
    idx = torch.as_tensor(indices, dtype=torch.long).flatten()
    p = model.num_prototypes
    if idx.numel() and (idx.min() < 0 or idx.max() >= p):
        raise ValueError(f"prototype indices must be in 0..{p - 1}, got {idx.tolist()}")
    new = copy.deepcopy(model)
    idx = idx.to(new.prototype_mask.device)
    with torch.no_grad():
        new.prototype_mask[idx] = 0
        new.last_layer.weight[:, idx] = 0
    return new
