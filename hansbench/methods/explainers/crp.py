"""Concept Relevance Propagation (Achtibat et al. 2023, eq. 7-10) on zennit.

Relevance is zennit's LRP with ``EpsilonPlusFlat`` and the ResNet canonizer, as in the
authors' code. Conditioning (eq. 7/8) masks the relevance at one layer's output to one
channel. zennit-crp's ``CondAttribution`` does the same masking, but with one Python
closure per (image, concept) condition applied one after another in the backward hook,
per-condition relevance initialisation in a Python loop, and it switches off
``requires_grad`` on the model's parameters as a side effect. Here the mask is a single
``[k, B, C]`` tensor multiplied onto the relevance (= gradient in zennit) at the layer: one
forward and one backward to the layer for the B images, then one backward from the layer to
the input batched over the k concepts (``is_grads_batched``), instead of forward and backward
over B*k repeated images.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from zennit.composites import EpsilonPlusFlat
from zennit.torchvision import ResNetCanonizer

from hansbench.methods.base import Explainer
from hansbench.registry import explainers


def lrp_composite() -> EpsilonPlusFlat:
    """A fresh composite per pass (canonizers hold references to the modules they changed)."""
    return EpsilonPlusFlat(canonizers=[ResNetCanonizer()])


def module_name(model: nn.Module, module: nn.Module) -> str:
    """The name of ``module`` inside ``model`` (a ``ValueError`` if it is not part of it)."""
    for name, m in model.named_modules():
        if m is module:
            return name
    raise ValueError("module is not part of the model")


@explainers.register("crp")
class CRP(Explainer):
    """Concept Relevance Propagation: one LRP map per concept channel of the target class's concept set.

    For every class, ``setup`` fixes the ``k`` channels of ``layer`` (default: model.cam_layer,
    the backbone's last block) with the largest mean relevance (channel relevance summed over
    space, LRP started at the class logit) over up to ``images_per_class`` training images of
    that class. View v = the LRP input map with the relevance at ``layer`` masked to channel v of
    the target's set (eq. 8). Relevance is started at the target logit's value (zennit-crp's
    default), so each map is in logit units. ``max_batch`` bounds images x concepts per pass.
    """

    model_kinds = ("classifier",)
    multiview = True

    def __init__(self, k: int = 8, layer: str | None = None, images_per_class: int = 64, max_batch: int = 256):
        self.k = int(k)
        self.layer = layer  # a module name in the model (model.named_modules()); None = model.cam_layer
        self.images_per_class = int(images_per_class)
        self.max_batch = int(max_batch)
        self._concepts: torch.Tensor | None = None  # [num_classes, k] channel ids

    # -- the one relevance pass ---------------------------------------------------
    def _layer(self, model: nn.Module) -> nn.Module:
        return model.cam_layer if self.layer is None else model.get_submodule(self.layer)

    @contextmanager
    def _modified_forward(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                          channel: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, ...]]:
        """One forward of ``x`` under the LRP composite with the concept layer's output captured:
        yields (input with grad, logits, layer output, the target logit as initial relevance).
        ``channel`` [N]: the layer's relevance is masked to that channel per sample (eq. 8)."""
        store: dict[str, torch.Tensor] = {}

        def capture(module, inputs, output):
            if channel is not None:  # eq. 8: keep the relevance of one channel per sample
                mask = F.one_hot(channel.to(output.device), output.shape[1]).to(output.dtype)[:, :, None, None]
                output.register_hook(lambda g: g * mask)
            store["out"] = output

        xin = x.detach().clone().requires_grad_(True)
        handle = self._layer(model).register_forward_hook(capture)
        try:
            with torch.enable_grad(), lrp_composite().context(model) as modified:
                out = modified(xin)
                init = F.one_hot(target.to(out.device), out.shape[1]).to(out.dtype) * out.detach()
                yield xin, out, store["out"], init
        finally:
            handle.remove()

    def _lrp(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, channel: torch.Tensor | None = None,
             *, layer_relevance: bool = False) -> torch.Tensor:
        """LRP of ``target`` for ``x`` [N, C, H, W], the relevance at the layer masked to channel
        ``channel`` [N] of each sample (None: unmasked). Returns the input map [N, H, W] (colour
        channels summed), or the channel relevance at the layer [N, channels] (summed over space)
        if ``layer_relevance``."""
        with self._modified_forward(model, x, target, channel) as (xin, out, layer, init):
            (rel,) = torch.autograd.grad(out, layer if layer_relevance else xin, grad_outputs=init)
        if layer_relevance:
            return rel.detach().flatten(2).sum(dim=2).float()
        return rel.detach().sum(dim=1).float()

    def conditional_maps(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                         channels: torch.Tensor) -> torch.Tensor:
        """CRP maps ``[B, V, H, W]`` conditioned on ``channels`` ``[B, V]`` (one channel per view), batched.

        Per chunk of images: one forward, one backward from the logit to the layer (the
        unmasked layer relevance, shared by every view), then one view-batched backward from
        the layer to the input (``is_grads_batched``: the V masked relevances as a batch of
        gradients). LRP rules are linear in the relevance arriving from above, so this equals
        masking inside one backward per view (``conditional_maps_reference``).
        """
        self.check_model(model)
        b, v = channels.shape
        maps = []
        per_pass = max(1, self.max_batch // max(v, 1))
        for s in range(0, b, per_pass):  # chunks of images (each chunk: all its images x all views at once)
            xs, ts, cs = x[s:s + per_pass], target[s:s + per_pass], channels[s:s + per_pass].to(x.device)
            maps.append(self._conditional(model, xs, ts.to(x.device), cs).transpose(0, 1))
        return torch.cat(maps)

    def _conditional(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                     channels: torch.Tensor) -> torch.Tensor:
        """``[V, N, H, W]``: the input maps of ``x`` [N, ...] with the layer relevance masked to
        ``channels[:, v]`` for view v."""
        with self._modified_forward(model, x, target) as (xin, out, layer, init):
            (rel,) = torch.autograd.grad(out, layer, grad_outputs=init, retain_graph=True)
            mask = F.one_hot(channels.T, layer.shape[1]).to(rel.dtype)  # [V, N, C]
            (maps,) = torch.autograd.grad(layer, xin, grad_outputs=rel[None] * mask[..., None, None],
                                          is_grads_batched=True)
        return maps.detach().sum(dim=2).float()

    def conditional_maps_reference(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                                   channels: torch.Tensor) -> torch.Tensor:
        """The masked-backward formulation (eq. 8 as written): images repeated V times, one forward
        and one backward over ``B x V`` rows, the mask applied in a hook at the layer. Kept as the
        reference that ``conditional_maps`` must equal (tests, benchmarks)."""
        self.check_model(model)
        b, v = channels.shape
        maps = []
        per_pass = max(1, self.max_batch // max(v, 1))
        for s in range(0, b, per_pass):
            xs, ts, cs = x[s:s + per_pass], target[s:s + per_pass], channels[s:s + per_pass].to(x.device)
            m = self._lrp(model, xs.repeat_interleave(v, 0), ts.to(x.device).repeat_interleave(v, 0), cs.flatten())
            maps.append(m.view(len(xs), v, *x.shape[-2:]))
        return torch.cat(maps)

    # -- concept sets --------------------------------------------------------------
    def setup(self, model: nn.Module, data: Any, workspace: Any = None) -> None:
        """Fix each class's k most relevant channels from ``data.train`` (<= images_per_class per class)."""
        self.check_model(model)
        train = data.train
        idx = torch.cat([train.of_class(c)[: self.images_per_class] for c in range(data.num_classes)])
        dev = next(model.parameters()).device
        labels = train.labels[idx].to(dev)
        rel = []
        for s in range(0, len(idx), self.max_batch):  # chunks bound memory; all classes share each pass
            xs = model.normalize(train.images[idx[s:s + self.max_batch]].to(dev, torch.float32))
            rel.append(self._lrp(model, xs, labels[s:s + self.max_batch], layer_relevance=True))
        rel = torch.cat(rel)  # [N, channels]
        if self.k > rel.shape[1]:
            raise ValueError(f"crp: k={self.k} exceeds the {rel.shape[1]} channels of the layer")
        sums = torch.zeros(data.num_classes, rel.shape[1], device=dev).index_add_(0, labels, rel)
        counts = torch.bincount(labels, minlength=data.num_classes).clamp(min=1)[:, None]
        mean = sums / counts  # classes without images get channels 0..k-1 (all-zero means)
        # stable sort: ties broken by the lower channel id, so the set is deterministic
        self._concepts = torch.sort(mean, dim=1, descending=True, stable=True).indices[:, : self.k].cpu()

    @property
    def concepts_(self) -> dict[int, list[int]]:
        """{class: [channel ids]} fixed by ``setup``."""
        return {c: row.tolist() for c, row in enumerate(self._concept_table())}

    def _concept_table(self) -> torch.Tensor:
        if self._concepts is None:
            raise RuntimeError("explainer 'crp' needs setup(model, data, workspace) before explain "
                               "(it selects the class-wise concept channels)")
        return self._concepts

    # -- explain and concept scores ----------------------------------------------
    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[B, k, H, W]``: one LRP map per concept channel of each target's concept set."""
        self.check_model(model)
        channels = self._concept_table()[target.cpu()]  # [B, k]
        return self.conditional_maps(model, x, target, channels)

    def concept_scores(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Relevance of each concept of the target's set ``[B, k]`` (eq. 9, summed over input pixels)."""
        return self.explain(model, x, target).sum(dim=(2, 3))

    def concept_scores_in_region(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                                 mask: torch.Tensor) -> torch.Tensor:
        """Relevance of each concept inside the region ``mask`` [B, H, W] ``[B, k]`` (eq. 10)."""
        maps = self.explain(model, x, target)
        return (maps * mask.to(maps.device, maps.dtype)[:, None]).sum(dim=(2, 3))
