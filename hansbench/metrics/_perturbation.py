"""Shared batched machinery of the perturbation metrics (ordering, occlusion, insertion).

Every perturbed image of every step of every image goes through the model in chunks of
``batch_size`` images: the Python loop runs over chunks, never over steps or images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from hansbench.datasets.base import Split
from hansbench.models.modes import eval_mode


def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    """The device of the model's parameters (or ``fallback`` for a parameter-free model)."""
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device(fallback)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no autograd for the duration, restoring the caller's mode afterwards."""
    with eval_mode(model), torch.no_grad():
        yield model


def score_function(model: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:
    """``f(x) -> [B, K (+P)]``: logits, followed by the prototype scores for ProtoPNet; and K.

    One forward pass yields both, since a ProtoPNet's logits are ``last_layer(scores)``.
    """
    num_classes = int(model.num_classes) if hasattr(model, "num_classes") else -1
    if getattr(model, "has_prototypes", False):

        def f(x: torch.Tensor) -> torch.Tensor:
            s = model.scores(x)
            return torch.cat([model.last_layer(s), s], dim=1)

        return f, num_classes
    return model, num_classes


def tie_order(n_pixels: int, generator: torch.Generator | None) -> torch.Tensor | None:
    """One seeded random pixel order that breaks ties in relevance (None: no generator, pixel order)."""
    return None if generator is None else torch.randperm(n_pixels, generator=generator)


def descending_ranks(maps: torch.Tensor, generator: torch.Generator | None = None, *,
                     ties: torch.Tensor | None = None) -> torch.Tensor:
    """Rank of every pixel in descending order of relevance: ``[..., H, W] -> [..., H*W]``.

    Ties are broken by a seeded random pixel order (``generator``, or a precomputed ``ties``
    permutation from :func:`tie_order`, shared by every map), so a flat map does not put the top
    rows first; without either, ties keep the pixel order (stable sort).
    """
    flat = maps.flatten(-2)
    if flat.is_floating_point() and bool(torch.isnan(flat).any()):
        raise ValueError("relevance maps contain NaN, so their pixel order is undefined; fix the explainer's output")
    if ties is None:
        ties = tie_order(flat.shape[-1], generator)
    if ties is None:
        order = torch.argsort(flat, dim=-1, descending=True, stable=True)
    else:
        ties = ties.to(flat.device)
        order = ties[torch.argsort(flat[..., ties], dim=-1, descending=True, stable=True)]
    ranks = torch.empty_like(order)
    ranks.scatter_(-1, order, torch.arange(flat.shape[-1], device=flat.device).expand_as(order))
    return ranks


def step_counts(n_pixels: int, n_steps: int) -> torch.Tensor:
    """Pixels moved after each of ``n_steps`` equally spaced fractions in [0, 1] (first 0, last all)."""
    if n_steps < 2:
        raise ValueError(f"n_steps must be >= 2, got {n_steps}")
    return torch.round(torch.linspace(0, 1, n_steps, dtype=torch.float64) * n_pixels).long()


def ordering_curves(
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    baselines: torch.Tensor,
    order_maps: torch.Tensor,
    *,
    n_steps: int = 21,
    mode: str = "insertion",
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Model outputs along relevance orderings: ``[N, O, S, D]``.

    ``images``/``baselines``: ``[N, C, H, W]`` in the model's input space. ``order_maps``:
    ``[N, O, H, W]``, O orderings per image. ``insertion``: start from the baseline and put
    the image's pixels back, most relevant first; ``deletion``: start from the image and
    replace its pixels by the baseline's, most relevant first. Step s moves
    ``round(s / (S - 1) * H * W)`` pixels (all channels of a pixel together).
    ``batch_size`` (images per forward) defaults to 64 on CPU, where larger batches fall out
    of cache and run slower per image (measured), and 1024 on accelerators. ``generator``: the
    seeded random order that breaks ties in relevance (:func:`descending_ranks`), one for all
    maps, so equal maps (e.g. of an image with and without the artifact) move pixels alike.
    """
    if mode not in ("insertion", "deletion"):
        raise ValueError(f"mode must be 'insertion' or 'deletion', got {mode!r}")
    n, c, h, w = images.shape
    if order_maps.shape[0] != n or order_maps.shape[-2:] != (h, w):
        raise ValueError(f"order maps {tuple(order_maps.shape)} do not match images {tuple(images.shape)}")
    n_orders = order_maps.shape[1]
    device = images.device
    if batch_size is None:
        batch_size = 64 if device.type == "cpu" else 1024
    ks = step_counts(h * w, n_steps).to(device)
    flat_maps = order_maps.reshape(n * n_orders, h, w)
    image_of = torch.arange(n, device=device).repeat_interleave(n_orders)
    per_chunk = max(1, batch_size // n_steps)
    ties = tie_order(h * w, generator)
    outputs = []
    for start in range(0, n * n_orders, per_chunk):
        sl = slice(start, start + per_chunk)
        ranks = descending_ranks(flat_maps[sl].to(device), ties=ties)  # [m, HW]
        moved = (ranks[:, None, :] < ks[None, :, None]).view(-1, n_steps, 1, h, w)  # [m, S, 1, H, W]
        idx = image_of[sl]
        img, base = images[idx][:, None], baselines[idx][:, None]
        x = torch.where(moved, img, base) if mode == "insertion" else torch.where(moved, base, img)
        out = forward(x.reshape(-1, c, h, w))
        outputs.append(out.reshape(-1, n_steps, out.shape[-1]))
    return torch.cat(outputs).reshape(n, n_orders, n_steps, -1)


def trapezoid_auc(curves: torch.Tensor) -> torch.Tensor:
    """Area under curves sampled at equally spaced points of [0, 1] (last dim)."""
    if curves.shape[-1] < 2:
        raise ValueError(f"an area needs curves of at least 2 points, got {curves.shape[-1]}")
    return torch.trapezoid(curves, dx=1.0 / (curves.shape[-1] - 1), dim=-1)


def seeded_choice(candidates: torch.Tensor, n: int | None, generator: torch.Generator) -> torch.Tensor:
    """Up to ``n`` of ``candidates`` (all if ``n`` is None), chosen with ``generator``, sorted."""
    if n is None or n >= candidates.numel():
        return candidates
    pick = torch.randperm(candidates.numel(), generator=generator)[:n]
    return candidates[pick].sort().values


# Salts of ctx.generator per split: metrics that pick images of the same split with the same
# candidates pick the same images, so the runner's map cache serves them all.
CHOICE_SALT = {"train": 100, "clean_test": 101, "artifact_test": 102}
NOISE_SALT = {"train": 200, "clean_test": 201, "artifact_test": 202}
TIE_SALT = 250  # the pixel order that breaks ties in relevance
PAIRED_SPLITS = ("clean_test", "artifact_test")  # the same images, without and with the artifact


def affected_indices(split: Split, cls: int) -> torch.Tensor:
    """Images that really show class ``cls`` (true labels, so relabelled backdoor images count)."""
    return split.of_class(cls, by="true_labels")


def source_indices(split: Split, classes: list[int]) -> torch.Tensor:
    """Images that really show one of ``classes`` (``ScenarioData.source_classes``: the affected class,
    all-to-one: every class but the target), by true label."""
    wanted = torch.as_tensor(list(classes), dtype=split.true_labels.dtype)
    return torch.nonzero(torch.isin(split.true_labels, wanted)).flatten()


def compact_values(values: torch.Tensor) -> list[float]:
    """Per-image values (4 significant digits) for a row's ``detail["per_image"]`` (C5: the leaderboard
    bootstraps over seeds x images); their mean is the row's value up to the rounding."""
    return [float(f"{v:.4g}") for v in values.flatten().tolist()]


def batched(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``forward`` over ``x`` in chunks, concatenated."""
    return torch.cat([forward(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def compact_curve(curve: torch.Tensor) -> list[float]:
    """A curve as a short list of floats (4 significant digits) for a row's JSON ``detail``."""
    return compact_values(curve)


def view_prototypes(model: nn.Module, targets: torch.Tensor, n_views: int) -> torch.Tensor | None:
    """Which prototype each view of a multi-view ProtoPNet map shows: ``[N, V]`` (-1 = padding), or None.

    PRP and ProtoPNet upsampling give one view per prototype of the target class, in index
    order (``model.prototypes_of(c)``), padded with zero maps up to ``prototypes_per_class``
    when prototypes were pruned. ``None`` when the views are not of that kind: a model that is
    not a ProtoPNet, a single view, or a view count that matches neither
    ``prototypes_per_class`` nor every target class's number of prototypes.
    """
    if not getattr(model, "has_prototypes", False) or n_views <= 1:
        return None
    targets = torch.as_tensor(targets, dtype=torch.long).flatten().cpu()
    per_class = int(getattr(model, "prototypes_per_class", -1))
    out = torch.full((targets.numel(), n_views), -1, dtype=torch.long)
    for c in targets.unique().tolist():
        protos = model.prototypes_of(int(c)).cpu()
        if protos.numel() > n_views or n_views not in (per_class, protos.numel()):
            return None
        out[targets == c, : protos.numel()] = protos
    return out


def class_map(maps: torch.Tensor, model: nn.Module, targets: torch.Tensor) -> torch.Tensor:
    """One map per image ``[N, 1, H, W]`` from ``[N, V, H, W]`` (PAPERS.md §2, last line).

    For a ProtoPNet whose V views are the prototypes of the target class c (see
    :func:`view_prototypes`): ``sum_j w_h[c, j] * map_j`` with ``w_h`` the last layer's weights
    (padding views of pruned prototypes weigh 0). Otherwise (V = 1, or views that are not
    prototypes, e.g. CRP concepts) the views are summed. Every metric that collapses views
    uses this one function.
    """
    if maps.dim() != 4:
        raise ValueError(f"maps [N, V, H, W] expected, got {tuple(maps.shape)}")
    if maps.shape[1] == 1:
        return maps
    targets = torch.as_tensor(targets, dtype=torch.long).flatten().cpu()
    if targets.numel() != maps.shape[0]:
        raise ValueError(f"{targets.numel()} targets for {maps.shape[0]} maps")
    views = view_prototypes(model, targets, maps.shape[1])
    if views is None:
        return maps.sum(dim=1, keepdim=True)
    weight = model.last_layer.weight.detach().float().cpu()  # [K, P]
    w = torch.where(views >= 0, weight[targets[:, None], views.clamp(min=0)], torch.zeros(()))  # [N, V]
    return (maps * w.to(maps.device, maps.dtype)[:, :, None, None]).sum(dim=1, keepdim=True)


def class_map_rule(maps: torch.Tensor, model: nn.Module, targets: torch.Tensor) -> str:
    """How :func:`class_map` collapses these maps, for a row's detail: ``single``, ``weighted`` or ``sum``."""
    if maps.shape[1] == 1:
        return "single"
    return "sum" if view_prototypes(model, targets, maps.shape[1]) is None else "weighted"
