"""Grad-CAM (Selvaraju et al. 2017) through captum's LayerGradCam."""

from __future__ import annotations

import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from hansbench.methods.base import Explainer
from hansbench.registry import explainers


@explainers.register("gradcam")
class GradCAM(Explainer):
    """Grad-CAM on the backbone's last block (model.cam_layer), ReLU, bilinear upsampling to input size.

    For both classifiers and ProtoPNets the explained output is the target class logit.
    ``relu`` (default True) keeps only positive evidence as in the paper; the map is then
    non-negative, which is what "signed relevance" reduces to for Grad-CAM.
    """

    model_kinds = ("classifier", "protopnet")

    def __init__(self, relu: bool = True, interpolation: str = "bilinear"):
        self.relu = relu
        self.interpolation = interpolation

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[B, 1, H, W]`` Grad-CAM of ``model.cam_layer`` for the target logit, upsampled."""
        self.check_model(model)
        cam = LayerGradCam(model, model.cam_layer)
        with torch.enable_grad():
            a = cam.attribute(x, target=target.to(x.device), relu_attributions=self.relu)  # [B, 1, h, w]
        a = LayerAttribution.interpolate(a.detach(), tuple(x.shape[-2:]), interpolate_mode=self.interpolation)
        return a.float()
