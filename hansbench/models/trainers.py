"""The plain classifier's training loop and the data plumbing every trainer shares.

Everything is seeded through explicit generators (shuffling and augmentation from
``torch.Generator``s), so the global RNG is never the source of truth. Data stay on the CPU and
move to ``device`` batch by batch.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from hansbench.datasets.base import Split
from hansbench.models.precision import autocast
from hansbench.models.recipes import ClassifierRecipe

__all__ = ["augment_batch", "batches", "generators", "progress_bar", "set_requires_grad", "train_classifier"]


def generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """Independent generators for shuffling and augmentation (toggling one leaves the other alone)."""
    return torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 0x5EED)


def batches(n: int, batch_size: int, generator: torch.Generator | None):
    """Index batches over ``n`` samples, shuffled by ``generator`` (in order without one)."""
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


def progress_bar(iterable, *, enabled: bool, desc: str):
    """A tqdm bar on an interactive stderr only."""
    return tqdm(iterable, desc=desc, disable=not (enabled and sys.stderr.isatty()), leave=False)


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    """Freeze (``False``) or unfreeze every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(flag)


def train_classifier(model: nn.Module, train: Split, recipe: ClassifierRecipe, *, seed: int,
                     device: torch.device, progress: bool = True) -> None:
    """Adam + cross-entropy, in place; the model ends in eval mode.

    ``recipe.precision`` must already be resolved for ``device`` (:func:`hansbench.models.kinds.train_model`
    does): ``"bf16"`` runs forward and loss under bf16 autocast, the weights and Adam's state stay float32.
    """
    shuffle, aug = generators(seed)
    set_requires_grad(model, True)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(recipe.epochs, 1))
             if recipe.lr_schedule == "cosine" else None)
    bar = progress_bar(range(recipe.epochs), enabled=progress, desc="classifier")
    for _ in bar:
        model.train()
        total = torch.zeros((), device=device)
        for idx in batches(len(train), recipe.batch_size, shuffle):
            x = train.images[idx].to(device, non_blocking=True)
            y = train.labels[idx].to(device, non_blocking=True)
            if recipe.augment:
                x = augment_batch(x, aug, shift=recipe.augment_shift, flip=recipe.flip)
            with autocast(recipe.precision, device):
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
