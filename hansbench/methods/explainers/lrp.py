"""LRP for plain classifiers: LRP-CMP (the rules PRP uses, so the comparison is fair) and two zennit presets.

All three start at the target logit (one-hot x output) and run one modified backward
for the whole batch through zennit's hooks; only the composite differs.
"""

from __future__ import annotations

import torch
from torch import nn
from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat
from zennit.core import Composite

from hansbench.methods.base import Explainer
from hansbench.methods.explainers import _zennit
from hansbench.registry import explainers

__all__ = ["LRP", "LRPEpsilonPlusFlat", "LRPEpsilonGammaBox"]


class _CompositeLRP(Explainer):
    """Shared: check the model, start at the target logit, one backward through ``composite(model)``."""

    model_kinds = ("classifier",)
    multiview = False

    def __init__(self, max_batch: int | None = None):
        self._max_batch = max_batch  # rows per backward (memory only: not an option of the maps, not hashed)

    def composite(self, model: nn.Module) -> Composite:
        raise NotImplementedError

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.check_model(model)
        rel = _zennit.input_relevance(
            model, self.composite(model), model, x, _zennit.one_hot_logit(target), self._max_batch
        )
        return rel.unsqueeze(1)


@explainers.register("lrp")
class LRP(_CompositeLRP):
    """LRP-CMP: z^B first conv, z+ (bias ignored) convs, epsilon dense, BatchNorm merged, residuals split.

    ``ignore_bias`` (default True, as in PAPERS.md) uses z+ without the bias; False gives
    zennit's stock ``ZPlus``. ``epsilon`` is the dense layers' epsilon. ``max_batch`` bounds the
    images per backward (memory); the maps do not depend on it.
    """

    def __init__(self, ignore_bias: bool = True, epsilon: float = 1e-6, max_batch: int | None = None):
        super().__init__(max_batch)
        self.ignore_bias = ignore_bias
        self.epsilon = epsilon

    def composite(self, model: nn.Module) -> Composite:
        """The LRP-CMP composite for ``model`` (z^B bounds from its normalisation)."""
        return _zennit.lrp_cmp_composite(model, ignore_bias=self.ignore_bias, epsilon=self.epsilon)


@explainers.register("lrp-epsilon-plus-flat")
class LRPEpsilonPlusFlat(_CompositeLRP):
    """zennit's EpsilonPlusFlat (flat first layer, z+ convs, epsilon dense) with the ResNet canonizer."""

    def composite(self, model: nn.Module) -> Composite:
        """zennit's EpsilonPlusFlat with the ResNet canonizers."""
        return EpsilonPlusFlat(canonizers=_zennit.canonizers())


@explainers.register("lrp-epsilon-gamma-box")
class LRPEpsilonGammaBox(_CompositeLRP):
    """zennit's EpsilonGammaBox (z^B first conv, gamma=0.25 convs, epsilon dense) with the ResNet canonizer."""

    def composite(self, model: nn.Module) -> Composite:
        """zennit's EpsilonGammaBox with the model's pixel bounds and the ResNet canonizers."""
        low, high = _zennit.zbox_bounds(model)
        return EpsilonGammaBox(low=low, high=high, canonizers=_zennit.canonizers())
