"""Integrated Gradients (Sundararajan et al. 2017) through captum."""

from __future__ import annotations

import torch
from captum.attr import IntegratedGradients as _CaptumIG
from torch import nn

from hansbench.methods.base import Explainer
from hansbench.registry import explainers


@explainers.register("integrated-gradients")
class IntegratedGradients(Explainer):
    """Integrated Gradients (captum) from a zero baseline in normalised input space, summed over channels.

    Zero in normalised space is the per-channel data mean, i.e. a uniform grey image.
    ``method="gausslegendre"`` needs far fewer steps than the Riemann rules for the same
    completeness error; ``internal_batch_size`` bounds the number of interpolated images
    per forward pass (memory), it does not change the maps.
    """

    model_kinds = ("classifier", "protopnet")

    def __init__(self, n_steps: int = 32, method: str = "gausslegendre", internal_batch_size: int = 256):
        self.n_steps = int(n_steps)
        self.method = method
        self.internal_batch_size = int(internal_batch_size)

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, return_delta: bool = False):
        """Per-channel captum attributions ``[B, C, H, W]`` (and the convergence delta ``[B]`` if asked)."""
        ig = _CaptumIG(model)
        with torch.enable_grad():
            return ig.attribute(
                x, baselines=torch.zeros_like(x), target=target.to(x.device), n_steps=self.n_steps,
                method=self.method, internal_batch_size=self.internal_batch_size, return_convergence_delta=return_delta,
            )

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[B, 1, H, W]`` Integrated Gradients from the zero baseline, summed over channels."""
        self.check_model(model)
        a = self.attribute(model, x, target)
        return a.detach().sum(dim=1, keepdim=True).float()
