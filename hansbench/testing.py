"""What tests, benchmarks and plugin authors share: data with a known answer, tiny models, references.

Planted-structure views and blob maps (clusterers), a corner-square artifact and tiny models
(explainers and metrics), and :func:`prp_reference_loop`, the per-image, per-prototype PRP that
the batched explainer is tested against and timed against. (The harness's timer and memory
sampler are :mod:`hansbench.bench.engine.kernel_timer`, used by the runner and the benchmarks alike.)

:func:`planted_views` makes multi-view maps in which each view alone is ambiguous and all views
together determine the groups -- the data on which a multi-view clusterer must beat a single-view
one. Two groups; per view each group has its own pattern (a random pixel mask of a ``side x side``
map). Every sample shows its group's pattern in exactly half of the views, chosen at random, and
the ambiguous midpoint of both patterns in the other half. One view therefore holds three blobs
(group 0, the mixed midpoint, group 1) and cannot separate the groups beyond ~75 % accuracy; all
views together can, since two samples of one group differ in at most V views by one pattern step
and samples of different groups in more. ``noise_views`` extra views of pure noise (same scale,
no group information) are appended after the informative ones.
"""

from __future__ import annotations

import numpy as np
import torch

from hansbench.methods.explainers import _zennit
from hansbench.methods.explainers.prp import class_prototype_views, prp_composite
from hansbench.models.kinds import build_model


def planted_views(n: int = 200, n_views: int = 6, side: int = 4, *, noise: float = 0.3, frac_b: float = 0.5,
                  seed: int = 0, noise_views: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(views [n, n_views + noise_views, side*side] float64, groups [n] int)``; deterministic for ``seed``.

    ``frac_b``: expected share of group 1 (the "poisoned" minority when < 0.5).
    """
    if n < 2 or n_views < 1 or side < 1 or noise_views < 0:
        raise ValueError(f"planted_views: need n >= 2, n_views >= 1, side >= 1, noise_views >= 0; "
                         f"got n={n}, n_views={n_views}, side={side}, noise_views={noise_views}")
    rng = np.random.default_rng(seed)
    d = side * side
    y = (rng.random(n) < frac_b).astype(np.int64)
    y[:2] = [0, 1]  # both groups present at any n
    patterns = (rng.random((2, n_views, d)) < 0.3).astype(np.float64)  # [group, view, pixel]
    informative = np.argsort(rng.random((n, n_views)), axis=1) < max(1, n_views // 2)
    x = np.where(informative[..., None], patterns[y], patterns.mean(axis=0)[None])
    x = x + noise * rng.standard_normal(x.shape)
    if noise_views:
        scale = float(x.std())
        x = np.concatenate([x, x.mean() + scale * rng.standard_normal((n, noise_views, d))], axis=1)
    return x, y


def blob_maps(n: int, n_views: int, side: int = 8, seed: int = 0) -> np.ndarray:
    """Heatmap-like maps ``[n, n_views, side*side]``: a noisy Gaussian blob per view; every third sample's
    blob sits near one fixed point (the "artifact" group), the others' anywhere. For transport-distance
    clusterers (Wasserstein SpRAy), whose maps must look like mass distributions."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side] / (side - 1)
    out = np.empty((n, n_views, side * side))
    for i in range(n):
        for v in range(n_views):
            c = np.array([0.8, 0.5]) if i % 3 == 0 else rng.random(2) * 0.6 + 0.2
            c = c + 0.1 * rng.standard_normal(2)
            m = np.exp(-((yy - c[0]) ** 2 + (xx - c[1]) ** 2) / (2 * 0.12**2))
            out[i, v] = (m + 0.2 * rng.standard_normal((side, side))).ravel()
    return out


class CornerSquare:
    """A test artifact with a known footprint: a ``value``-coloured 3x3 square in the bottom-right corner.

    Not registered (``hansbench list`` stays clean): a test registers it under a name of its own.
    """

    def __init__(self, value: float = 1.0):
        self.value = value

    def stamp(self, images01, boxes=None, generator=None):
        """The images with the square stamped, and its masks ``[N, H, W]``."""
        out = images01.clone()
        out[:, :, -3:, -3:] = self.value
        masks = torch.zeros(images01.shape[0], *images01.shape[-2:], dtype=torch.bool)
        masks[:, -3:, -3:] = True
        return out, masks


def tiny_model(kind: str = "classifier", *, num_classes: int = 3, side: int = 16, seed: int = 0, **options):
    """A seeded small-ResNet model of ``kind`` (widths 8, 16) with non-trivial BatchNorm statistics, in eval mode.

    Small enough that a test explains it in milliseconds on a CPU; ``options`` go to the model kind
    (e.g. ``prototypes_per_class=3, prototype_dim=8`` for a ProtoPNet).
    """
    torch.manual_seed(seed)
    model = build_model(kind, num_classes=num_classes, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                        backbone_options={"widths": (8, 16)}, **options)
    model.train()
    with torch.no_grad():  # running statistics that differ from the identity
        model(torch.randn(8, 3, side, side))
    return model.eval()


def prp_reference_loop(model, x, target, epsilon: float = 1e-12):
    """PRP the way the authors' code computes it: one forward and backward per image and prototype.

    Same composite and rules as :class:`PRP`; kept as the independent reference that tests
    compare the batched explainer against and that ``benchmarks/bench_prp.py`` times.
    """
    views = class_prototype_views(model, target)
    out = torch.zeros(*views.shape, *x.shape[-2:], device=x.device)
    with _zennit.explaining(model, prp_composite(model, epsilon)):
        for b in range(x.shape[0]):
            for v, j in enumerate(views[b].tolist()):
                if j < 0:  # padding view of a pruned prototype: a zero map
                    continue
                xb = x[b : b + 1].detach().clone().requires_grad_(True)
                s = model.scores(xb)
                start = torch.zeros_like(s)
                start[0, j] = s[0, j].detach()
                (r,) = torch.autograd.grad(s, xb, start)
                out[b, v] = r.sum(1)[0]
    return out
