"""SpRAy: spectral relevance analysis (Lapuschkin et al. 2019; Anders et al., *Analyzing ImageNet with SpRAy*).

``spray`` implements the SpRAy paper's pipeline (Sec. "Computing the spectral embedding",
PAPERS.md §5): optional per-map normalisation -> optional area downsampling -> Euclidean
distances -> binary kNN graph (k = 10), ``A <- (A + A^T)/2`` -> ``L_sym = I - D^-1/2 A D^-1/2``
-> its q = 32 smallest eigenpairs (``eigsh``) -> k-means on the spectral embedding. The
eigengap of those 32 eigenvalues is reported as ``info["eigengap_k"]`` beside the k = 2
labels used for artifact detection [D]. Multi-view input (PRP: one map per prototype) is
SpRAy-PRP: the V maps of a sample are concatenated into one vector [PRP paper Sec. V-D].

Score (``result_.scores``): :func:`~hansbench.methods.clusterers._graph.centroid_scores` in the
spectral embedding k-means clustered: the distance to the nearest unflagged centroid minus the
distance to the flagged one (positive = assigned to the flagged cluster).

k-means runs on the first ``n_eigenvectors`` columns of the embedding; the default
(``None`` = ``n_clusters``) is the Ng-Jordan-Weiss choice, which scikit-learn's
``SpectralClustering`` also makes; ``n_eigenvectors=32`` clusters the whole ``Phi`` of the
SpRAy paper, where the 30 within-cluster eigenvectors can outweigh the one that separates.

``spray-wasserstein`` (the Wasserstein distances between heatmaps) is in :mod:`.spray_wasserstein`.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import connected_components

from hansbench.methods.clusterers._base import BaseClusterer
from hansbench.methods.clusterers._graph import (
    centroid_scores,
    knn_affinity,
    normalized_affinity,
    spectral_embedding_labels,
)
from hansbench.methods.clusterers._maps import NORMALIZATIONS, downsample, normalize
from hansbench.methods.clusterers._validation import check_choice
from hansbench.registry import clusterers


@clusterers.register("spray")
class SpRAy(BaseClusterer):
    """SpRAy: kNN graph of (concatenated) maps, normalized Laplacian, eigengap, k-means."""

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller", *,
                 n_neighbors: int = 10, normalize: str = "none", downsample: int | None = None,
                 n_eigenvalues: int = 32, n_eigenvectors: int | None = None):
        super().__init__(n_clusters=n_clusters, random_state=random_state, flag_rule=flag_rule)
        self.n_neighbors = n_neighbors
        self.normalize = normalize
        self.downsample = downsample
        self.n_eigenvalues = n_eigenvalues
        self.n_eigenvectors = n_eigenvectors

    def _preprocess(self, views: list[np.ndarray]) -> list[np.ndarray]:
        check_choice(self.normalize, NORMALIZATIONS, "normalize", self.name)
        return [normalize(downsample(x, self.downsample, self.name), self.normalize) for x in views]

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
        x = _concatenated(self._preprocess(views))
        a = knn_affinity(x, self.n_neighbors, "binary", name=self.name)
        return self._spectral(a)

    def _spectral(self, a) -> tuple[np.ndarray, dict, np.ndarray]:
        """Labels, info and scores: :func:`centroid_scores` in the spectral embedding k-means clustered."""
        labels, info, emb = spectral_embedding_labels(normalized_affinity(a), self.n_clusters, self.random_state,
                                                      n_eigenvectors=self.n_eigenvectors,
                                                      q_eigengap=self.n_eigenvalues)
        info["n_components_graph"] = _n_components(a)
        return labels, info, centroid_scores(emb, labels, self._flagged_of(labels))


def _concatenated(views: list[np.ndarray]) -> np.ndarray:
    """``np.concatenate(views, axis=1)``, without a copy where the views are consecutive slices of one
    float64 ``[N, V, D]`` block (the runner's input, passed through unchanged): a read-only view of it."""
    first = views[0]
    n, d = first.shape
    if first.dtype == np.float64 and all(v.shape == (n, d) and v.dtype == np.float64 for v in views):
        row = len(views) * d * 8
        base = first.__array_interface__["data"][0]
        if (all(v.strides == (row, 8) for v in views)
                and all(v.__array_interface__["data"][0] == base + k * d * 8 for k, v in enumerate(views))):
            out = np.lib.stride_tricks.as_strided(first, shape=(n, len(views) * d), strides=(row, 8),
                                                  writeable=False)
            if out.flags.c_contiguous:
                return out
    return np.concatenate(views, axis=1)


def _n_components(a) -> int:
    return int(connected_components(a, directed=False)[0])
