"""Training recipes for the plain classifier and ProtoPNet, push, and prediction helpers.

Everything is seeded through explicit generators (model init inside ``torch.random.fork_rng``,
shuffling and augmentation from ``torch.Generator``s), so the global RNG is never the source of
truth: the same seed gives the same weights on the same machine (on CUDA only as far as the
convolution kernels are deterministic). Data stay on the CPU and move to ``device`` batch by batch.

ProtoPNet follows PAPERS.md section 2: warm-up (backbone frozen) -> joint -> push at
``push_start``, every ``push_every`` epochs and at the end -> after each push, last-layer-only
training. The recipe dataclasses hold the paper's values; :data:`QUICK_CONFIG` holds the
scaled-down values that train a random-init small ResNet on 32 px images in seconds on a CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from hansbench.datasets.base import Split
from hansbench.models.backbones import build_backbone
from hansbench.models.classifier import Classifier
from hansbench.models.protopnet import ProtoPNet

__all__ = [
    "ClassifierRecipe",
    "ProtoPNetRecipe",
    "MODEL_KINDS",
    "QUICK_CONFIG",
    "build_model",
    "recipe_from_config",
    "split_config",
    "train_model",
    "train_classifier",
    "train_protopnet",
    "protopnet_losses",
    "push_prototypes",
    "retrain_last_layer",
    "last_layer_l1",
    "predict",
    "accuracy",
    "augment_batch",
]


# --------------------------------------------------------------------------- recipes
@dataclass
class ClassifierRecipe:
    """Adam on cross-entropy with a cosine learning-rate schedule and mild shift augmentation."""

    epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"  # "cosine" | "constant"
    augment: bool = True
    augment_shift: float = 0.0625  # random crop after zero padding by this fraction of the image side
    flip: bool = False  # horizontal flips (off: signs carry text and the artifact has a fixed side)

    def __post_init__(self) -> None:
        _check_positive(self, ("batch_size", "lr"))
        _check_non_negative(self, ("epochs", "weight_decay", "augment_shift"))
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")


@dataclass
class ProtoPNetRecipe:
    """ProtoPNet's stages with the values of PAPERS.md section 2 ([P]/[C]).

    Epochs are counted over warm-up + joint (1-based); a push (followed by
    ``last_layer_epochs`` of last-layer training) happens after epoch ``e`` when
    ``e >= push_start`` and ``(e - push_start) % push_every == 0``, and always after the last epoch.
    """

    warm_epochs: int = 5
    joint_epochs: int = 25
    push_start: int = 10
    push_every: int = 10
    last_layer_epochs: int = 20
    batch_size: int = 80
    warm_lr: float = 3e-3  # add-on and prototypes [C]
    warm_weight_decay: float = 1e-3  # add-on only [C]
    joint_backbone_lr: float = 1e-4
    joint_add_on_lr: float = 3e-3
    joint_prototype_lr: float = 3e-3
    joint_weight_decay: float = 1e-3  # backbone and add-on [C]
    joint_lr_step: int = 5  # StepLR step (joint epochs) [C]
    joint_lr_gamma: float = 0.1
    last_layer_lr: float = 1e-4
    last_layer_batch_size: int = 80
    clst: float = 0.8
    sep: float = -0.08
    l1: float = 1e-4
    augment: bool = True  # warm-up and joint only; push and last layer see the unaugmented images
    augment_shift: float = 0.0625
    flip: bool = False
    push_batch_size: int = 128

    def __post_init__(self) -> None:
        _check_positive(self, ("batch_size", "warm_lr", "joint_backbone_lr", "joint_add_on_lr", "joint_prototype_lr",
                               "last_layer_lr", "last_layer_batch_size", "push_batch_size", "push_every",
                               "joint_lr_step"))
        _check_non_negative(self, ("warm_epochs", "joint_epochs", "push_start", "last_layer_epochs",
                                   "warm_weight_decay", "joint_weight_decay", "l1", "augment_shift"))

    @property
    def epochs(self) -> int:
        return self.warm_epochs + self.joint_epochs

    def push_epochs(self) -> list[int]:
        """The (1-based) epochs after which prototypes are pushed."""
        total = self.epochs
        pushes = [e for e in range(max(self.push_start, 1), total + 1) if (e - self.push_start) % self.push_every == 0]
        if total > 0 and (not pushes or pushes[-1] != total):
            pushes.append(total)
        return pushes


def _check_positive(recipe: Any, names: Sequence[str]) -> None:
    for name in names:
        if not getattr(recipe, name) > 0:
            raise ValueError(f"{type(recipe).__name__}.{name} must be > 0, got {getattr(recipe, name)!r}")


def _check_non_negative(recipe: Any, names: Sequence[str]) -> None:
    for name in names:
        if not getattr(recipe, name) >= 0:
            raise ValueError(f"{type(recipe).__name__}.{name} must be >= 0, got {getattr(recipe, name)!r}")


# Scaled-down values for the CPU default (32 px, small-resnet, ~1000 images). The backbone starts
# from random weights, so (unlike the paper's ImageNet-pretrained one) it needs a larger joint
# learning rate and a later learning-rate step to learn anything in a few epochs.
QUICK_CONFIG: dict[str, dict[str, Any]] = {
    "classifier": {"epochs": 8, "batch_size": 64, "lr": 2e-3},
    "protopnet": {
        "prototypes_per_class": 5,
        "prototype_dim": 32,
        "warm_epochs": 2,
        "joint_epochs": 8,
        "push_start": 10,
        "push_every": 10,
        "last_layer_epochs": 10,
        "batch_size": 64,
        "joint_backbone_lr": 2e-3,
        "joint_lr_step": 6,
        "last_layer_lr": 1e-2,
    },
}


# --------------------------------------------------------------------------- model kinds
@dataclass(frozen=True)
class ModelKind:
    """How to build, configure and train one kind of model."""

    build: Callable[..., nn.Module]
    recipe: type
    options: tuple[str, ...]  # keyword options of ``build`` besides backbone/num_classes/mean/std
    train: Callable[..., None]  # train(model, train_split, recipe, *, seed, device, progress)


_MODEL_KEYS = ("backbone", "backbone_options")


def _build_classifier(backbone: nn.Module, num_classes: int, mean, std) -> nn.Module:
    return Classifier(backbone, num_classes, mean, std)


def _build_protopnet(backbone: nn.Module, num_classes: int, mean, std, **options) -> nn.Module:
    return ProtoPNet(backbone, num_classes, mean, std, **options)


def build_model(kind: str, *, num_classes: int, mean, std, backbone: str = "small-resnet",
                backbone_options: dict | None = None, **model_options) -> nn.Module:
    """A freshly initialised model of ``kind`` ("classifier" or "protopnet"), from the global RNG."""
    spec = _kind(kind)
    unknown = sorted(set(model_options) - set(spec.options))
    if unknown:
        raise ValueError(f"unknown {kind} option {unknown[0]!r}; accepted: {', '.join(spec.options) or '(none)'}")
    net = build_backbone(backbone, **(backbone_options or {}))
    return spec.build(net, num_classes, tuple(mean), tuple(std), **model_options)


def _kind(kind: str) -> ModelKind:
    try:
        return MODEL_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {', '.join(sorted(MODEL_KINDS))}") from None


def split_config(kind: str, config: dict) -> tuple[dict, Any]:
    """Split a suite's model config into ``build_model`` keywords and a validated recipe."""
    spec = _kind(kind)
    recipe = recipe_from_config(kind, config)
    model_keys = set(_MODEL_KEYS) | set(spec.options)
    return {k: v for k, v in config.items() if k in model_keys}, recipe


