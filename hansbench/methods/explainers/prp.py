"""Prototypical Relevance Propagation (PRP paper Sec. IV-A) and SpRAy-LRP of a ProtoPNet (App. B).

Built on zennit: the LRP-CMP composite of ``_zennit`` for the backbone and add-on, plus
:class:`PrototypeRule`, a zennit ``Hook`` on ``PrototypeLayer`` (written by hand: zennit has no
rule for a distance layer). Step 1 (max-pool, winner takes all) needs no rule: the plain
gradient of ``AdaptiveMaxPool2d`` routes the relevance to the argmax location.

PRP explains every prototype of the target class in one forward and one view-batched backward
(``torch.autograd.grad(..., is_grads_batched=True)``: vmap over the backward, zennit's hooks
included): view ``v`` of image ``b`` starts with relevance only at prototype ``v`` of its class.
"""

from __future__ import annotations

import torch
from torch import nn
from zennit.core import Composite, Hook

from hansbench.methods.base import Explainer
from hansbench.methods.explainers import _zennit
from hansbench.models.protopnet import PrototypeLayer
from hansbench.registry import explainers

__all__ = [
    "channel_shares",
    "prototype_relevance",
    "PrototypeRule",
    "prp_composite",
    "class_prototype_views",
    "PRP",
    "ProtoPNetLRP",
]


def channel_shares(z: torch.Tensor, prototypes: torch.Tensor, epsilon: float = 1e-12) -> torch.Tensor:
    """``gamma_mc / (sum_k gamma_mk + eps)`` with ``gamma_mc = 1 / ((z_c - p_mc)^2 + eps)``: ``[B, P, D, h, w]``."""
    p = prototypes.reshape(prototypes.shape[0], -1)
    if p.shape[1] != z.shape[1]:
        raise ValueError(
            f"PRP's prototype rule needs 1x1 prototypes of dim {z.shape[1]}, got {tuple(prototypes.shape)}"
        )
    gamma = 1.0 / ((z.unsqueeze(1) - p[None, :, :, None, None]) ** 2 + epsilon)
    return gamma / (gamma.sum(dim=2, keepdim=True) + epsilon)


