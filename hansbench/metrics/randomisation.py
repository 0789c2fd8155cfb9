"""Model-randomisation sanity check (Adebayo et al. 2018, "Sanity checks for saliency maps").

Cascading randomisation from the output down: step k re-initialises layer groups 1..k of a copy
of the trained model, and the same images' maps on that model are compared with the trained
model's. A method whose maps stay similar at full randomisation does not depend on what the
model learned (an edge detector on the input survives; so does any map that is a function of
the image alone, e.g. the seeded ``random`` baseline, whose maps are the same on every model).

Layer groups (:func:`layer_groups`), output side first: the model's own parameterised children
other than the backbone, in reverse registration order (classifier: ``fc``; ProtoPNet:
``last_layer``, ``prototype_layer``, ``add_on``), then the backbone's blocks from the last to the
first, where a block is a child of ``backbone.layers`` that holds parameterised submodules (a
residual block, a torchvision stage) or a convolution with the normalisation layers that follow
it (the stem: conv + BatchNorm, named ``backbone.layers.0-1``). Re-initialisation
(:func:`reinitialise`): every submodule's own ``reset_parameters`` (Conv, Linear, BatchNorm:
also its running statistics), under a seeded RNG that leaves the global one untouched; a
parameter whose module has none (ProtoPNet's prototypes) is redrawn from a seeded normal with
the trained parameter's mean and std (the scale the next layer expects, none of the values).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from torch import nn

from hansbench.metrics._perturbation import CHOICE_SALT, seeded_choice
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.detail import PER_IMAGE
from hansbench.metrics.presentation import Shows
from hansbench.registry import metrics

Group = tuple[str, tuple[str, ...]]  # (name, module paths in the model)
RANDOMISATION_SALT = 300  # ctx.generator / seed salt of the re-initialisations (step k uses salt + k)
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _backbone_blocks(model: nn.Module) -> list[Group]:
    """The backbone's blocks, input side first (see the module docstring)."""
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        return []
    container = getattr(backbone, "layers", backbone)
    prefix = "backbone.layers" if container is not backbone else "backbone"
    blocks: list[list[str]] = []
    for name, child in container.named_children():
        if not _has_params(child):
            continue
        path = f"{prefix}.{name}"
        leaf = not any(_has_params(c) for c in child.children())
        if leaf and isinstance(child, _NORMS) and blocks and blocks[-1][-1] != "block":
            blocks[-1].insert(-1, path)  # a norm layer belongs to the conv before it
        else:
            blocks.append([path, "leaf" if leaf else "block"])
    out = []
    for b in blocks:
        paths = tuple(b[:-1])
        name = paths[0] if len(paths) == 1 else f"{paths[0]}-{paths[-1].rsplit('.', 1)[-1]}"
        out.append((name, paths))
    return out


def layer_groups(model: nn.Module) -> list[Group]:
    """The cascade: parameterised layer groups of ``model``, output side first (module docstring)."""
    head = [(name, (name,)) for name, child in model.named_children()
            if name != "backbone" and _has_params(child)][::-1]
    groups = head + _backbone_blocks(model)[::-1]
    if not groups:
        raise ValueError(f"model-randomisation found no parameterised layers in {type(model).__name__}")
    return groups


def _fork_devices(model: nn.Module) -> list[int]:
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})


@torch.no_grad()
def reinitialise(model: nn.Module, paths: tuple[str, ...], seed: int) -> None:
    """Re-initialise the modules at ``paths`` in place (their own init, seeded; module docstring)."""
    with torch.random.fork_rng(devices=_fork_devices(model)):
        torch.manual_seed(seed)
        for path in paths:
            for module in model.get_submodule(path).modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
                    continue
                for p in module.parameters(recurse=False):
                    std = float(p.std()) if p.numel() > 1 else 1.0
                    p.copy_(torch.randn_like(p) * std + p.mean())


