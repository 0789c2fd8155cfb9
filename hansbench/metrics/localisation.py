"""Artifact localisation: does the map point at the pixels the artifact changed?

Scored on poisoned ``artifact_test`` images (all carry masks), explained for the class
``ScenarioData.explain_targets`` gives: a backdoor's target class (the decision the trigger
makes), a Clever Hans scenario's affected class; the rule is recorded as ``"explained"`` in
each row's detail. Per view, then averaged over views; the
``-best-view`` values take the best view per image first, which is what matters for
prototype methods (one prototype locked on the artifact is enough to reveal it).
"""

from __future__ import annotations

import json

import torch

from hansbench.metrics._perturbation import CHOICE_SALT, affected_indices, descending_ranks, seeded_choice
from hansbench.metrics.base import EvalContext, Metric
from hansbench.registry import metrics

_SCORES = ("relevance-mass-acc", "relevance-rank-acc", "pointing-game")


def localisation_scores(maps: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image and view ``[N, V]``: mass accuracy, rank accuracy and pointing-game hit.

    ``maps``: ``[N, V, H, W]`` signed relevance; ``masks``: ``[N, H, W]`` bool, non-empty.
    Mass accuracy = positive relevance inside the mask / all positive relevance (0 for a map
    without positive relevance); rank accuracy = share of the top-|mask| pixels (stable
    descending order) inside the mask; pointing game = the (first) argmax pixel is inside.
    """
    if maps.shape[-2:] != masks.shape[-2:] or maps.shape[0] != masks.shape[0]:
        raise ValueError(f"maps {tuple(maps.shape)} and masks {tuple(masks.shape)} do not match")
    flat = maps.float().flatten(2)  # [N, V, HW]
    inside = masks.flatten(1)[:, None, :].expand_as(flat)  # [N, V, HW]
    size = inside.sum(-1)  # [N, V]
    if bool((size == 0).any()):
        raise ValueError("artifact localisation needs a non-empty mask on every image")
    pos = flat.clamp(min=0)
    total = pos.sum(-1)
    mass = torch.where(total > 0, (pos * inside).sum(-1) / total.clamp(min=torch.finfo(total.dtype).tiny), 0.0)
    top = descending_ranks(maps.float()) < size[..., None]
    rank = (top & inside).sum(-1).float() / size.float()
    hit = inside.gather(-1, flat.argmax(-1, keepdim=True)).squeeze(-1).float()
    return {"relevance-mass-acc": mass, "relevance-rank-acc": rank, "pointing-game": hit}


@metrics.register("artifact-localisation")
class ArtifactLocalisation(Metric):
    """Relevance mass/rank accuracy and pointing game of maps against the artifact masks.

    Options: ``n_images`` poisoned artifact-test images (seeded choice; default 50, None = all).
    """

    level = "explainer"
    table = "explainers"
    headline = ("relevance-mass-acc", "relevance-rank-acc")
    version = "2"  # explains a backdoor's artifact test for the target class
    values = {name: ("", True) for base in _SCORES for name in (base, f"{base}-best-view")}

    def __init__(self, n_images: int | None = 50):
        self.n_images = n_images

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        if ctx.explain is None:
            raise ValueError(f"{self.name} needs ctx.explain")
        split = ctx.data.artifact_test
        candidates = affected_indices(split, ctx.data.affected_class)
        keep = split.poisoned[candidates] & split.masks[candidates].flatten(1).any(1)
        candidates = candidates[keep]
        if candidates.numel() == 0:
            return []  # no poisoned image with a mask: nothing to localise (clean scenario)
        index = seeded_choice(candidates, self.n_images, ctx.generator(CHOICE_SALT["artifact_test"]))
        targets = ctx.data.explain_targets("artifact_test", index)
        maps = ctx.explain("artifact_test", index, targets).float().cpu()
        scores = localisation_scores(maps, split.masks[index].cpu())
        detail = json.dumps({"n_images": int(index.numel()), "views": int(maps.shape[1]),
                             "explained": ctx.data.explain_rule("artifact_test", index)})
        rows = []
        for name, per_view in scores.items():
            rows.append(self.row(name, per_view.mean().item(), split="artifact_test", detail=detail))
            best = per_view.max(dim=1).values.mean().item()
            rows.append(self.row(f"{name}-best-view", best, split="artifact_test", detail=detail))
        return rows