def prototype_relevance(
    z: torch.Tensor,
    prototypes: torch.Tensor,
    relevance: torch.Tensor,
    epsilon: float = 1e-12,
    max_elements: int = 2**26,
) -> torch.Tensor:
    """PRP step 2: relevance of the similarity maps ``[B, P, h, w]`` -> latent ``z`` ``[B, D, h, w]``.

    ``R_z[b, c, h, w] = sum_m gamma_mc / (sum_k gamma_mk + eps) * R[b, m, h, w]`` with
    ``gamma_mc = 1 / ((z[b, c, h, w] - p_mc)^2 + eps)``: channels close to the prototype get more.
    Dense and free of data-dependent shapes, so it runs under the view-batched (vmap) backward
    where the shares (which depend only on the forward) are computed once for all views.
    Prototypes are taken in chunks of at most ``max_elements`` shares (memory bound only).
    """
    bsz, dim, height, width = z.shape
    num = prototypes.shape[0]
    chunk = max(1, max_elements // max(1, bsz * dim * height * width))

    def contract(protos: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
        # sum_m share[b, m, c, h, w] * rel[b, m, h, w] as a matmul batched over (b, h, w)
        # (only ops with legacy-vmap batching rules: permute, reshape, unsqueeze, matmul)
        share = channel_shares(z, protos, epsilon).to(rel.dtype).permute(0, 3, 4, 2, 1)  # [B, h, w, D, P]
        r = rel.permute(0, 2, 3, 1).unsqueeze(-1)  # [B, h, w, P, 1]
        return torch.matmul(share, r).squeeze(-1).permute(0, 3, 1, 2)

    if chunk >= num:
        return contract(prototypes, relevance)
    out = None
    for lo in range(0, num, chunk):  # memory bound only; index_select, not slicing (aliases fail under vmap)
        idx = torch.arange(lo, min(lo + chunk, num), device=z.device)
        part = contract(prototypes.index_select(0, idx), relevance.index_select(1, idx))
        out = part if out is None else out + part
    return out


class PrototypeRule(Hook):
    """zennit rule for ``PrototypeLayer``: PRP step 2 (:func:`prototype_relevance`), eps default 1e-12 [C]."""

    def __init__(self, epsilon: float = 1e-12):
        super().__init__()
        self.epsilon = epsilon

    def forward(self, module: nn.Module, input: tuple, output: torch.Tensor) -> None:
        """Keep the latent input for the backward pass (zennit's hook contract)."""
        self.stored_tensors["input"] = input

    def backward(self, module: nn.Module, grad_input: tuple, grad_output: tuple) -> tuple:
        """Relevance of the latent channels from the prototype similarities (PRP's prototype rule)."""
        z = self.stored_tensors["input"][0].detach()
        return (prototype_relevance(z, module.prototypes.detach(), grad_output[0], self.epsilon),)

    def copy(self) -> PrototypeRule:
        """A fresh rule with the same epsilon (zennit copies rules per module)."""
        return PrototypeRule(self.epsilon)


def prp_composite(model: nn.Module, epsilon: float = 1e-12, ignore_bias: bool = True) -> Composite:
    """LRP-CMP for backbone and add-on plus :class:`PrototypeRule` on the prototype layer; dense layers epsilon."""
    return _zennit.lrp_cmp_composite(model, ignore_bias=ignore_bias, extra=[(PrototypeLayer, PrototypeRule(epsilon))])


def class_prototype_views(model: nn.Module, target: torch.Tensor) -> torch.Tensor:
    """Prototype index of each view ``[B, V]`` (``V = prototypes_per_class``), ascending; -1 = padding.

    A class left with fewer than ``V`` unpruned prototypes is padded with -1 (explainers
    return zero maps there), so ``V`` is the same for every class and every batch.
    """
    own = (model.prototype_class_identity.t() > 0) & (model.prototype_mask > 0)  # [K, P]
    n_views = int(model.prototypes_per_class)
    if int(own.sum(dim=1).max()) > n_views:
        raise ValueError(f"a class has more than prototypes_per_class={n_views} prototypes")
    num = own.shape[1]
    ar = torch.arange(num, device=own.device)
    order = torch.where(own, ar, ar + num).argsort(dim=1)[:, :n_views]  # own prototypes first, ascending
    table = torch.where(own.gather(1, order), order, torch.full_like(order, -1))
    return table[target.to(own.device)]


@explainers.register("prp")
class PRP(Explainer):
    """Prototypical Relevance Propagation: one LRP map per prototype of the target class (multi-view).

    Relevance starts at the prototype's similarity score ``s_m`` (``start="score"``, the paper)
    or at 1 (``start="one"``, the authors' code; maps differ by a scale), goes winner-take-all
    through the max-pool, through :class:`PrototypeRule` (``epsilon``) to the latent channels,
    and with LRP-CMP to the input (``ignore_bias``: z+ without bias, the paper's choice).
    Views are the class's prototypes in index order; pruned ones give zero maps at the end.
    ``max_batch`` bounds the images per pass (all views of an image go together); maps do not depend on it.
    """

    model_kinds = ("protopnet",)
    multiview = True
    views = "prototypes"

    def __init__(
        self, epsilon: float = 1e-12, start: str = "score", ignore_bias: bool = True, max_batch: int | None = None
    ):
        if start not in ("score", "one"):
            raise ValueError(f"start must be 'score' or 'one', got {start!r}")
        self.epsilon = epsilon
        self.start = start
        self.ignore_bias = ignore_bias
        self._max_batch = max_batch

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[B, P_c, H, W]``: one PRP map per prototype of each target class, in one batched backward."""
        self.check_model(model)
        views = class_prototype_views(model, target.to(x.device))  # [B, V]
        proto = views.t().unsqueeze(-1)  # [V, B, 1]: view v of image b explains prototype views[b, v]
        valid = proto >= 0
        proto = proto.clamp(min=0)

        def start(scores: torch.Tensor, rows: slice) -> torch.Tensor:  # [V, b, P], one-hot per view
            idx, ok = proto[:, rows], valid[:, rows]
            s = scores.unsqueeze(0).expand(idx.shape[0], -1, -1)
            value = s.gather(2, idx) if self.start == "score" else torch.ones_like(idx, dtype=scores.dtype)
            return torch.zeros_like(s).scatter(2, idx, value * ok)

        rel = _zennit.input_relevance(
            model,
            prp_composite(model, self.epsilon, self.ignore_bias),
            model.scores,
            x,
            start,
            self._max_batch,
            views=True,
        )  # [V, B, H, W]
        return rel.transpose(0, 1).contiguous()


@explainers.register("protopnet-lrp")
class ProtoPNetLRP(Explainer):
    """SpRAy-LRP of a ProtoPNet: class logit, epsilon through the last layer, then PRP for all prototypes at once.

    The prototype rule sums the latent relevance over prototypes (App. B eq. 15) before the
    one backbone pass; one map per image. Options as for ``prp``; ``last_layer_epsilon`` is
    the epsilon of the last (dense) layer.
    """

    model_kinds = ("protopnet",)
    multiview = False

    def __init__(
        self,
        epsilon: float = 1e-12,
        last_layer_epsilon: float = 1e-6,
        ignore_bias: bool = True,
        max_batch: int | None = None,
    ):
        self.epsilon = epsilon
        self.last_layer_epsilon = last_layer_epsilon
        self.ignore_bias = ignore_bias
        self._max_batch = max_batch

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[B, 1, H, W]``: LRP from the class logit through the last layer and every prototype."""
        self.check_model(model)
        composite = _zennit.lrp_cmp_composite(
            model,
            ignore_bias=self.ignore_bias,
            epsilon=self.last_layer_epsilon,
            extra=[(PrototypeLayer, PrototypeRule(self.epsilon))],
        )
        rel = _zennit.input_relevance(model, composite, model, x, _zennit.one_hot_logit(target), self._max_batch)
        return rel.unsqueeze(1)
