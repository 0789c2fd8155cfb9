"""ProtoPNet's training stages (PAPERS.md section 2): losses, warm-up and joint epochs, push,
and last-layer-only training (also used after pruning, on a copy).

warm-up (backbone frozen) -> joint -> push at ``push_start``, every ``push_every`` epochs and at
the end -> after each push, last-layer-only training on fixed prototype scores.
"""

from __future__ import annotations

import copy
import math
import warnings

import torch
import torch.nn.functional as F

from hansbench.datasets.base import Split
from hansbench.models.modes import eval_mode
from hansbench.models.precision import autocast
from hansbench.models.protopnet import ProtoPNet
from hansbench.models.recipes import ProtoPNetRecipe
from hansbench.models.trainers import augment_batch, batches, generators, progress_bar, set_requires_grad

__all__ = ["last_layer_l1", "protopnet_losses", "push_prototypes", "retrain_last_layer", "train_protopnet"]


def protopnet_losses(model: ProtoPNet, logits: torch.Tensor, min_distances: torch.Tensor,
                     labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(cross-entropy, Clst, Sep) [C]: Clst/Sep = batch mean of the min distance to own/other-class prototypes."""
    own = model.prototype_class_identity[:, labels].t() > 0  # [B, P]
    active = (model.prototype_mask > 0)[None]
    inf = torch.finfo(min_distances.dtype).max
    clst = min_distances.masked_fill(~(own & active), inf).min(dim=1).values.mean()
    sep = min_distances.masked_fill(~(~own & active), inf).min(dim=1).values.mean()
    return F.cross_entropy(logits, labels), clst, sep


def last_layer_l1(model: ProtoPNet) -> torch.Tensor:
    """L1 norm of the last layer's off-class weights (the convex stage's sparsity term)."""
    return (model.last_layer.weight * (1 - model.prototype_class_identity.t())).abs().sum()


def train_protopnet(model: ProtoPNet, train: Split, recipe: ProtoPNetRecipe, *, seed: int,
                    device: torch.device, progress: bool = True) -> None:
    """The stages of PAPERS.md section 2, in place; push set = ``train`` (unaugmented), by ``labels``."""
    shuffle, aug = generators(seed)
    warm_opt = torch.optim.Adam([
        {"params": model.add_on.parameters(), "lr": recipe.warm_lr, "weight_decay": recipe.warm_weight_decay},
        {"params": [model.prototype_layer.prototypes], "lr": recipe.warm_lr},
    ])
    joint_opt = torch.optim.Adam([
        {"params": model.backbone.parameters(), "lr": recipe.joint_backbone_lr,
         "weight_decay": recipe.joint_weight_decay},
        {"params": model.add_on.parameters(), "lr": recipe.joint_add_on_lr,
         "weight_decay": recipe.joint_weight_decay},
        {"params": [model.prototype_layer.prototypes], "lr": recipe.joint_prototype_lr},
    ])
    joint_sched = torch.optim.lr_scheduler.StepLR(joint_opt, step_size=recipe.joint_lr_step,
                                                  gamma=recipe.joint_lr_gamma)
    last_opt = torch.optim.Adam(model.last_layer.parameters(), lr=recipe.last_layer_lr)
    pushes = set(recipe.push_epochs())
    bar = progress_bar(range(1, recipe.epochs + 1), enabled=progress, desc="protopnet")
    for epoch in bar:
        warm = epoch <= recipe.warm_epochs
        # Warm-up: backbone weights frozen; BatchNorm statistics still follow the data as in [C].
        set_requires_grad(model, False)
        set_requires_grad(model.add_on, True)
        model.prototype_layer.prototypes.requires_grad_(True)
        if not warm:
            set_requires_grad(model.backbone, True)
        opt = warm_opt if warm else joint_opt
        model.train()
        total = torch.zeros(3, device=device)
        for idx in batches(len(train), recipe.batch_size, shuffle):
            x = train.images[idx].to(device, non_blocking=True)
            y = train.labels[idx].to(device, non_blocking=True)
            if recipe.augment:
                x = augment_batch(x, aug, shift=recipe.augment_shift, flip=recipe.flip)
            with autocast(recipe.precision, device):  # warm-up and joint only (distances in float32)
                logits, min_d = model.forward_with_min_distances(model.normalize(x))
                ce, clst, sep = protopnet_losses(model, logits, min_d, y)
                loss = ce + recipe.clst * clst + recipe.sep * sep
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += torch.stack([ce, clst, sep]).detach() * len(idx)
        if not warm:
            joint_sched.step()
        if epoch in pushes:
            push_prototypes(model, train, device=device, batch_size=recipe.push_batch_size)
            _train_last_layer(model, train, epochs=recipe.last_layer_epochs, optimizer=last_opt, l1=recipe.l1,
                              batch_size=recipe.last_layer_batch_size, generator=shuffle, device=device)
        if bar.disable is False:
            ce, clst, sep = (total / len(train)).tolist()
            bar.set_postfix(stage="warm" if warm else "joint", ce=f"{ce:.3f}", clst=f"{clst:.3f}", sep=f"{sep:.3f}")
    set_requires_grad(model, True)
    model.eval()


@torch.no_grad()
def _scores(model: ProtoPNet, images01: torch.Tensor, *, device: torch.device, batch_size: int = 256) -> torch.Tensor:
    """Prototype scores of every image ``[N, P]`` on ``device`` (model in eval mode)."""
    out = [model.scores(model.normalize(images01[i:i + batch_size].to(device, non_blocking=True)))
           for i in range(0, len(images01), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, model.num_prototypes, device=device)


def _train_last_layer(model: ProtoPNet, train: Split, *, epochs: int, optimizer: torch.optim.Optimizer, l1: float,
                      batch_size: int, generator: torch.Generator, device: torch.device,
                      progress: bool = False) -> None:
    """Last-layer-only training (CE + l1 * off-class L1), in place.

    Everything below the last layer is frozen and in eval mode, so the prototype scores are fixed:
    they are computed once and the convex problem is solved on them (same result, a fraction of the cost).
    Pruned prototypes' columns stay zero.
    """
    if epochs <= 0:
        return
    with eval_mode(model):
        scores = _scores(model, train.images, device=device)
        labels = train.labels.to(device)
        keep = (model.prototype_mask > 0).to(model.last_layer.weight.dtype)[None]  # [1, P]
        set_requires_grad(model, False)
        model.last_layer.weight.requires_grad_(True)
        try:
            for _ in progress_bar(range(epochs), enabled=progress, desc="last layer"):
                for idx in batches(len(train), batch_size, generator):
                    idx = idx.to(device)
                    loss = F.cross_entropy(model.last_layer(scores[idx]), labels[idx]) + l1 * last_layer_l1(model)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    with torch.no_grad():
                        model.last_layer.weight.mul_(keep)
        finally:
            set_requires_grad(model, True)


def retrain_last_layer(model: ProtoPNet, train: Split, *, epochs: int, lr: float = 1e-4, l1: float = 1e-4, seed: int,
                       device: torch.device | str, progress: bool = True, batch_size: int = 80) -> ProtoPNet:
    """A copy of ``model`` whose last layer alone was retrained (ProtoPNet's convex stage, after pruning).

    The original is untouched; backbone, add-on and prototypes are frozen (eval mode, BatchNorm
    statistics fixed). Returns the copy in eval mode on ``device``.
    """
    device = torch.device(device)
    new = copy.deepcopy(model).to(device)
    shuffle, _ = generators(seed)
    opt = torch.optim.Adam(new.last_layer.parameters(), lr=lr)
    _train_last_layer(new, train, epochs=epochs, optimizer=opt, l1=l1, batch_size=batch_size,
                      generator=shuffle, device=device, progress=progress)
    return new.eval()


def push_prototypes(model: ProtoPNet, push_set: Split, *, device: torch.device | str, batch_size: int = 128) -> None:
    """Project every (unpruned) prototype of class k onto its nearest latent patch of a class-k image, in place.

    Class membership is by ``push_set.labels``. Records the source index in ``push_set`` and the
    latent (row, col) in ``model.push_image_index`` / ``model.push_location``. Batched: all
    distances of a batch at once, running minima per prototype.
    """
    with eval_mode(model), torch.no_grad():
        _push(model, push_set, device=torch.device(device), batch_size=batch_size)


def _push(model: ProtoPNet, push_set: Split, *, device: torch.device, batch_size: int) -> None:
    """The body of :func:`push_prototypes` (the model already in eval mode, autograd off)."""
    protos = model.prototype_layer.prototypes
    p = protos.shape[0]
    proto_class = model.prototype_class_identity.argmax(dim=1)  # [P]
    active = model.prototype_mask > 0
    best = torch.full((p,), math.inf, device=protos.device)
    best_index = torch.full((p,), -1, dtype=torch.long, device=protos.device)
    best_loc = torch.full((p, 2), -1, dtype=torch.long, device=protos.device)
    best_patch = protos.detach().clone().view(p, -1)
    for start in range(0, len(push_set), batch_size):
        x = push_set.images[start:start + batch_size].to(device, non_blocking=True)
        y = push_set.labels[start:start + batch_size].to(device, non_blocking=True)
        z = model.latent(model.normalize(x))  # [B, D, h, w]
        b, _, h, w = z.shape
        d = model.prototype_layer.distances(z).flatten(2)  # [B, P, h*w]
        same = (y[:, None] == proto_class[None, :]) & active[None, :]  # [B, P]
        d = d.masked_fill(~same[:, :, None], math.inf)
        per_image, pos = d.min(dim=2)  # [B, P]
        val, bi = per_image.min(dim=0)  # [P]
        better = val < best
        loc = pos[bi, torch.arange(p, device=pos.device)]  # [P]
        patch = z[bi, :, loc // w, loc % w]  # [P, D]
        best = torch.where(better, val, best)
        best_index = torch.where(better, bi + start, best_index)
        best_loc = torch.where(better[:, None], torch.stack([loc // w, loc % w], dim=1), best_loc)
        best_patch = torch.where(better[:, None], patch, best_patch)
    found = best_index >= 0
    missing = active & ~found
    if missing.any():
        classes = sorted(set(proto_class[missing].tolist()))
        warnings.warn(f"push: no image of class(es) {classes} in the push set; their prototypes stay unpushed",
                      stacklevel=3)
    protos.data[found] = best_patch[found].view(-1, *protos.shape[1:]).to(protos.dtype)
    model.push_image_index[found] = best_index[found]
    model.push_location[found] = best_loc[found]
