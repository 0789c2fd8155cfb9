"""Class ranking by cluster separability tau (SpRAy paper Sec. 2.3).

Per class c: maps of up to ``n_per_class`` training images labelled c, explained for the
class ``ScenarioData.explain_targets`` gives (c, their label; recorded as ``"explained"``)
(sum-pooled to ~1/``downsample`` of the side, views concatenated as in SpRAy-PRP) ->
symmetric binary kNN graph -> spectral embedding (normalised Laplacian) -> k-means for
k = 2..k_max -> the largest generalised eigenvalue of Fisher's criterion
S_b v = lambda S_w v of each clustering; tau_c = mean over k. A class whose maps split into
distinct strategies (a Clever Hans cluster) gets a high tau, so ranking the inspect class
first (rank 1) means the explainer lets SpRAy find it without being told where to look.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.manifold import spectral_embedding
from sklearn.neighbors import kneighbors_graph

from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.presentation import EXPLAINERS
from hansbench.registry import metrics


def fisher_separability(x: np.ndarray, labels: np.ndarray) -> float:
    """Largest eigenvalue of S_w^-1 S_b for the clustering ``labels`` of the rows of ``x``.

    S_w gets a tiny ridge (1e-6 of its mean diagonal) so that perfectly separated clusters,
    whose within-scatter vanishes along the separating direction, give a large finite value.
    """
    mu = x.mean(0)
    d = x.shape[1]
    s_w = np.zeros((d, d))
    s_b = np.zeros((d, d))
    for k in np.unique(labels):
        xk = x[labels == k]
        mk = xk.mean(0)
        s_w += (xk - mk).T @ (xk - mk)
        s_b += np.outer(mk - mu, mk - mu)
    ridge = 1e-6 * max(np.trace(s_w) / d, 1e-12)
    return float(scipy.linalg.eigh(s_b, s_w + ridge * np.eye(d), eigvals_only=True)[-1])


def separability_tau(
    features: np.ndarray, *, n_neighbors: int = 10, n_components: int = 4, k_max: int = 10, random_state: int = 0
) -> float:
    """SpRAy's tau of one class's flattened maps ``[n, D]``; NaN with fewer than 4 samples.

    SpRAy's binary kNN graph (symmetrised), spectral embedding with the normalised
    Laplacian (trivial eigenvector dropped), k-means for k = 2..k_max, mean Fisher ratio.
    """
    n = features.shape[0]
    if n < 4:
        return math.nan
    if not np.isfinite(features).all():
        raise ValueError("separability: the maps contain NaN or inf; fix the explainer's output")
    if np.ptp(features, axis=0).max(initial=0.0) == 0:  # identical maps: nothing to separate (kNN ties are arbitrary)
        return 0.0
    graph = kneighbors_graph(features, n_neighbors=min(n_neighbors, n - 1), mode="connectivity", include_self=False)
    affinity = 0.5 * (graph + graph.T)
    # At most (n - k_max) / 2 components: with more, the within-cluster scatter of k-means
    # clusters becomes rank deficient and Fisher's ratio separates even pure noise.
    q = max(1, min(n_components, (n - min(k_max, n - 1)) // 2))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        emb = spectral_embedding(affinity, n_components=q, norm_laplacian=True, drop_first=True,
                                 random_state=random_state)
    taus = []
    for k in range(2, min(k_max, n - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit_predict(emb)
        if np.unique(labels).size < 2:
            continue
        taus.append(fisher_separability(emb, labels))
    return float(np.mean(taus)) if taus else math.nan


@metrics.register("class-ranking")
class ClassRanking(Metric):
    """Rank of the inspect class among all classes by SpRAy's cluster separability tau (1 = found).

    Options: ``n_per_class`` training images per class (seeded choice), ``k_max`` (10 on
    CPU; the paper uses 30), ``n_neighbors`` of the kNN graph, ``n_components`` of the
    embedding (default 4: SpRAy kept 32 for ~1300 maps per class; with the ~100 maps of our
    suites the extra eigenvectors are within-group noise that k-means splits on, hiding a
    planted two-strategy class), ``downsample`` (sum-pool maps by this factor per side). Ties in tau count
    against the inspect class (rank = number of classes with tau >= its tau), so an
    explainer giving every class the same tau does not rank first.
    """

    level = "explainer"
    presentation = replace(EXPLAINERS, headline=("tau-rank",))
    values = {"tau-rank": ("", False), "tau": ("", True)}

    def __init__(self, n_per_class: int = 100, k_max: int = 10, n_neighbors: int = 10, n_components: int = 4,
                 downsample: int = 3):
        if k_max < 2:
            raise ValueError(f"k_max must be >= 2, got {k_max}")
        self.n_per_class = n_per_class
        self.k_max = k_max
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.downsample = downsample

    def features(self, maps: torch.Tensor) -> np.ndarray:
        """Sum-pooled maps, views concatenated: ``[n, V, H, W] -> [n, V * h * w]``."""
        maps = maps.float()
        if self.downsample > 1:
            h, w = maps.shape[-2:]
            size = (max(1, math.ceil(h / self.downsample)), max(1, math.ceil(w / self.downsample)))
            maps = F.adaptive_avg_pool2d(maps, size)
        return maps.flatten(1).cpu().double().numpy()

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """The inspected class's rank by tau among all classes, and its tau."""
        if ctx.explain is None:
            raise ValueError(f"{self.name} needs ctx.explain")
        train = ctx.data.train
        taus = []
        for c in range(ctx.data.num_classes):
            idx = train.of_class(c)
            if self.n_per_class is not None and idx.numel() > self.n_per_class:
                pick = torch.randperm(idx.numel(), generator=ctx.generator(500 + c))[: self.n_per_class]
                idx = idx[pick].sort().values
            if idx.numel() < 4:
                taus.append(math.nan)
                continue
            maps = ctx.explain("train", idx, ctx.data.explain_targets("train", idx))  # class c: their label
            taus.append(separability_tau(self.features(maps), n_neighbors=self.n_neighbors,
                                         n_components=self.n_components, k_max=self.k_max, random_state=ctx.seed))
        inspect = ctx.data.inspect_class
        tau = np.asarray(taus)
        info = {"tau": [None if math.isnan(t) else float(f"{t:.4g}") for t in taus],
                "inspect_class": inspect, "k_max": self.k_max, "explained": ctx.data.explain_rule("train")}
        if math.isnan(tau[inspect]):  # < 4 images, or k-means found a single cluster for every k
            info["undefined"] = "no separability score for the inspect class"
            rank = math.nan
        else:
            rank = int(np.sum(tau[~np.isnan(tau)] >= tau[inspect]))
        detail = json.dumps(info)
        return [self.row("tau-rank", rank, split="train", detail=detail),
                self.row("tau", tau[inspect], split="train", detail=detail)]
