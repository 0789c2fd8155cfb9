"""Artifact localisation: does the map point at the pixels the artifact changed?

Scored on poisoned ``artifact_test`` images of the poisoning's source classes (all carry masks;
all-to-one: every stamped non-target image), explained for the class
``ScenarioData.explain_targets`` gives: a backdoor's target class (the decision the trigger
makes), a Clever Hans scenario's affected class; the rule is recorded as ``"explained"`` in
each row's detail. Per view, then averaged over views; the
``-best-view`` values take the best view per image first, which is what matters for
prototype methods (one prototype locked on the artifact is enough to reveal it).

Ties in relevance are scored at their expectation over a uniformly random tie order (the mean
of every seeded tie-breaking, without its sampling noise): a flat map scores the chance level
|mask| / HW wherever the mask is, never more because the mask sits in the top rows. Each row's
detail holds ``per_image`` (one value per image, whose mean is the row's value).
"""

from __future__ import annotations

import json
from dataclasses import replace

import torch

from hansbench.metrics._perturbation import CHOICE_SALT, compact_values, seeded_choice, source_indices
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.detail import PER_IMAGE
from hansbench.metrics.presentation import EXPLAINERS
from hansbench.registry import metrics

_SCORES = ("relevance-mass-acc", "relevance-rank-acc", "pointing-game")


def localisation_scores(maps: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image and view ``[N, V]``: mass accuracy, rank accuracy and pointing-game hit.

    ``maps``: ``[N, V, H, W]`` signed relevance; ``masks``: ``[N, H, W]`` bool, non-empty.
    Mass accuracy = positive relevance inside the mask / all positive relevance (0 for a map
    without positive relevance); rank accuracy = share of the top-|mask| pixels inside the mask;
    pointing game = the argmax pixel is inside. Ties are scored at their expectation under a
    uniformly random tie order: the pixels tied at the top-|mask| boundary share its remaining
    places equally, the pixels tied at the maximum share the pointing hit equally.
    """
    if maps.shape[-2:] != masks.shape[-2:] or maps.shape[0] != masks.shape[0]:
        raise ValueError(f"maps {tuple(maps.shape)} and masks {tuple(masks.shape)} do not match")
    flat = maps.float().flatten(2)  # [N, V, HW]
    if bool(torch.isnan(flat).any()):
        raise ValueError("relevance maps contain NaN, so their pixel order is undefined; fix the explainer's output")
    inside = masks.flatten(1)[:, None, :].expand_as(flat)  # [N, V, HW]
    size = inside.sum(-1)  # [N, V]
    if bool((size == 0).any()):
        raise ValueError("artifact localisation needs a non-empty mask on every image")
    pos = flat.clamp(min=0)
    total = pos.sum(-1)
    mass = torch.where(total > 0, (pos * inside).sum(-1) / total.clamp(min=torch.finfo(total.dtype).tiny), 0.0)
    # rank accuracy: pixels above the |mask|-th largest value are in the top set; those equal to it
    # fill the remaining places with equal probability (hand-written: no library scores ties this way)
    kth = flat.sort(dim=-1, descending=True).values.gather(-1, (size - 1)[..., None])  # [N, V, 1]
    above, tied = flat > kth, flat == kth
    share = (size - above.sum(-1)).float() / tied.sum(-1).float()  # places left per tied pixel
    rank = ((above & inside).sum(-1).float() + share * (tied & inside).sum(-1).float()) / size.float()
    top = flat == flat.amax(-1, keepdim=True)
    hit = (top & inside).sum(-1).float() / top.sum(-1).float()
    return {"relevance-mass-acc": mass, "relevance-rank-acc": rank, "pointing-game": hit}


@metrics.register("artifact-localisation")
class ArtifactLocalisation(Metric):
    """Relevance mass/rank accuracy and pointing game of maps against the artifact masks.

    Options: ``n_images`` poisoned artifact-test images (seeded choice; default 50, None = all).
    """

    level = "explainer"
    presentation = replace(EXPLAINERS, headline=("relevance-mass-acc", "relevance-rank-acc"))
    version = "3"  # 3: ties at their expectation, source classes, per_image in the detail
    values = {name: ("", True) for base in _SCORES for name in (base, f"{base}-best-view")}

    def __init__(self, n_images: int | None = 50):
        self.n_images = n_images

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Relevance mass, rank accuracy and pointing game on the poisoned artifact-test images."""
        if ctx.explain is None:
            raise ValueError(f"{self.name} needs ctx.explain")
        split = ctx.data.artifact_test
        candidates = source_indices(split, ctx.data.source_classes)
        keep = split.poisoned[candidates] & split.masks[candidates].flatten(1).any(1)
        candidates = candidates[keep]
        if candidates.numel() == 0:
            return []  # no poisoned image with a mask: nothing to localise (clean scenario)
        index = seeded_choice(candidates, self.n_images, ctx.generator(CHOICE_SALT["artifact_test"]))
        targets = ctx.data.explain_targets("artifact_test", index)
        maps = ctx.explain("artifact_test", index, targets).float().cpu()
        scores = localisation_scores(maps, split.masks[index].cpu())
        info = {"n_images": int(index.numel()), "views": int(maps.shape[1]),
                "explained": ctx.data.explain_rule("artifact_test", index)}
        rows = []
        for name, per_view in scores.items():
            for value, per_image in ((name, per_view.mean(dim=1)), (f"{name}-best-view", per_view.max(dim=1).values)):
                detail = json.dumps({**info, PER_IMAGE: compact_values(per_image)})
                rows.append(self.row(value, per_image.mean().item(), split="artifact_test", detail=detail))
        return rows
