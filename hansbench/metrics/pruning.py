"""Prototype pruning + last-layer retraining (PRP paper Tables I and IV, Fig. 3).

The idea under test: if an explanation shows which prototypes learned the artifact, pruning
them should remove the artifact's effect. PRP's finding is that it does not once the last layer
is retrained, because the artifact is entangled in most prototypes. Two metrics:

- ``prototype-pruning`` (per multi-view explainer): a prototype is flagged when its maps put at
  least ``threshold`` of their positive relevance inside the artifact mask of poisoned training
  images (or the ``top_n`` prototypes with the largest share);
- ``prototype-pruning-protopnet`` (explainer-free): ProtoPNet's own pruning rule as the baseline.

Both prune, then retrain the last layer, and report the affected class's accuracy on the artifact
and clean test sets at stages ``before`` / ``pruned`` / ``retrained`` (and the attack success rate
for backdoors). ``pair_matrix=True`` adds PRP Fig. 3: the accuracy drop for pruning every single
prototype and every pair of the inspected class, from one scores pass (pruning = masking scores).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hansbench.metrics._memo import RETRAINED
from hansbench.metrics._retraining import ASR, CLASS_ACC, TEST_SPLITS, stage_rows
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.presentation import Shows
from hansbench.models.modes import eval_mode
from hansbench.models.protopnet_training import retrain_last_layer
from hansbench.models.pruning import protopnet_prune_candidates, prune_prototypes
from hansbench.registry import metrics


def artifact_shares(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean over images of each view's positive relevance inside the mask over its total positive relevance.

    ``maps [N, V, H, W]``, ``masks [N, H, W]`` -> ``[V]``. A view with no positive relevance on an
    image counts 0 for that image (it points nowhere, so not at the artifact).
    """
    if maps.dim() != 4 or masks.shape != (maps.shape[0], *maps.shape[2:]):
        raise ValueError(f"maps [N, V, H, W] and masks [N, H, W] expected, got {tuple(maps.shape)} and "
                         f"{tuple(masks.shape)}")
    if bool(torch.isnan(maps).any()):
        raise ValueError("artifact shares: the maps contain NaN; fix the explainer's output")
    pos = maps.float().clamp(min=0)
    inside = (pos * masks.to(pos.device, pos.dtype)[:, None]).sum(dim=(2, 3))
    total = pos.sum(dim=(2, 3))
    share = torch.where(total > 0, inside / total.clamp(min=torch.finfo(pos.dtype).tiny), torch.zeros_like(total))
    return share.mean(dim=0)


