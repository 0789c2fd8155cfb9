"""What ``lrp`` and ``prp`` share: one way of building the LRP-CMP composite, and one way of running it.

LRP-CMP (PAPERS.md section 3, step 3): BatchNorm merged into the preceding conv and residual
additions made explicit (zennit's ``ResNetCanonizer``), z^B for the first conv with the bounds
of the normalised pixel range, z+ for every other conv, epsilon for dense layers, activations
pass relevance unchanged, residual sums split in proportion to the summands. Everything is
zennit's except :class:`ZPlusIgnoreBias` (zennit's ``ZPlus`` puts the positive bias into the
denominator; the paper's z+ ignores the bias, so that relevance is conserved through the
BN-merged convs). ``PAPERS.md`` wins over zennit's default there; ``ignore_bias=False`` gives
zennit's stock ``ZPlus``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from zennit.composites import SpecialFirstLayerMapComposite
from zennit.core import BasicHook, Composite, stabilize
from zennit.layer import Sum
from zennit.rules import Epsilon, Norm, Pass, ZBox, ZPlus
from zennit.torchvision import ResNetCanonizer
from zennit.types import Activation, AvgPool, Convolution

from hansbench.models.modes import eval_mode

__all__ = [
    "ZPlusIgnoreBias",
    "lrp_cmp_layer_map",
    "lrp_cmp_composite",
    "canonizers",
    "zbox_bounds",
    "explaining",
    "input_relevance",
    "one_hot_logit",
]


class ZPlusIgnoreBias(BasicHook):
    """z+ (LRP alpha=1, beta=0) with the bias left out of numerator and denominator.

    Written here because zennit's ``ZPlus`` keeps the positive part of the bias in the
    denominator, which absorbs relevance in BN-merged convs; the PRP paper (and Binder's
    LRP-CMP code it builds on) ignores the bias. Same modifiers as zennit's ``ZPlus``, except
    that for non-negative inputs (every conv after a ReLU) the ``x- w-`` term is identically
    zero and is skipped: one modified forward and one gradient instead of two.
    """

    def __init__(self, stabilizer: float = 1e-6):
        self.stabilizer = stabilizer
        super().__init__(
            input_modifiers=[lambda x: x.clamp(min=0), lambda x: x.clamp(max=0)],
            param_modifiers=[_no_bias(lambda w: w.clamp(min=0)), _no_bias(lambda w: w.clamp(max=0))],
            output_modifiers=[lambda out: out] * 2,
            gradient_mapper=lambda grad, outs: [grad / stabilize(sum(outs), stabilizer)] * 2,
            reducer=lambda xs, grads: xs[0] * grads[0] + xs[1] * grads[1],
        )
        self._positive = BasicHook(
            input_modifiers=[lambda x: x],
            param_modifiers=[_no_bias(lambda w: w.clamp(min=0))],
            output_modifiers=[lambda out: out],
            gradient_mapper=lambda grad, outs: [grad / stabilize(outs[0], stabilizer)],
            reducer=lambda xs, grads: xs[0] * grads[0],
        )

    def backward(self, module: nn.Module, grad_input: tuple, grad_output: tuple) -> tuple:
        """z+ without the bias; on non-negative inputs the plain positive rule."""
        if _all_nonnegative(self.stored_tensors["input"][0]):
            self._positive.stored_tensors = self.stored_tensors
            return self._positive.backward(module, grad_input, grad_output)
        return super().backward(module, grad_input, grad_output)

    def copy(self) -> ZPlusIgnoreBias:
        """A fresh rule with the same stabilizer (zennit copies rules per module)."""
        return ZPlusIgnoreBias(self.stabilizer)


def _all_nonnegative(x: torch.Tensor) -> bool:
    """Whether the one-term shortcut applies. Asked only of CPU tensors: on an accelerator the
    answer costs a device-to-host sync per conv layer and backward, so there the two-term
    formula runs, which gives the same relevance for non-negative inputs (its second term is
    ``0 * grad`` and adds ``0`` to the denominator)."""
    return x.device.type == "cpu" and bool((x >= 0).all())


def _no_bias(keep: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor, str], torch.Tensor]:
    return lambda param, name: torch.zeros_like(param) if name == "bias" else keep(param)


def canonizers() -> list:
    """Fresh canonizers: BatchNorm merged into the preceding linear layer, BasicBlock sums made modules."""
    return [ResNetCanonizer()]


def zbox_bounds(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The z^B bounds ``l, h`` ([1, C, 1, 1]): the smallest and largest normalised pixel values."""
    low, high = model.input_norm.bounds()
    return low.detach(), high.detach()