def recipe_from_config(kind: str, config: dict) -> Any:
    """The recipe of ``kind`` with the recipe fields of ``config`` set.

    Model keys (``backbone``, ``backbone_options`` and the kind's model options) are accepted and
    ignored here; any other unknown key raises, naming the key and the accepted ones.
    """
    spec = _kind(kind)
    fields = [f.name for f in dataclasses.fields(spec.recipe)]
    accepted = fields + list(_MODEL_KEYS) + list(spec.options)
    for key in config:
        if key not in accepted:
            raise ValueError(f"unknown {kind} config key {key!r}; accepted: {', '.join(accepted)}")
    return spec.recipe(**{k: v for k, v in config.items() if k in fields})


def train_model(kind: str, train: Split, *, num_classes: int, mean, std, config: dict, seed: int,
                device: torch.device | str, progress: bool = True) -> nn.Module:
    """Build (seeded) and train a model of ``kind`` on ``train``; returns it in eval mode on ``device``.

    ``config`` holds ``backbone``, ``backbone_options``, the model options and the recipe
    fields together (see :func:`recipe_from_config`).
    """
    device = torch.device(device)
    model_kwargs, recipe = split_config(kind, config)
    with _forked_rng(device):
        torch.manual_seed(seed)
        model = build_model(kind, num_classes=num_classes, mean=mean, std=std, **model_kwargs)
    model.to(device)
    _kind(kind).train(model, train, recipe, seed=seed, device=device, progress=progress)
    return model.eval()


