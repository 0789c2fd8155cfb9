"""Activation clustering (Chen et al. 2018, *Detecting backdoor attacks ... by activation clustering*).

The backdoor-detection baseline of the PRP paper (its reference [3]); PAPERS.md §5 [D]:
PCA to 10 components (capped by the number of samples and features) of the penultimate
activations of one class, k-means with 2 clusters (``result_.flagged``, the smaller cluster, only orients the
scores; which cluster is flagged is the flagging rules' decision, PAPERS.md §9). It clusters
activations, not explanation maps: ``input = "activations"`` tells the runner to pass
``[N, 1, D]`` activations. Several views are concatenated. Score: the distance to the
unflagged k-means centroid minus the distance to the flagged one, in PCA space
(:func:`~hansbench.methods.clusterers._graph.centroid_scores`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.decomposition import PCA

from hansbench.methods.base import ACTIVATIONS
from hansbench.methods.clusterers._base import BaseClusterer
from hansbench.methods.clusterers._graph import centroid_scores, kmeans_labels
from hansbench.registry import clusterers


@clusterers.register("activation-clustering")
class ActivationClustering(BaseClusterer):
    """PCA(10) of penultimate activations + 2-means (Chen et al. 2018); the flagging rules decide what is flagged."""

    input: ClassVar[str] = ACTIVATIONS

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller", *,
                 n_components: int = 10):
        super().__init__(n_clusters=n_clusters, random_state=random_state, flag_rule=flag_rule)
        self.n_components = n_components

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
        x = np.concatenate(views, axis=1)
        nc = max(1, min(self.n_components, x.shape[0] - 1, x.shape[1]))
        pca = PCA(n_components=nc, random_state=self.random_state)
        z = pca.fit_transform(x)
        labels = kmeans_labels(z, self.n_clusters, self.random_state)
        info = {"pca_components": nc, "explained_variance_ratio": float(pca.explained_variance_ratio_.sum())}
        return labels, info, centroid_scores(z, labels, self._flagged_of(labels))