def lrp_cmp_layer_map(ignore_bias: bool = True, epsilon: float = 1e-6, extra: Sequence = ()) -> list:
    """The LRP-CMP (type, rule) map, first match wins; ``extra`` entries come first (e.g. the prototype rule)."""
    return list(extra) + [
        (Activation, Pass()),  # ReLU, Sigmoid: relevance passes unchanged
        (Sum, Norm()),  # residual additions: split in proportion to the summands
        (AvgPool, Norm()),
        (Convolution, ZPlusIgnoreBias() if ignore_bias else ZPlus()),
        (torch.nn.Linear, Epsilon(epsilon)),
    ]


def lrp_cmp_composite(
    model: nn.Module, ignore_bias: bool = True, epsilon: float = 1e-6, extra: Sequence = ()
) -> Composite:
    """LRP-CMP for ``model``: z^B on the first conv (bounds from ``model.input_norm``), the rest as the layer map."""
    low, high = zbox_bounds(model)
    return SpecialFirstLayerMapComposite(
        layer_map=lrp_cmp_layer_map(ignore_bias, epsilon, extra),
        first_map=[(Convolution, ZBox(low, high))],
        canonizers=canonizers(),
    )


@contextmanager
def explaining(model: nn.Module, composite: Composite) -> Iterator[nn.Module]:
    """Model in eval mode with the composite's canonizers and hooks; everything undone on exit.

    Eval mode matters: the merged BatchNorms become identities only with running statistics.
    """
    with eval_mode(model), composite.context(model) as hooked, torch.enable_grad():
        yield hooked


def input_relevance(
    model: nn.Module,
    composite: Composite,
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    start: Callable[[torch.Tensor, slice], torch.Tensor],
    max_batch: int | None = None,
    views: bool = False,
) -> torch.Tensor:
    """Modified backward: ``start(out, rows)`` is the relevance at ``out = forward(x[rows])``.

    The gradient that reaches the input through zennit's hooks is the input relevance (the
    first-layer rule returns relevance, not a multiplier); colour channels are summed:
    returns ``[N, H, W]``. With ``views=True``, ``start`` returns ``[V, n, ...]`` (V starting
    relevances per image) and one forward plus one view-batched backward
    (``is_grads_batched``: vmap over the backward, zennit's hooks included) gives
    ``[V, N, H, W]``: each layer's modified forward is computed once, not V times.
    One pass for all images, or one per ``max_batch`` images to bound memory.
    """
    n = x.shape[0]
    step = n if not max_batch else max(1, int(max_batch))
    parts = []
    with explaining(model, composite):
        for lo in range(0, n, step):
            rows = slice(lo, min(lo + step, n))
            xg = x[rows].detach().requires_grad_(True)
            out = forward(xg)
            (rel,) = torch.autograd.grad(out, xg, grad_outputs=start(out.detach(), rows), is_grads_batched=views)
            parts.append(rel.sum(dim=-3))
    return (torch.cat(parts, dim=-3) if len(parts) > 1 else parts[0]).float()


def one_hot_logit(target: torch.Tensor) -> Callable[[torch.Tensor, slice], torch.Tensor]:
    """Start relevance = the target logit: one-hot(target) x output."""

    def start(out: torch.Tensor, rows: slice) -> torch.Tensor:
        mask = torch.zeros_like(out)
        mask.scatter_(1, target[rows].to(out.device).view(-1, 1), 1.0)
        return out * mask

    return start