def _forked_rng(device: torch.device):
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


# --------------------------------------------------------------------------- data plumbing
def _generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """Independent generators for shuffling and augmentation (toggling one leaves the other alone)."""
    return torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 0x5EED)


def _batches(n: int, batch_size: int, generator: torch.Generator | None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def augment_batch(x: torch.Tensor, generator: torch.Generator, *, shift: float, flip: bool) -> torch.Tensor:
    """Random crop after zero padding by ``shift`` of the side (and optional horizontal flip), batched.

    Random numbers come from the CPU ``generator``; the gather runs on ``x``'s device.
    """
    b, _, h, w = x.shape
    pad = int(round(shift * min(h, w)))
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
        ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
        rows = (oy[:, None] + torch.arange(h, device=x.device)[None])[:, None, :, None]  # [B,1,H,1]
        cols = (ox[:, None] + torch.arange(w, device=x.device)[None])[:, None, None, :]  # [B,1,1,W]
        bi = torch.arange(b, device=x.device)[:, None, None, None]
        ci = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[bi, ci, rows, cols]
    if flip:
        flips = (torch.rand(b, generator=generator) < 0.5).to(x.device)
        x = torch.where(flips[:, None, None, None], x.flip(-1), x)
    return x


def _progress(iterable, *, enabled: bool, desc: str):
    return tqdm(iterable, desc=desc, disable=not (enabled and sys.stderr.isatty()), leave=False)


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


# --------------------------------------------------------------------------- classifier
def train_classifier(model: nn.Module, train: Split, recipe: ClassifierRecipe, *, seed: int,
                     device: torch.device, progress: bool = True) -> None:
    """Adam + cross-entropy, in place; the model ends in eval mode."""
    shuffle, aug = _generators(seed)
    _set_requires_grad(model, True)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(recipe.epochs, 1))
             if recipe.lr_schedule == "cosine" else None)
    bar = _progress(range(recipe.epochs), enabled=progress, desc="classifier")
    for _ in bar:
        model.train()
        total = torch.zeros((), device=device)
        for idx in _batches(len(train), recipe.batch_size, shuffle):
            x = train.images[idx].to(device, non_blocking=True)
            y = train.labels[idx].to(device, non_blocking=True)
            if recipe.augment:
                x = augment_batch(x, aug, shift=recipe.augment_shift, flip=recipe.flip)
            loss = F.cross_entropy(model(model.normalize(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
        if sched is not None:
            sched.step()
        if bar.disable is False:
            bar.set_postfix(loss=f"{(total / len(train)).item():.3f}")
    model.eval()


# --------------------------------------------------------------------------- ProtoPNet
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
    shuffle, aug = _generators(seed)
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
    bar = _progress(range(1, recipe.epochs + 1), enabled=progress, desc="protopnet")
    for epoch in bar:
        warm = epoch <= recipe.warm_epochs
        # Warm-up: backbone weights frozen; BatchNorm statistics still follow the data as in [C].
        _set_requires_grad(model, False)
        _set_requires_grad(model.add_on, True)
        model.prototype_layer.prototypes.requires_grad_(True)
        if not warm:
            _set_requires_grad(model.backbone, True)
        opt = warm_opt if warm else joint_opt
        model.train()
        total = torch.zeros(3, device=device)
        for idx in _batches(len(train), recipe.batch_size, shuffle):
            x = train.images[idx].to(device, non_blocking=True)
            y = train.labels[idx].to(device, non_blocking=True)
            if recipe.augment:
                x = augment_batch(x, aug, shift=recipe.augment_shift, flip=recipe.flip)
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
    _set_requires_grad(model, True)
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
    was_training = model.training
    model.eval()
    scores = _scores(model, train.images, device=device)
    labels = train.labels.to(device)
    keep = (model.prototype_mask > 0).to(model.last_layer.weight.dtype)[None]  # [1, P]
    _set_requires_grad(model, False)
    model.last_layer.weight.requires_grad_(True)
    for _ in _progress(range(epochs), enabled=progress, desc="last layer"):
        for idx in _batches(len(train), batch_size, generator):
            idx = idx.to(device)
            loss = F.cross_entropy(model.last_layer(scores[idx]), labels[idx]) + l1 * last_layer_l1(model)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.last_layer.weight.mul_(keep)
    _set_requires_grad(model, True)
    model.train(was_training)


def retrain_last_layer(model: ProtoPNet, train: Split, *, epochs: int, lr: float = 1e-4, l1: float = 1e-4, seed: int,
                       device: torch.device | str, progress: bool = True, batch_size: int = 80) -> ProtoPNet:
    """A copy of ``model`` whose last layer alone was retrained (ProtoPNet's convex stage, after pruning).

    The original is untouched; backbone, add-on and prototypes are frozen (eval mode, BatchNorm
    statistics fixed). Returns the copy in eval mode on ``device``.
    """
    device = torch.device(device)
    new = copy.deepcopy(model).to(device)
    shuffle, _ = _generators(seed)
    opt = torch.optim.Adam(new.last_layer.parameters(), lr=lr)
    _train_last_layer(new, train, epochs=epochs, optimizer=opt, l1=l1, batch_size=batch_size,
                      generator=shuffle, device=device, progress=progress)
    return new.eval()


@torch.no_grad()
def push_prototypes(model: ProtoPNet, push_set: Split, *, device: torch.device | str, batch_size: int = 128) -> None:
    """Project every (unpruned) prototype of class k onto its nearest latent patch of a class-k image, in place.

    Class membership is by ``push_set.labels``. Records the source index in ``push_set`` and the
    latent (row, col) in ``model.push_image_index`` / ``model.push_location``. Batched: all
    distances of a batch at once, running minima per prototype.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
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
                      stacklevel=2)
    protos.data[found] = best_patch[found].view(-1, *protos.shape[1:]).to(protos.dtype)
    model.push_image_index[found] = best_index[found]
    model.push_location[found] = best_loc[found]
    model.train(was_training)


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict(model: nn.Module, images01: torch.Tensor, *, device: torch.device | str, batch_size: int = 256
            ) -> torch.Tensor:
    """Logits ``[N, K]`` on the CPU for images in [0, 1]; runs in eval mode and restores the mode."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        out = [model(model.normalize(images01[i:i + batch_size].to(device, non_blocking=True))).float().cpu()
               for i in range(0, len(images01), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, model.num_classes)


def accuracy(model: nn.Module, split: Split, *, device: torch.device | str, classes: Sequence[int] | None = None,
             labels: str = "labels", batch_size: int = 256) -> float:
    """Share of samples predicted as their ``labels`` (or ``true_labels``); with ``classes``, only the
    samples whose true class is among them (e.g. stop signs of the artifact test)."""
    if labels not in ("labels", "true_labels"):
        raise ValueError(f"labels must be 'labels' or 'true_labels', got {labels!r}")
    if classes is not None:
        keep = torch.isin(split.true_labels, torch.as_tensor(list(classes), dtype=split.true_labels.dtype))
        if not keep.any():
            raise ValueError(f"no sample of true class {list(classes)} in the split")
        split = split.subset(keep)
    if len(split) == 0:
        raise ValueError("accuracy of an empty split")
    pred = predict(model, split.images, device=device, batch_size=batch_size).argmax(dim=1)
    return (pred == getattr(split, labels)).float().mean().item()


MODEL_KINDS: dict[str, ModelKind] = {
    "classifier": ModelKind(_build_classifier, ClassifierRecipe, (), train_classifier),
    "protopnet": ModelKind(_build_protopnet, ProtoPNetRecipe, ("prototypes_per_class", "prototype_dim", "epsilon"),
                           train_protopnet),
}