def cascade(model: nn.Module, groups: list[Group], seed: int,
            reinit: Callable[[nn.Module, tuple[str, ...], int], None] = reinitialise) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(group name, model)`` with groups ``1..k`` randomised at step ``k``; a new copy each step.

    ``model`` itself is never changed. Step ``k`` re-initialises group ``k`` with seed ``seed + k``
    (``reinit(model, paths, seed)``; a test passes Quantus' rule to compare with its MPRT).
    """
    current = model
    for k, (name, paths) in enumerate(groups):
        current = copy.deepcopy(current)
        reinit(current, paths, seed + k)
        yield name, current


# -- similarities (per image and view: [N, V]) -----------------------------------------------------------------
def spearman_rows(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Spearman's rank correlation of ``a[i, v]`` and ``b[i, v]`` over pixels, ``[N, V]``; NaN for a constant map.

    scipy's ``rankdata`` (average ranks for ties) then Pearson of the ranks per row: exactly
    ``scipy.stats.spearmanr`` of each pair, batched instead of one call per image and view.
    """
    ra = rankdata(a.flatten(2).double().cpu().numpy(), axis=-1)
    rb = rankdata(b.flatten(2).double().cpu().numpy(), axis=-1)
    ra -= ra.mean(-1, keepdims=True)
    rb -= rb.mean(-1, keepdims=True)
    den = np.sqrt((ra * ra).sum(-1) * (rb * rb).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def unit_range(maps: torch.Tensor) -> torch.Tensor:
    """Each map ``[..., H, W]`` min-max scaled to [0, 1] (a constant map becomes zeros)."""
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - lo
    return torch.where(span > 0, (maps - lo) / torch.where(span > 0, span, 1.0), torch.zeros_like(maps))


def _gaussian_filter(x: torch.Tensor, sigma: float, radius: int) -> torch.Tensor:
    """Separable Gaussian filter of ``x [M, H, W]`` with scipy.ndimage's 'reflect' border (edge repeated)."""
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    w = w / w.sum()
    for dim in (-1, -2):
        left = x.narrow(dim, 0, radius).flip(dim)
        right = x.narrow(dim, x.shape[dim] - radius, radius).flip(dim)
        xp = torch.cat([left, x, right], dim=dim)  # symmetric padding: d c b a | a b c d | d c b a
        xp = xp.movedim(dim, -1)
        shape = xp.shape
        y = F.conv1d(xp.reshape(-1, 1, shape[-1]), w.view(1, 1, -1)).reshape(*shape[:-1], -1)
        x = y.movedim(-1, dim)
    return x


def ssim(a: torch.Tensor, b: torch.Tensor, *, data_range: float = 1.0, sigma: float = 1.5,
         truncate: float = 3.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004) of ``a[..., H, W]`` and ``b``, ``[...]``: Gaussian window, population covariance.

    Hand-written in torch because the maps are already tensors of a whole batch and no installed
    dependency computes a batched SSIM (scikit-image, the test's reference, works on one NumPy pair
    at a time and is not a dependency). Same definition as ``skimage.metrics.structural_similarity(
    a, b, data_range=..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``: a window
    of radius ``int(truncate * sigma + 0.5)`` (11 px), 'reflect' borders, the SSIM map's border of
    that radius cropped before averaging. Maps smaller than the window get a radius of
    ``(side - 1) // 2`` instead (scikit-image refuses them).
    """
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
    lead, (h, w) = a.shape[:-2], a.shape[-2:]
    radius = min(int(truncate * sigma + 0.5), (min(h, w) - 1) // 2)
    x, y = a.reshape(-1, h, w).double(), b.reshape(-1, h, w).double()
    if radius < 1:
        raise ValueError(f"ssim needs maps of at least 3 x 3 pixels, got {h} x {w}")
    filt = lambda z: _gaussian_filter(z, sigma, radius)  # noqa: E731
    ux, uy = filt(x), filt(y)
    vx, vy, vxy = filt(x * x) - ux * ux, filt(y * y) - uy * uy, filt(x * y) - ux * uy
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    s = s[:, radius:h - radius, radius:w - radius]
    return s.mean(dim=(-2, -1)).reshape(lead).float()


def similarities(trained: torch.Tensor, randomised: torch.Tensor) -> dict[str, np.ndarray]:
    """Per image ``[N]`` (mean over views): Spearman of |maps|, of signed maps, SSIM of [0, 1]-scaled maps.

    An undefined Spearman (a map that became constant) counts as 0: it kept none of the ranking.
    """
    out = {
        "spearman-abs": spearman_rows(trained.abs(), randomised.abs()),
        "spearman": spearman_rows(trained, randomised),
        "ssim": ssim(unit_range(trained.float()), unit_range(randomised.float())).cpu().numpy().astype(np.float64),
    }
    return {k: np.nan_to_num(v, nan=0.0).mean(axis=1) for k, v in out.items()}


@metrics.register("model-randomisation")
class ModelRandomisation(Metric):
    """Sanity check: maps of a cascadingly randomised model vs the trained model's (Adebayo et al. 2018).

    Options: ``n_images`` inspected-class clean-test images (seeded choice; default 20), explained
    for ``data.explain_targets``; ``threshold`` (0.5): ``survives-randomisation`` = 1 when the mean
    Spearman of |maps| at full randomisation is still >= it; ``batch_size`` of the explanations;
    ``not_for``: explainers left out (default ClaDec: its setup trains a decoder, and retraining it
    for every randomised model costs more than the whole check; its maps of the trained model's
    decoder on a randomised model would test the decoder, not the model).
    """

    level = "explainer"
    presentation = Shows(
        table="model-randomisation", shape="explainer", headline=("spearman-abs", "survives-randomisation"),
        ranked=False,
        meaning=("similarity of each explainer's maps after cascading randomisation of the layers (output first) to "
                 "the trained model's; high at full randomisation = the maps do not depend on what the model learned"),
        marks={"survives-randomisation": "maps survive model randomisation (Adebayo et al. 2018): "
                                         "they do not depend on what the model learned"})
    values = {
        "spearman-abs": ("", False),  # lower = the maps depend more on the learned parameters
        "spearman": ("", False),
        "ssim": ("", False),
        "survives-randomisation": ("bool", False),
    }

    def __init__(self, n_images: int | None = 20, threshold: float = 0.5, batch_size: int = 32,
                 not_for: tuple[str, ...] | list[str] = ("cladec", "cladec-diff")):
        if not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"model-randomisation: threshold {threshold} is a Spearman correlation; give one in [0, 1]")
        self.n_images = n_images
        self.threshold = float(threshold)
        self.batch_size = int(batch_size)
        self.not_for = list(not_for)

    def not_applicable(self, *, model_kind: str, scenario: dict, explainer: Any = None, explainer_name: str = "",
                       clusterer_name: str = "") -> str | None:
        """Also left out for the explainers in ``not_for`` (their setup trains a model of its own)."""
        if explainer_name in self.not_for:
            return (f"{self.name} leaves out {explainer_name} (option not_for): its setup trains a model of its own, "
                    "which every randomisation step would have to retrain")
        return super().not_applicable(model_kind=model_kind, scenario=scenario, explainer=explainer,
                                      explainer_name=explainer_name, clusterer_name=clusterer_name)

    def _maps(self, fn: Callable, model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.cat([fn(model, x[i:i + self.batch_size], t[i:i + self.batch_size]).detach().float().cpu()
                          for i in range(0, len(x), self.batch_size)])

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Spearman similarity of the |maps| of cascadingly randomised models to the trained model's."""
        if ctx.explain is None or ctx.explain_model is None:
            raise ValueError(f"{self.name} needs ctx.explain and ctx.explain_model (the runner sets both for "
                             "explainer-level metrics)")
        split = ctx.data.clean_test
        candidates = split.of_class(ctx.data.inspect_class)
        if candidates.numel() == 0:
            return []  # no clean-test image of the inspected class
        index = seeded_choice(candidates, self.n_images, ctx.generator(CHOICE_SALT["clean_test"]))
        targets = ctx.data.explain_targets("clean_test", index)
        trained = ctx.explain("clean_test", index, targets).float().cpu()
        x = ctx.model.normalize(split.images[index].to(ctx.device))
        t = targets.to(ctx.device)
        base = {"n_images": int(index.numel()), "views": int(trained.shape[1]),
                "explained": ctx.data.explain_rule("clean_test", index)}
        groups = layer_groups(ctx.model)
        rows, last = [], None
        for k, (name, model) in enumerate(cascade(ctx.model, groups, ctx.seed * 1_000_003 + RANDOMISATION_SALT)):
            sims = similarities(trained, self._maps(ctx.explain_model, model, x, t))
            del model
            paths = list(groups[k][1])
            for value, per_image in sims.items():
                detail = json.dumps({**base, "step": k + 1, "modules": paths,
                                     PER_IMAGE: [round(float(v), 6) for v in per_image]})
                rows.append(self.row(value, float(per_image.mean()), split="clean_test", stage=name, detail=detail))
            last = sims
        final = float(last["spearman-abs"].mean())
        survives = 1.0 if not math.isnan(final) and final >= self.threshold else 0.0
        rows.append(self.row("survives-randomisation", survives, split="clean_test", detail=json.dumps(
            {**base, "threshold": self.threshold, "final-spearman-abs": round(final, 6), "steps": len(groups)})))
        return rows
