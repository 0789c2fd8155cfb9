"""Relevance ordering (PRP paper Sec. V-B) and its deletion mirror.

Insertion: start from a seeded uniform-noise image and put the test image's pixels back
in descending order of relevance; a faithful map makes the class score (and, for
ProtoPNet, the prototype similarity scores) rise early, so a larger AUC is better.
Deletion: start from the image and replace its pixels by the noise image in the same
order; a faithful map makes the scores fall early, so a smaller AUC is better.

Images are the affected class's images (by true label) of ``clean_test`` and
``artifact_test``; the score is that of the split's label (for a backdoor's artifact test
that is the target class: the decision the backdoor makes). AUCs are of raw scores
(logits, similarities) over the fraction of pixels moved, so they compare explainers on
the same model, not across models. The mean curve goes into ``detail`` as JSON.
"""

from __future__ import annotations

import json

import torch

from hansbench.metrics._perturbation import (
    CHOICE_SALT,
    NOISE_SALT,
    affected_indices,
    compact_curve,
    evaluating,
    model_device,
    ordering_curves,
    score_function,
    seeded_choice,
    trapezoid_auc,
)
from hansbench.metrics.base import EvalContext, Metric
from hansbench.registry import metrics


@metrics.register("relevance-ordering")
class RelevanceOrdering(Metric):
    """Insertion AUC of the class score (and ProtoPNet prototype scores) when pixels enter by relevance.

    Options: ``n_images`` per split (seeded choice; default 50), ``n_steps`` points on
    [0, 1] (21 = 5 % steps), ``batch_size`` perturbed images per forward pass (default:
    64 on CPU, 1024 on accelerators), ``splits``.
    The class ordering uses the map summed over views. For ProtoPNet, prototype v of the
    target class is scored under view v's ordering (multi-view explainers, V = number of
    the class's prototypes) or every prototype under the single ordering (V = 1).
    """

    level = "explainer"
    mode = "insertion"
    values = {
        "ordering-auc-class": ("", True),
        "ordering-auc-prototype": ("", True),
    }

    def __init__(
        self,
        n_images: int = 50,
        n_steps: int = 21,
        batch_size: int | None = None,
        splits: tuple[str, ...] | list[str] = ("clean_test", "artifact_test"),
    ):
        if n_steps < 2:
            raise ValueError(f"n_steps must be >= 2, got {n_steps}")
        self.n_images = n_images
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.splits = list(splits)

    def _value(self, kind: str) -> str:
        return f"{'ordering' if self.mode == 'insertion' else 'deletion'}-auc-{kind}"

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        if ctx.explain is None:
            raise ValueError(f"{self.name} needs ctx.explain")
        model = ctx.model
        device = model_device(model, ctx.device)
        is_proto = getattr(model, "kind", None) == "protopnet"
        all_splits = ctx.data.splits()
        rows = []
        for split_name in self.splits:
            if split_name not in all_splits:
                raise ValueError(f"unknown split {split_name!r}; known: {sorted(all_splits)}")
            split = all_splits[split_name]
            candidates = affected_indices(split, ctx.data.affected_class)
            if candidates.numel() == 0:
                continue
            index = seeded_choice(candidates, self.n_images, ctx.generator(CHOICE_SALT[split_name]))
            targets = split.labels[index]
            maps = ctx.explain(split_name, index, targets).float()
            x01 = split.images[index]
            noise01 = torch.rand(x01.shape, generator=ctx.generator(NOISE_SALT[split_name]))
            order_maps = maps.sum(dim=1, keepdim=True)
            multiview = is_proto and maps.shape[1] > 1
            if multiview:
                order_maps = torch.cat([order_maps, maps], dim=1)
            with evaluating(model):
                forward, num_classes = score_function(model)
                images = model.normalize(x01.to(device))
                baselines = model.normalize(noise01.to(device))
                curves = ordering_curves(
                    forward, images, baselines, order_maps.to(device),
                    n_steps=self.n_steps, mode=self.mode, batch_size=self.batch_size,
                ).cpu()  # [n, O, S, D]
            n = index.numel()
            class_curves = curves[torch.arange(n), 0, :, targets]  # [n, S]
            info = {"n_images": n, "mode": self.mode, "views": int(maps.shape[1])}
            rows.append(self._row("class", class_curves, split_name, info))
            if is_proto:
                proto_curves = self._prototype_curves(model, curves, targets, maps.shape[1], num_classes)
                rows.append(self._row("prototype", proto_curves, split_name, info))
        return rows

    def _row(self, kind: str, curves: torch.Tensor, split: str, info: dict) -> dict:
        mean = curves.mean(dim=0)
        detail = json.dumps({**info, "curves": curves.shape[0], "curve": compact_curve(mean)})
        return self.row(self._value(kind), float(trapezoid_auc(mean)), split=split, detail=detail)

    @staticmethod
    def _prototype_curves(model, curves: torch.Tensor, targets: torch.Tensor, n_views: int, k: int) -> torch.Tensor:
        """One curve per (image, prototype of its target class): ``[n * P, S]``."""
        out = []
        for i, t in enumerate(targets.tolist()):
            protos = model.prototypes_of(int(t)).cpu()
            if n_views == 1:
                out.append(curves[i, 0, :, k + protos].T)  # every prototype under the one ordering
            elif n_views == protos.numel():
                out.append(curves[i, 1 + torch.arange(n_views), :, k + protos])  # prototype v under view v
            else:
                raise ValueError(
                    f"a multi-view map of a ProtoPNet must have one view per prototype of the class "
                    f"({protos.numel()} for class {t}), got {n_views} views"
                )
        return torch.cat(out)


@metrics.register("relevance-deletion")
class RelevanceDeletion(RelevanceOrdering):
    """Deletion AUC: pixels replaced by seeded noise in descending relevance order (lower is better).

    The mirror of ``relevance-ordering`` with the same images, noise image and options.
    """

    mode = "deletion"
    values = {
        "deletion-auc-class": ("", False),
        "deletion-auc-prototype": ("", False),
    }
