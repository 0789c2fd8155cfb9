"""ProtoPNet's own visualisation: each prototype's similarity map upsampled to input size (the method to beat)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hansbench.methods.base import Explainer
from hansbench.methods.explainers.prp import class_prototype_views
from hansbench.models.modes import eval_mode
from hansbench.registry import explainers

__all__ = ["ProtoPNetUpsampling", "prototype_box"]


@explainers.register("protopnet-upsampling")
class ProtoPNetUpsampling(Explainer):
    """Similarity map of each prototype of the target class, upsampled to input size (multi-view).

    ``mode``: ``"bicubic"`` (default, the ProtoPNet code) or ``"bilinear"`` (the PRP paper's
    wording). Maps are non-negative up to bicubic overshoot; pruned prototypes give zero maps.
    """

    model_kinds = ("protopnet",)
    multiview = True
    views = "prototypes"

    def __init__(self, mode: str = "bicubic"):
        if mode not in ("bicubic", "bilinear"):
            raise ValueError(f"mode must be 'bicubic' or 'bilinear', got {mode!r}")
        self.mode = mode

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[B, P_c, H, W]``: each prototype of the target class's similarity map, upsampled."""
        self.check_model(model)
        views = class_prototype_views(model, target.to(x.device))  # [B, V], -1 = padding
        with eval_mode(model), torch.no_grad():
            sim = model.similarity_maps(x)  # [B, P, h, w]
        h, w = sim.shape[-2:]
        idx = views.clamp(min=0)[:, :, None, None].expand(-1, -1, h, w)
        maps = sim.gather(1, idx) * (views >= 0)[:, :, None, None]
        up = F.interpolate(maps, size=tuple(x.shape[-2:]), mode=self.mode, align_corners=False)
        return up.float()


def prototype_box(heatmap: torch.Tensor, percentile: float = 95) -> torch.Tensor:
    """Smallest rectangle covering the pixels >= the ``percentile``-th percentile of ``heatmap`` [..., H, W].

    Returns ``[..., 4]`` int64 ``(y0, y1, x0, x1)`` with exclusive ends (``heatmap[y0:y1, x0:x1]``),
    as ProtoPNet draws its prototype boxes; batched over leading dimensions.
    """
    heatmap = torch.as_tensor(heatmap)
    height, width = heatmap.shape[-2:]
    flat = heatmap.reshape(-1, height * width).float()
    thresh = torch.quantile(flat, percentile / 100.0, dim=1, keepdim=True)
    mask = (flat >= thresh).view(-1, height, width)
    rows, cols = mask.any(dim=2), mask.any(dim=1)  # [N, H], [N, W]

    def span(hit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = hit.int().argmax(dim=1)
        last = hit.shape[1] - hit.flip(1).int().argmax(dim=1)
        return first, last

    y0, y1 = span(rows)
    x0, x1 = span(cols)
    return torch.stack([y0, y1, x0, x1], dim=1).long().view(*heatmap.shape[:-2], 4)