@torch.no_grad()
def prototype_scores(model: nn.Module, images01: torch.Tensor, *, device: torch.device,
                     batch_size: int = 256) -> torch.Tensor:
    """Prototype similarity scores ``[N, P]`` on ``device`` (pruned prototypes score 0), eval mode."""
    with eval_mode(model):
        out = [model.scores(model.normalize(images01[i:i + batch_size].to(device, non_blocking=True)))
               for i in range(0, len(images01), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, model.num_prototypes, device=device)


def pair_masks(prototypes: torch.Tensor, num_prototypes: int) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Keep-masks ``[Q, P]`` for pruning every single prototype (i, i) and every pair (i < j) of ``prototypes``."""
    protos = prototypes.tolist()
    pairs = [(a, b) for ia, a in enumerate(protos) for b in protos[ia:]]
    keep = torch.ones(len(pairs), num_prototypes)
    q = torch.arange(len(pairs))
    keep[q, torch.tensor([a for a, _ in pairs], dtype=torch.long)] = 0
    keep[q, torch.tensor([b for _, b in pairs], dtype=torch.long)] = 0
    return keep, pairs


def pair_accuracy_drops(model: nn.Module, images01: torch.Tensor, true_class: int, prototypes: torch.Tensor, *,
                        device: torch.device, batch_size: int = 256) -> tuple[float, torch.Tensor, list]:
    """Accuracy (%) on ``images01`` (all of class ``true_class``) unpruned, and its drop for every
    single/pair pruning of ``prototypes``: ``(base, drops [Q], pairs)``.

    Pruning a prototype = zeroing its score (what :func:`prune_prototypes` does), so all prunings are
    one matrix product of the masked scores with the last layer: no forward pass per pair.
    """
    scores = prototype_scores(model, images01, device=device, batch_size=batch_size)  # [N, P]
    weight = model.last_layer.weight.detach()  # [K, P]
    keep, pairs = pair_masks(prototypes.cpu(), weight.shape[1])
    keep = keep.to(scores.device, scores.dtype)
    base = (scores @ weight.t()).argmax(dim=1).eq(true_class).float().mean() * 100
    logits = torch.einsum("np,qp,kp->qnk", scores, keep, weight)  # [Q, N, K]
    acc = logits.argmax(dim=2).eq(true_class).float().mean(dim=1) * 100
    return base.item(), (base - acc).cpu(), pairs


class _PruningMetric(Metric):
    """Shared stages of the two pruning metrics; subclasses choose the prototypes to prune."""

    model_kinds = ("protopnet",)
    presentation = Shows(
        table="pruning", shape="stages", headline=("class-acc", "asr", "n-pruned"), undirected=("n-pruned",),
        stages=("before", "pruned", "retrained"),
        meaning="affected-class accuracy % before, after pruning the flagged prototypes, after last-layer retraining "
                "(PRP Table I)")
    values = {
        **CLASS_ACC,
        **ASR,
        "n-pruned": ("count", False),
        "pair-acc-drop": ("%", True),  # PRP Fig. 3: a large drop marks prototypes that carry the class decision
    }

    def __init__(self, *, epochs: int = 100, lr: float = 1e-4, l1: float = 1e-4, pair_matrix: bool = False,
                 batch_size: int = 256):
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        self.epochs = int(epochs)
        self.lr = float(lr)
        self.l1 = float(l1)
        self.pair_matrix = bool(pair_matrix)
        self.batch_size = int(batch_size)

    def _stages(self, ctx: EvalContext, pruned_indices: torch.Tensor) -> list[dict]:
        """Rows of the stages before / pruned / retrained (+ n-pruned, + pair matrix)."""

        model, data = ctx.model, ctx.data
        pruned_indices = torch.as_tensor(pruned_indices, dtype=torch.long).flatten().cpu().sort().values
        rows = [self.row("n-pruned", pruned_indices.numel(), stage="pruned",
                         detail=",".join(str(i) for i in pruned_indices.tolist()))]
        before = stage_rows(self, model, data, ctx.device, "before")
        rows += before
        if pruned_indices.numel() == 0:
            # Nothing flagged: the intervention is a no-op; retraining would only add training time.
            rows += [{**r, "stage": s} for s in ("pruned", "retrained") for r in before]
        else:
            # two methods that blame the same prototypes share the pruned and the retrained copy (both are copies)
            blamed = tuple(pruned_indices.tolist())
            pruned = RETRAINED.get((model,), ("pruned", blamed), lambda: prune_prototypes(model, pruned_indices))
            rows += stage_rows(self, pruned, data, ctx.device, "pruned")
            retrained = RETRAINED.get(
                (model, data.train.images), ("last-layer", blamed, self.epochs, self.lr, self.l1, ctx.seed,
                                             str(ctx.device)),
                lambda: retrain_last_layer(pruned, data.train, epochs=self.epochs, lr=self.lr, l1=self.l1,
                                           seed=ctx.seed, device=ctx.device, progress=False))
            rows += stage_rows(self, retrained, data, ctx.device, "retrained")
        if self.pair_matrix:
            rows += self._pair_rows(ctx)
        return rows

    def _pair_rows(self, ctx: EvalContext) -> list[dict]:
        """PRP Fig. 3 over the inspected class's prototypes; detail ``"i,j"`` = global prototype indices."""
        data, rows = ctx.data, []
        protos = ctx.model.prototypes_of(data.inspect_class)
        for name in TEST_SPLITS:
            split = getattr(data, name)
            idx = split.of_class(data.affected_class, by="true_labels")
            if idx.numel() == 0 or protos.numel() == 0:
                continue
            _, drops, pairs = pair_accuracy_drops(ctx.model, split.images[idx], data.affected_class, protos,
                                                  device=ctx.device, batch_size=self.batch_size)
            rows += [self.row("pair-acc-drop", d, split=name, stage="pruned", detail=f"{a},{b}")
                     for (a, b), d in zip(pairs, drops.tolist())]
        return rows


@metrics.register("prototype-pruning")
class PrototypePruning(_PruningMetric):
    """Prune the prototypes whose multi-view maps point at the artifact, retrain the last layer (PRP Tables I, IV).

    Views must be one per prototype of the inspected class (``prototypes_of(cls)[v]``); single-view
    explainers give no rows. Share of prototype v = positive relevance inside the artifact mask /
    total positive relevance, averaged over the poisoned training images of the inspected class,
    explained for the class ``ScenarioData.explain_targets`` gives (the inspected class, their label).
    ``threshold`` (default 0.5: most of the prototype's evidence lies on the artifact) flags by
    share; ``top_n`` instead prunes the n prototypes with the largest share. ``max_images`` caps
    the images explained (a seeded subset).
    """

    level = "explainer"
    requires = frozenset({"prototype-views"})

    def __init__(self, *, threshold: float = 0.5, top_n: int | None = None, max_images: int | None = None,
                 **options: Any):
        super().__init__(**options)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold is a share of relevance in [0, 1], got {threshold}")
        if top_n is not None and top_n < 0:
            raise ValueError(f"top_n must be >= 0, got {top_n}")
        if max_images is not None and max_images < 1:
            raise ValueError(f"max_images must be >= 1, got {max_images}")
        self.threshold = float(threshold)
        self.top_n = None if top_n is None else int(top_n)
        self.max_images = None if max_images is None else int(max_images)

    def flag(self, shares: torch.Tensor) -> torch.Tensor:
        """Positions (views) to prune given each view's artifact share ``[V]``."""
        if self.top_n is not None:
            order = torch.argsort(shares, descending=True, stable=True)
            return order[: min(self.top_n, shares.numel())].sort().values
        return torch.nonzero(shares >= self.threshold).flatten()

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Prune the prototypes whose maps sit on the artifact, retrain the last layer; accuracy per stage."""
        if ctx.explain is None:
            raise ValueError("metric 'prototype-pruning' needs ctx.explain")
        data, cls = ctx.data, ctx.data.inspect_class
        protos = ctx.model.prototypes_of(cls).cpu()
        train = data.train
        index = torch.nonzero(train.poisoned & (train.labels == cls)).flatten()
        if index.numel() == 0 or protos.numel() == 0:
            return []  # nothing poisoned to look at (e.g. a clean scenario)
        if self.max_images is not None and index.numel() > self.max_images:
            pick = torch.randperm(index.numel(), generator=ctx.generator(salt=0x9A1)).narrow(0, 0, self.max_images)
            index = index[pick.sort().values]
        target = data.explain_targets("train", index)  # the inspected class: CH affected, BD target (= labels)
        maps = ctx.explain("train", index, target)
        if maps.dim() != 4 or maps.shape[1] != protos.numel():
            return []  # not one view per prototype of the class: nothing to prune by
        shares = artifact_shares(maps, train.masks[index])
        return self._stages(ctx, protos[self.flag(shares.cpu())])


@metrics.register("prototype-pruning-protopnet")
class ProtoPNetPruning(_PruningMetric):
    """ProtoPNet's own pruning rule (k nearest training patches, too few of its class) + last-layer retraining.

    The explainer-free baseline of ``prototype-pruning``. ``scope="all"`` (default) prunes the
    candidates of every class, as ProtoPNet does; ``scope="inspect"`` only those of the inspected class.
    """

    level = "model"

    def __init__(self, *, k: int = 6, prune_threshold: int = 3, scope: str = "all", **options: Any):
        super().__init__(**options)
        if scope not in ("all", "inspect"):
            raise ValueError(f"scope must be 'all' or 'inspect', got {scope!r}")
        self.k = int(k)
        self.prune_threshold = int(prune_threshold)
        self.scope = scope

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """ProtoPNet's own pruning rule, then the last layer retrained; accuracy per stage."""

        cand = protopnet_prune_candidates(ctx.model, ctx.data.train, k=self.k, threshold=self.prune_threshold,
                                          device=ctx.device).cpu()
        if self.scope == "inspect":
            cand = cand[torch.isin(cand, ctx.model.prototypes_of(ctx.data.inspect_class).cpu())]
        return self._stages(ctx, cand)
