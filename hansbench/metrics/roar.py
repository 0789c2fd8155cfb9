"""ROAR, RemOve And Retrain (Hooker et al. 2019): is what an explainer ranks as relevant what the task needs?

For each fraction t, the top t of every image's pixels by relevance are replaced by the
per-channel training mean in train and test images, a fresh model is trained on the modified
training set, and its accuracy on the modified test set is reported. Retraining is the point:
without it, the accuracy drop mixes "the information is gone" with "the images are off the
training distribution". A better explainer removes more information per pixel, so accuracy
drops faster: lower is better. The ``random`` explainer is the baseline to beat.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import torch

from hansbench.datasets.base import Split
from hansbench.metrics._perturbation import class_map, class_map_rule
from hansbench.metrics._retraining import predict_logits, require_train_model
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.detail import FRACTION
from hansbench.metrics.presentation import EXPLAINERS
from hansbench.registry import metrics


def relevance_ranks(maps: torch.Tensor, generator: torch.Generator, *, absolute: bool = False,
                    device: torch.device | str = "cpu", batch_size: int = 512) -> torch.Tensor:
    """Rank of every pixel by descending relevance, ``[N, H, W]`` int32 (0 = most relevant), on the CPU.

    Views are summed (the metric collapses multi-view maps with ``class_map`` first). Ties are broken by one
    seeded random pixel order shared by all images, so constant maps remove random pixels
    rather than always the top-left ones.
    """
    if maps.dim() != 4:
        raise ValueError(f"maps [N, V, H, W] expected, got {tuple(maps.shape)}")
    n, _, h, w = maps.shape
    perm = torch.randperm(h * w, generator=generator).to(device)
    out = torch.empty(n, h * w, dtype=torch.int32)  # a third of the images' memory
    for i in range(0, n, batch_size):
        r = maps[i:i + batch_size].to(device).float().sum(dim=1).flatten(1)
        if absolute:
            r = r.abs()
        order = perm[torch.argsort(r[:, perm], dim=1, descending=True, stable=True)]  # pixel ids, most relevant first
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(h * w, device=order.device).expand_as(order))
        out[i:i + batch_size] = ranks.to(torch.int32).cpu()
    return out.view(n, h, w)


def remove_pixels(split: Split, ranks: torch.Tensor, fraction: float, fill: Sequence[float]) -> Split:
    """A copy of ``split`` whose top ``fraction`` pixels (by ``ranks``) are set to ``fill`` (per channel, in [0, 1])."""
    h, w = ranks.shape[1:]
    k = int(round(fraction * h * w))
    drop = (ranks < k)[:, None]  # [N, 1, H, W]
    value = torch.as_tensor(fill, dtype=split.images.dtype).view(1, -1, 1, 1)
    images = torch.where(drop, value, split.images)
    return Split(images, split.labels, split.true_labels, split.poisoned, split.masks)


@metrics.register("roar")
class ROAR(Metric):
    """Remove the most relevant pixels (top t %) in train and test, retrain, measure test accuracy (Hooker et al. 2019).

    Removed pixels take the per-channel mean of the scenario's input normalisation
    (``data.mean``, the training mean): 0 in the models' normalised space, i.e. "no signal".
    ``fractions`` default 0.1, 0.3, 0.5; a fraction of 0 scores the context's model on the
    unmodified test set without retraining. ``absolute=True`` ranks by |relevance|.
    Value ``roar-acc`` (%, lower is better: the removed pixels carried the information).
    Every image is explained for the class ``ScenarioData.explain_targets`` gives (its label;
    a backdoor's triggered artifact-test images: the target class) and multi-view maps are
    collapsed to the class map (``sum_j w_h[c, j] map_j`` for ProtoPNet prototype views, else
    the sum). ``detail`` is JSON: ``fraction``, ``explained`` (the test split's rule), ``class_map``.
    """

    level = "explainer"
    presentation = replace(EXPLAINERS, headline=("roar-acc",), column_detail=FRACTION)
    version = "2"  # explain_targets; class map weighted by the last layer; JSON detail
    needs_retraining = True
    values = {"roar-acc": ("%", False)}

    def __init__(self, *, fractions: Sequence[float] = (0.1, 0.3, 0.5), absolute: bool = False,
                 test_split: str = "clean_test"):
        fractions = [float(t) for t in fractions]
        if not fractions or any(not 0.0 <= t < 1.0 for t in fractions):
            raise ValueError(f"fractions must be a non-empty list of values in [0, 1), got {fractions}")
        if test_split not in ("clean_test", "artifact_test"):
            raise ValueError(f"test_split must be 'clean_test' or 'artifact_test', got {test_split!r}")
        self.fractions = sorted(set(fractions))
        self.absolute = bool(absolute)
        self.test_split = test_split

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Retrain with the top fractions of pixels by relevance removed; accuracy on the modified clean test."""
        if ctx.explain is None:
            raise ValueError("metric 'roar' needs ctx.explain")
        data, rows = ctx.data, []
        test = getattr(data, self.test_split)
        if 0.0 in self.fractions:
            rows.append(self._row(ctx.model, test, 0.0, ctx))
        todo = [t for t in self.fractions if t > 0]
        if not todo:
            return rows
        train_model = require_train_model(ctx, self.name)
        gen = ctx.generator(salt=0x40A5)
        train_maps, _ = self._class_maps(ctx, "train")
        test_maps, collapse = self._class_maps(ctx, self.test_split)
        train_ranks = relevance_ranks(train_maps, gen, absolute=self.absolute, device=ctx.device)
        test_ranks = relevance_ranks(test_maps, gen, absolute=self.absolute, device=ctx.device)
        for t in todo:
            model = train_model(remove_pixels(data.train, train_ranks, t, data.mean),
                                f"roar:{ctx.explainer}:{t}")
            rows.append(self._row(model, remove_pixels(test, test_ranks, t, data.mean), t, ctx, collapse))
        return rows

    @staticmethod
    def _class_maps(ctx: EvalContext, split_name: str) -> tuple[torch.Tensor, str]:
        """Class maps ``[N, 1, H, W]`` of every image of the split (explained for ``explain_targets``) and how
        the views were collapsed."""
        targets = ctx.data.explain_targets(split_name)
        maps = ctx.explain(split_name, None, targets)
        return class_map(maps, ctx.model, targets), class_map_rule(maps, ctx.model, targets)

    def _row(self, model, split: Split, t: float, ctx: EvalContext, collapse: str = "") -> dict:
        pred = predict_logits(model, split, ctx.device).argmax(dim=1)
        acc = 100.0 * (pred == split.labels).float().mean().item()
        detail = {FRACTION: t, "explained": ctx.data.explain_rule(self.test_split)}
        if collapse:
            detail["class_map"] = collapse
        return self.row("roar-acc", acc, split=self.test_split, stage="retrained" if t > 0 else "none",
                        detail=json.dumps(detail))
