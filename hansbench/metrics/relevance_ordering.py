"""Relevance ordering (PRP paper Sec. V-B) and its deletion mirror.

Insertion: start from a seeded uniform-noise image and put the test image's pixels back
in descending order of relevance; a faithful map makes the class score (and, for
ProtoPNet, the prototype similarity scores) rise early, so a larger AUC is better.
Deletion: start from the image and replace its pixels by the noise image in the same
order; a faithful map makes the scores fall early, so a smaller AUC is better.

Images are the poisoning's source-class images (by true label: the affected class; all-to-one:
every class but the target) of ``clean_test`` and ``artifact_test``, paired as in PRP Sec. V-B:
both splits use the SAME seeded choice of images (the artifact test is those images with the
artifact stamped) and the same noise start, so with and without the artifact differ only by the
artifact. They are explained for, and scored by, the class ``ScenarioData.explain_targets`` gives
(for a backdoor's artifact test the target class: the decision the backdoor makes; recorded as
``"explained"`` in the detail). Ties in relevance are broken by one seeded random pixel order
(not raster order). AUCs are of raw scores (logits, similarities) over the fraction of pixels
moved, so they compare explainers on the same model, not across models. The detail JSON holds
the mean curve and ``per_image``: each image's AUC (its curves averaged first), whose mean is the
row's value.
"""

from __future__ import annotations

import json
from dataclasses import replace

import torch

from hansbench.metrics._perturbation import (
    CHOICE_SALT,
    NOISE_SALT,
    PAIRED_SPLITS,
    TIE_SALT,
    class_map,
    class_map_rule,
    compact_curve,
    compact_values,
    evaluating,
    model_device,
    ordering_curves,
    score_function,
    seeded_choice,
    source_indices,
    trapezoid_auc,
    view_prototypes,
)
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.detail import CURVE, MODE, PER_IMAGE
from hansbench.metrics.presentation import EXPLAINERS
from hansbench.registry import metrics

CLASS_CURVES = ("per-prototype", "class-map")


