"""Artifact insertion (SpRAy paper Sec. 3, Table 3): paste the artifact on other classes' images.

Explainer-free: it characterises the model. If the model learned the artifact as a
shortcut for a class, stamping it on images of other classes moves that class up the
prediction ranking and raises its probability. The watched class is
``data.inspect_class``: the affected class for Clever Hans scenarios, the target class for
backdoors (the class the trigger sends images to). Images are ``clean_test`` images whose
true class is not the watched one (for backdoors this includes the affected source class). The
artifact is stamped relative to each image's object box (``Split.boxes``), as in training, so a
post-it sits on the sign, not at the bottom of the frame.

Values, with "higher_is_better" meaning "stronger shortcut": ``insertion-rank-change``
(mean rank after - rank before, 1 = top class; negative = moved toward the watched class,
so lower is stronger), ``insertion-prob-change`` (mean softmax change of the watched class)
and ``insertion-flip-rate`` (% of the images not predicted as the watched class before
that are predicted as it after).
"""

from __future__ import annotations

import json
from dataclasses import replace

import torch

from hansbench.metrics._perturbation import CHOICE_SALT, batched, evaluating, model_device, seeded_choice
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.presentation import RELIANCE
from hansbench.registry import artifacts, metrics


def class_rank(logits: torch.Tensor, cls: int) -> torch.Tensor:
    """1-based rank of class ``cls`` in each row of ``logits`` (ties count against it)."""
    if bool(torch.isnan(logits).any()):
        raise ValueError("class rank: the logits contain NaN (a diverged model?); no rank is defined")
    return (logits >= logits[:, cls : cls + 1]).sum(1)


def insertion_logits(ctx: EvalContext, watched: int, n_images: int | None = 200,
                     batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Logits of clean-test images of other classes than ``watched``, without and with the artifact stamped.

    Returns ``(index, before [n, K], after [n, K])`` (logits on the CPU), or None when the scenario
    has no artifact or no image of another class. The images are a seeded choice of up to
    ``n_images`` ``clean_test`` images whose true class is not ``watched``; the artifact is
    ``registry.artifacts[data.artifact]`` built with ``data.meta["artifact_options"]`` and
    stamped with a seeded generator, relative to the images' object boxes (the frame when the
    split has none). Shared by ``artifact-insertion`` and ``reliance``, so both see the same
    images and stamps.
    """
    data = ctx.data
    if not data.artifact:
        return None  # a clean scenario has no artifact to insert
    artifact = artifacts.get(data.artifact)(**data.meta.get("artifact_options", {}))
    split = data.clean_test
    candidates = torch.nonzero(split.true_labels != watched).flatten()
    if candidates.numel() == 0:
        return None
    index = seeded_choice(candidates, n_images, ctx.generator(400 + CHOICE_SALT["clean_test"]))
    x01 = split.images[index]
    boxes = None if split.boxes is None else split.boxes[index]
    stamped, _ = artifact.stamp(x01.clone(), boxes=boxes, generator=ctx.generator(401))
    model = ctx.model
    device = model_device(model, ctx.device)
    with evaluating(model):
        both = model.normalize(torch.cat([x01, stamped.to(x01.dtype)]).to(device))
        logits = batched(model, both, batch_size).float().cpu()
    before, after = logits.chunk(2)
    return index, before, after


def flip_rate(before: torch.Tensor, after: torch.Tensor, watched: int) -> float:
    """% of the images not predicted as ``watched`` before stamping that are predicted as it after (0 if none)."""
    flipped = (before.argmax(1) != watched) & (after.argmax(1) == watched)
    n_before_other = int((before.argmax(1) != watched).sum())
    return 100.0 * int(flipped.sum()) / max(n_before_other, 1)


@metrics.register("artifact-insertion")
class ArtifactInsertion(Metric):
    """Mean rank and probability change of the inspect class when the artifact is pasted on other classes.

    Options: ``n_images`` clean-test images of other classes (seeded choice; default 200),
    ``batch_size``. The artifact is ``registry.artifacts[data.artifact]`` built with
    ``data.meta["artifact_options"]`` and stamped with a seeded generator (random boxes
    where the artifact places itself at random).
    """

    level = "model"
    version = "2"  # 2: stamped relative to the object boxes
    presentation = replace(RELIANCE, headline=("insertion-flip-rate", "insertion-rank-change"))
    values = {
        "insertion-rank-change": ("", False),
        "insertion-prob-change": ("", True),
        "insertion-flip-rate": ("%", True),
    }

    def __init__(self, n_images: int | None = 200, batch_size: int = 256):
        self.n_images = n_images
        self.batch_size = batch_size

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Rank, probability and flip-rate changes when the artifact is stamped on other classes' images."""
        data = ctx.data
        watched = data.inspect_class
        out = insertion_logits(ctx, watched, self.n_images, self.batch_size)
        if out is None:
            return []
        index, before, after = out
        rank_before, rank_after = class_rank(before, watched), class_rank(after, watched)
        prob_change = after.softmax(1)[:, watched] - before.softmax(1)[:, watched]
        detail = json.dumps({
            "n_images": int(index.numel()), "watched_class": watched, "artifact": data.artifact,
            "mean_rank_before": float(rank_before.float().mean()), "mean_rank_after": float(rank_after.float().mean()),
        })
        return [
            self.row("insertion-rank-change", (rank_after - rank_before).float().mean().item(), split="clean_test",
                     detail=detail),
            self.row("insertion-prob-change", prob_change.mean().item(), split="clean_test", detail=detail),
            self.row("insertion-flip-rate", flip_rate(before, after, watched), split="clean_test", detail=detail),
        ]
