"""LRP for plain classifiers: LRP-CMP (the rules PRP uses, so the comparison is fair) and two zennit presets.

All three start at the target logit (one-hot x output) and run one modified backward
for the whole batch through zennit's hooks; only the composite differs.

``lrp-epsilon-gamma-box`` uses :class:`GeneralizedGamma`, not the installed zennit's ``Gamma``
(0.4.x): that one adds ``gamma * w+`` whatever the sign of the unit's output, so on a residual
branch (a BN-merged conv whose output may be negative, added to the shortcut before the ReLU)
the modified denominator ``z + gamma * (sum x w+ + b+)`` crosses zero for about a fifth of such
a conv's units in a trained small ResNet: relevance flips sign and explodes there, and the maps
become scattered spots (docs/methods.md, "Why lrp-epsilon-gamma-box scattered").
"""

from __future__ import annotations

import torch
from torch import nn
from zennit.composites import LAYER_MAP_BASE, EpsilonPlusFlat, SpecialFirstLayerMapComposite
from zennit.core import BasicHook, Composite, stabilize
from zennit.rules import Epsilon, ZBox
from zennit.types import Convolution

from hansbench.methods.base import Explainer
from hansbench.methods.explainers import _zennit
from hansbench.registry import explainers

__all__ = ["LRP", "LRPEpsilonPlusFlat", "LRPEpsilonGammaBox", "GeneralizedGamma"]


class GeneralizedGamma(BasicHook):
    """The gamma rule that favours the contributions of the output's own sign (Andeol et al. 2021).

    A unit with output ``z > 0`` spreads its relevance in proportion to its contributions with
    the positive ones (``x+ w+``, ``x- w-``, ``b+``) scaled by ``1 + gamma``; a unit with ``z < 0``
    with the negative ones scaled. Numerator and denominator then share ``z``'s sign, so no
    denominator crosses zero. Where every input is non-negative and ``z > 0`` (a conv after a
    ReLU, feeding a ReLU) it is Montavon et al.'s gamma rule, i.e. the installed zennit's
    ``Gamma``; newer zennit (0.5) ships this same generalisation as its ``Gamma``.

    Four modified forwards; their sum is ``(2 + gamma) z``, which gives ``z``'s sign without a fifth.
    """

    def __init__(self, gamma: float = 0.25, stabilizer: float = 1e-6):
        self.gamma, self.stabilizer = gamma, stabilizer
        pos, neg = (lambda x: x.clamp(min=0)), (lambda x: x.clamp(max=0))
        super().__init__(
            input_modifiers=[pos, neg, pos, neg],  # z > 0: x+ (w + g w+) + x- (w + g w-) + (b + g b+)
            param_modifiers=[_favour(gamma, +1), _favour(gamma, -1, bias=False),  # z < 0: the signs swapped
                             _favour(gamma, -1), _favour(gamma, +1, bias=False)],
            output_modifiers=[lambda out: out] * 4,
            gradient_mapper=self._gradients,
            reducer=lambda xs, grads: sum(x * g for x, g in zip(xs, grads)),
        )

    def _gradients(self, grad: torch.Tensor, outs: list) -> list:
        total = sum(outs)  # (2 + gamma) * z: the sign of z
        up = (total > 0) * grad / stabilize(outs[0] + outs[1], self.stabilizer)
        down = (total < 0) * grad / stabilize(outs[2] + outs[3], self.stabilizer)
        return [up, up, down, down]

    def copy(self) -> GeneralizedGamma:
        """A fresh rule with the same parameters (zennit copies rules per module)."""
        return GeneralizedGamma(self.gamma, self.stabilizer)


def _favour(gamma: float, sign: int, bias: bool = True):
    """``p + gamma * (p's part of this sign)`` for weights (and the bias, unless ``bias=False``: then 0)."""
    part = (lambda p: p.clamp(min=0)) if sign > 0 else (lambda p: p.clamp(max=0))
    return lambda p, name: torch.zeros_like(p) if (name == "bias" and not bias) else p + gamma * part(p)


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
    """zennit's EpsilonGammaBox layout (z^B first conv, gamma convs, epsilon dense) with the ResNet canonizer.

    The convs get :class:`GeneralizedGamma` (zennit 0.4's ``Gamma`` scatters the maps of residual
    nets); on a plain ReLU net the maps equal zennit's ``EpsilonGammaBox``. z^B's bounds are the
    normalised images' per-channel range. ``gamma`` (0.25, zennit's value) scales the favoured part.
    """

    version = "2"  # 1: zennit 0.4's Gamma

    def __init__(self, gamma: float = 0.25, max_batch: int | None = None):
        super().__init__(max_batch)
        if not gamma >= 0:
            raise ValueError(f"lrp-epsilon-gamma-box: gamma must be >= 0 (0 gives LRP-0 on the convs), got {gamma!r}")
        self.gamma = float(gamma)

    def composite(self, model: nn.Module) -> Composite:
        """z^B with the model's pixel bounds, generalised gamma, epsilon; the ResNet canonizers."""
        low, high = _zennit.zbox_bounds(model)
        return SpecialFirstLayerMapComposite(
            layer_map=LAYER_MAP_BASE + [(Convolution, GeneralizedGamma(self.gamma)), (nn.Linear, Epsilon())],
            first_map=[(Convolution, ZBox(low, high))],
            canonizers=_zennit.canonizers(),
        )