@metrics.register("relevance-ordering")
class RelevanceOrdering(Metric):
    """Insertion AUC of the class score (and ProtoPNet prototype scores) when pixels enter by relevance.

    Options: ``n_images`` per split (seeded choice; default 50), ``n_steps`` points on
    [0, 1] (21 = 5 % steps), ``batch_size`` perturbed images per forward pass (default:
    64 on CPU, 1024 on accelerators), ``splits``, ``class_curve``.

    ``class_curve`` for multi-view ProtoPNet maps (one view per prototype of the target class):
    ``"per-prototype"`` (default; PAPERS.md §6, PRP Fig. 10: each prototype's map orders the
    pixels, the class score is recorded along every ordering, and the curves are averaged over
    images and prototypes) or ``"class-map"`` (one ordering per image by the class map
    ``sum_j w_h[c, j] * map_j``). Both coincide for single-view maps; for other multi-view maps
    (e.g. CRP concepts) the class curve always uses the class map (views summed). The detail
    records which (``"class_curve"``, and ``"class_map"``: single/weighted/sum).
    The prototype curve: prototype v of the target class is scored under view v's ordering
    (multi-view explainers) or every prototype under the single ordering (V = 1).
    """

    level = "explainer"
    presentation = replace(EXPLAINERS, headline=("ordering-auc-class", "ordering-auc-prototype"),
                           relative_to_random=True)
    mode = "insertion"
    version = "3"  # 3: paired splits, seeded tie order, source classes, image-weighted mean with per_image
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
        class_curve: str = "per-prototype",
    ):
        if n_steps < 2:
            raise ValueError(f"n_steps must be >= 2, got {n_steps}")
        if class_curve not in CLASS_CURVES:
            raise ValueError(f"class_curve must be one of {', '.join(map(repr, CLASS_CURVES))}, got {class_curve!r}")
        self.n_images = n_images
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.splits = list(splits)
        self.class_curve = class_curve

    def _value(self, kind: str) -> str:
        return f"{'ordering' if self.mode == 'insertion' else 'deletion'}-auc-{kind}"

    def _choice(self, ctx: EvalContext, split_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The images of ``split_name`` and their noise start ``[n, C, H, W]``; one paired choice for the test splits."""
        data = ctx.data
        split = data.split(split_name)
        salt = split_name
        if split_name in PAIRED_SPLITS:
            a, b = (data.split(s) for s in PAIRED_SPLITS)
            if len(a) != len(b) or not torch.equal(a.true_labels, b.true_labels):
                raise ValueError(f"{self.name} pairs clean_test and artifact_test image by image, so they must hold "
                                 f"the same images (same true labels, {len(a)} vs {len(b)} images); build both "
                                 "test sets from the same clean images")
            salt = "artifact_test"  # the choice of artifact-localisation too, so their maps are shared
        candidates = source_indices(split, data.source_classes)
        index = seeded_choice(candidates, self.n_images, ctx.generator(CHOICE_SALT[salt]))
        noise01 = torch.rand((index.numel(), *split.images.shape[1:]), generator=ctx.generator(NOISE_SALT[salt]))
        return index, noise01

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """AUC of the class (and prototype) scores along the insertion (or deletion) curve, per split."""
        if ctx.explain is None:
            raise ValueError(f"{self.name} needs ctx.explain")
        model = ctx.model
        device = model_device(model, ctx.device)
        is_proto = getattr(model, "has_prototypes", False)
        rows = []
        for split_name in self.splits:
            split = ctx.data.split(split_name)
            index, noise01 = self._choice(ctx, split_name)
            if index.numel() == 0:
                continue
            targets = ctx.data.explain_targets(split_name, index)
            maps = ctx.explain(split_name, index, targets).float()
            x01 = split.images[index]
            n, n_views = index.numel(), maps.shape[1]
            views = view_prototypes(model, targets, n_views)  # [n, V] prototype of each view, or None
            if is_proto and n_views > 1 and views is None:
                raise ValueError(
                    f"a multi-view map of a ProtoPNet must have one view per prototype of the class "
                    f"(prototypes_per_class = {getattr(model, 'prototypes_per_class', '?')}), got {n_views} views"
                )
            per_prototype = self.class_curve == "per-prototype" and views is not None
            orderings = [] if per_prototype else [class_map(maps, model, targets)]
            if views is not None:
                orderings.append(maps)
            offset = 0 if per_prototype else 1  # ordering index of view 0
            with evaluating(model):
                forward, num_classes = score_function(model)
                images = model.normalize(x01.to(device))
                baselines = model.normalize(noise01.to(device))
                curves = ordering_curves(
                    forward, images, baselines, torch.cat(orderings, dim=1).to(device),
                    n_steps=self.n_steps, mode=self.mode, batch_size=self.batch_size,
                    generator=ctx.generator(TIE_SALT),
                ).cpu()  # [n, O, S, D]
            if per_prototype:
                img, view = torch.nonzero(views >= 0, as_tuple=True)  # every (image, unpruned prototype)
                class_curves = curves[img, offset + view, :, targets[img]]  # [m, S]
            else:
                img = torch.arange(n)
                class_curves = curves[img, 0, :, targets]  # [n, S]
            info = {"n_images": n, MODE: self.mode, "views": int(n_views),
                    "explained": ctx.data.explain_rule(split_name, index),
                    "class_curve": "per-prototype" if per_prototype else "class-map",
                    "class_map": class_map_rule(maps, model, targets)}
            rows.append(self._row("class", class_curves, img, n, split_name, info))
            if is_proto:
                proto_curves, proto_img = self._prototype_curves(model, curves, targets, views, offset, num_classes)
                rows.append(self._row("prototype", proto_curves, proto_img, n, split_name, info))
        return rows

    def _row(self, kind: str, curves: torch.Tensor, img: torch.Tensor, n: int, split: str, info: dict) -> dict:
        """One row: the mean over images of each image's mean curve (images weigh alike, however many
        prototype curves they have); ``per_image`` holds each image's AUC, whose mean is the value."""
        counts = torch.bincount(img, minlength=n)
        sums = torch.zeros(n, curves.shape[-1], dtype=curves.dtype).index_add_(0, img, curves)
        per_image = (sums / counts.clamp(min=1)[:, None])[counts > 0]  # [n', S]: images with a curve
        mean = per_image.mean(dim=0)
        detail = json.dumps({**info, "curves": curves.shape[0], CURVE: compact_curve(mean),
                             PER_IMAGE: compact_values(trapezoid_auc(per_image))})
        return self.row(self._value(kind), float(trapezoid_auc(mean)), split=split, detail=detail)

    @staticmethod
    def _prototype_curves(model, curves: torch.Tensor, targets: torch.Tensor, views: torch.Tensor | None,
                          offset: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One curve per (image, unpruned prototype of its target class): ``[m, S]``, and each curve's image ``[m]``.

        ``views`` None (single-view maps): every prototype under the one ordering (index 0);
        else prototype ``views[i, v]`` under ordering ``offset + v``.
        """
        out, img = [], []
        for i, t in enumerate(targets.tolist()):
            if views is None:
                protos = model.prototypes_of(int(t)).cpu()
                out.append(curves[i, 0, :, k + protos].T)  # every prototype under the one ordering
            else:
                valid = torch.nonzero(views[i] >= 0).flatten()
                out.append(curves[i, offset + valid, :, k + views[i, valid]])  # prototype v under view v
            img.append(torch.full((out[-1].shape[0],), i, dtype=torch.long))
        return torch.cat(out), torch.cat(img)


@metrics.register("relevance-deletion")
class RelevanceDeletion(RelevanceOrdering):
    """Deletion AUC: pixels replaced by seeded noise in descending relevance order (lower is better).

    The mirror of ``relevance-ordering`` with the same images, noise image and options.
    """

    mode = "deletion"
    presentation = replace(RelevanceOrdering.presentation, headline=("deletion-auc-class", "deletion-auc-prototype"))
    values = {
        "deletion-auc-class": ("", False),
        "deletion-auc-prototype": ("", False),
    }
