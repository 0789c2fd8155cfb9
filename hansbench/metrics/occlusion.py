"""Occlusion test of the ClaDec paper (Sec. 6.6): occlude the most and the least relevant window.

The paper tries 16 square windows of 12x12 px on 32x32 inputs (upper-left corners on the
grid {0, 6, 12, 20}^2), picks per image the window of largest and of smallest relevance
(ties broken uniformly at random), fills it with the training-data mean and compares the
classifier's accuracy: a map that knows what matters gives acc(least) - acc(most) > 0;
random windows give 0. We scale the side and the grid by H/32 (W/32). Filling with 0 in
normalised space is the dataset mean when the scenario's ``mean`` is the data mean
(``fill="zero"``, default); ``fill="image-mean"`` uses each image's per-channel mean.
"""

from __future__ import annotations

import json
from dataclasses import replace

import torch
import torch.nn.functional as F

from hansbench.metrics._perturbation import (
    CHOICE_SALT,
    affected_indices,
    batched,
    class_map,
    class_map_rule,
    evaluating,
    model_device,
    seeded_choice,
)
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.presentation import EXPLAINERS
from hansbench.registry import metrics

_PAPER_SIDE, _PAPER_SIZE, _PAPER_CORNERS = 12, 32, (0, 6, 12, 20)


def window_grid(h: int, w: int) -> tuple[int, int, torch.Tensor, torch.Tensor]:
    """Window height/width and the upper-left corner rows/cols, scaled from the paper's 32 px."""
    wh, ww = max(1, round(_PAPER_SIDE / _PAPER_SIZE * h)), max(1, round(_PAPER_SIDE / _PAPER_SIZE * w))
    rows = torch.tensor([min(round(c / _PAPER_SIZE * h), h - wh) for c in _PAPER_CORNERS])
    cols = torch.tensor([min(round(c / _PAPER_SIZE * w), w - ww) for c in _PAPER_CORNERS])
    return wh, ww, rows, cols


def window_relevance(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed relevance of every grid window ``[N, 16]`` and the windows' pixel masks ``[16, H, W]``.

    Views are summed; the metric first collapses multi-view maps with ``class_map``.
    """
    h, w = maps.shape[-2:]
    wh, ww, rows, cols = window_grid(h, w)
    pooled = F.avg_pool2d(maps.sum(1, keepdim=True).float(), (wh, ww), stride=1)[:, 0] * (wh * ww)
    r, c = torch.meshgrid(rows, cols, indexing="ij")
    r, c = r.flatten().to(maps.device), c.flatten().to(maps.device)
    rel = pooled[:, r, c]  # [N, 16]
    yy = torch.arange(h, device=maps.device)[None, :, None]
    xx = torch.arange(w, device=maps.device)[None, None, :]
    masks = (yy >= r[:, None, None]) & (yy < r[:, None, None] + wh) & (xx >= c[:, None, None]) & (xx < c[:, None, None] + ww)
    return rel, masks


def pick_windows(rel: torch.Tensor, generator: torch.Generator, largest: bool) -> torch.Tensor:
    """Per image the window of largest (smallest) relevance; ties broken uniformly at random."""
    best = rel.max(1, keepdim=True).values if largest else rel.min(1, keepdim=True).values
    tol = 1e-6 * rel.abs().amax(1, keepdim=True)
    tied = (rel - best).abs() <= tol
    keys = torch.rand(rel.shape, generator=generator).to(rel.device)
    return torch.where(tied, keys, -1.0).argmax(1)


@metrics.register("occlusion-delta")
class OcclusionDelta(Metric):
    """ClaDec's occlusion test: accuracy with the least minus with the most relevant window occluded.

    Options: ``n_images`` per split (seeded; default 50), ``classes`` = "affected" (the
    affected class's images, as the other perturbation metrics) or "all", ``fill`` =
    "zero" (normalised space) or "image-mean", ``batch_size``. Images are explained for the
    class ``ScenarioData.explain_targets`` gives (for a backdoor's artifact test: the attack's
    target class) and accuracy is the share still predicted as that explained class; the rule
    is recorded as ``"explained"`` in the detail. Multi-view maps are collapsed to the class
    map (``sum_j w_h[c, j] map_j`` for ProtoPNet prototype views, else the sum).
    """

    level = "explainer"
    presentation = replace(EXPLAINERS, headline=("occlusion-delta-acc",))
    version = "2"  # explain_targets; class map weighted by the last layer
    values = {
        "occlusion-delta-acc": ("%", True),
        "occlusion-acc-most": ("%", False),
        "occlusion-acc-least": ("%", True),
    }

    def __init__(self, n_images: int | None = 50, classes: str = "affected", fill: str = "zero", batch_size: int = 256,
                 splits: tuple[str, ...] | list[str] = ("clean_test", "artifact_test")):
        if classes not in ("affected", "all"):
            raise ValueError(f"classes must be 'affected' or 'all', got {classes!r}")
        if fill not in ("zero", "image-mean"):
            raise ValueError(f"fill must be 'zero' or 'image-mean', got {fill!r}")
        self.n_images = n_images
        self.classes = classes
        self.fill = fill
        self.batch_size = batch_size
        self.splits = list(splits)

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Accuracy after occluding the least minus after the most relevant window, per split."""
        if ctx.explain is None:
            raise ValueError(f"{self.name} needs ctx.explain")
        model = ctx.model
        device = model_device(model, ctx.device)
        rows = []
        for split_name in self.splits:
            split = ctx.data.split(split_name)
            if self.classes == "affected":
                candidates = affected_indices(split, ctx.data.affected_class)
            else:
                candidates = torch.arange(len(split))
            if candidates.numel() == 0:
                continue
            index = seeded_choice(candidates, self.n_images, ctx.generator(CHOICE_SALT[split_name]))
            targets = ctx.data.explain_targets(split_name, index)
            labels = targets.to(device)
            maps = ctx.explain(split_name, index, targets).float()
            rel, windows = window_relevance(class_map(maps, model, targets).to(device))
            g = ctx.generator(300 + CHOICE_SALT[split_name])
            most, least = pick_windows(rel, g, largest=True), pick_windows(rel, g, largest=False)
            with evaluating(model):
                x = model.normalize(split.images[index].to(device))
                fill = torch.zeros_like(x) if self.fill == "zero" else x.mean((2, 3), keepdim=True).expand_as(x)
                occluded = torch.cat([torch.where(windows[w][:, None], fill, x) for w in (most, least)])
                pred = batched(model, occluded, self.batch_size).argmax(1)
            correct = (pred == labels.repeat(2)).float().view(2, -1)
            acc_most, acc_least = (100 * correct.mean(1)).tolist()
            detail = json.dumps({"n_images": int(index.numel()), "window": list(window_grid(*x.shape[-2:])[:2]),
                                 "explained": ctx.data.explain_rule(split_name, index),
                                 "class_map": class_map_rule(maps, model, targets)})
            rows += [
                self.row("occlusion-delta-acc", acc_least - acc_most, split=split_name, detail=detail),
                self.row("occlusion-acc-most", acc_most, split=split_name, detail=detail),
                self.row("occlusion-acc-least", acc_least, split=split_name, detail=detail),
            ]
        return rows
