"""What the maps' largest variations encode: the post-it, or something else (issue 30 item 1).

An unsupervised clusterer (SpRAy's spectral embedding, k-means) splits the maps along their largest
variations. Whether it separates the poisoned images therefore depends less on whether the maps *carry*
the artifact (``probe-ceiling`` answers that, with labels) than on whether the artifact is what the maps
vary most by. Seeds on which a detector's separability collapses are seeds on which something else — the
sign's size and position, the model's confidence — dominates the maps' variance. ``map-structure``
measures that per explainer and seed, from the clusterers' own input (the maps of the inspected class's
training images, average-pooled to ``[clustering] map_size``, views concatenated):

- ``poison-variance-share``: the share of the maps' total variance along the direction that joins the
  poisoned and the clean mean map (the post-it's direction); near 0: the post-it is a small variation
  among larger ones, and no unsupervised split will follow it.
- ``pc1-poison-corr``: |point-biserial correlation| (scipy) between the first principal component's
  score and the poisoned flag: does the largest variation *encode* the post-it?
- ``pc1-explained``: the first component's share of the variance (scikit-learn's PCA).
- ``pc1-box-corr``: |Pearson correlation| between the first component's score and the object's box
  area, where the dataset gives boxes (the synthetic signs do): does the largest variation encode the
  sign's size instead?

Never ranked: like the probe it reads the ground truth a detector never sees. Written by hand around
scikit-learn's PCA and scipy's correlations because no library reports a labelled direction's variance
share.
"""

from __future__ import annotations

import json

import numpy as np
from scipy import stats
from sklearn.decomposition import PCA

from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.presentation import Shows
from hansbench.metrics.probe import pooled
from hansbench.registry import metrics

STRUCTURE_VALUES = {
    "poison-variance-share": ("", True),
    "pc1-poison-corr": ("", True),
    "pc1-explained": ("", False),
    "pc1-box-corr": ("", False),
}


def direction_share(features: np.ndarray, poisoned: np.ndarray) -> float:
    """Share of the total variance of ``features`` along the unit vector from the clean to the poisoned mean.

    Between 0 and 1 (1: all variance is the poisoned/clean difference; a random direction in D
    dimensions gets about 1/D). NaN when the two means coincide or the features do not vary.
    """
    x = features - features.mean(0)
    d = features[poisoned].mean(0) - features[~poisoned].mean(0)
    norm, total = np.linalg.norm(d), float((x**2).sum())
    if norm == 0 or total == 0:
        return float("nan")
    return float(((x @ (d / norm)) ** 2).sum() / total)


def abs_corr(a: np.ndarray, b: np.ndarray) -> float:
    """|Pearson r| of two vectors (point-biserial when one is 0/1); NaN where either is constant."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(abs(stats.pearsonr(a, b).statistic))


def structure(features: np.ndarray, poisoned: np.ndarray, boxes: np.ndarray | None, seed: int) -> dict:
    """The four values of :mod:`map_structure` for one set of pooled maps (``poisoned`` boolean)."""
    pca = PCA(n_components=1, random_state=seed).fit(features)
    pc1 = pca.transform(features)[:, 0]
    out = {
        "poison-variance-share": direction_share(features, poisoned),
        "pc1-poison-corr": abs_corr(pc1, poisoned.astype(float)),
        "pc1-explained": float(pca.explained_variance_ratio_[0]),
    }
    if boxes is not None:
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        out["pc1-box-corr"] = abs_corr(pc1, area)
    return out


@metrics.register("map-structure")
class MapStructure(Metric):
    """What the maps vary most by: the post-it's share of their variance, and what the first component encodes.

    Options: ``map_size`` (None = the suite's ``[clustering] map_size`` rule on the map side, as the
    clusterers pool). Never ranked.
    """

    level = "explainer"
    requires = frozenset({"poisoned-and-clean"})
    values = STRUCTURE_VALUES
    presentation = Shows(table="map-structure", ranked=False, meaning="what the maps vary most by: the post-it's "
                         "share of their variance and what the first principal component encodes; never ranked")

    def __init__(self, map_size: int | None = None):
        if map_size is not None and int(map_size) < 1:
            raise ValueError(f"{self.name}: map_size {map_size} must be a positive side in pixels (or None)")
        self.map_size = None if map_size is None else int(map_size)

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """The structure values of the maps the clusterers see."""
        if ctx.explain is None:
            raise ValueError(f"{self.name} needs ctx.explain")
        index = ctx.data.train.of_class(ctx.data.inspect_class)
        maps = ctx.explain("train", index, ctx.data.explain_targets("train", index)).float().cpu()
        poisoned = ctx.data.train.poisoned[index].cpu().numpy().astype(bool)
        if poisoned.sum() < 2 or (~poisoned).sum() < 2:
            return []
        boxes = ctx.data.train.boxes
        boxes = None if boxes is None else boxes[index].cpu().numpy().astype(np.float64)
        values = structure(pooled(maps, self.map_size), poisoned, boxes, ctx.seed)
        detail = json.dumps({"n_poisoned": int(poisoned.sum()), "n_clean": int((~poisoned).sum()),
                             "explained": ctx.data.explain_rule("train", index)})
        return [self.row(k, v, split="train", detail=detail) for k, v in values.items() if np.isfinite(v)]
