"""Cross-checks against test-time references: mvlearn's Co-Reg and scikit-learn's SpectralClustering."""

from __future__ import annotations

import pytest
from sklearn.cluster import SpectralClustering
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import kneighbors_graph

from hansbench.registry import clusterers
from hansbench.testing import planted_views


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scheme", ["pairwise", "centroid"])
def test_coreg_agrees_with_mvlearn(seed, scheme):
    """Same planted data and kNN k; mvlearn builds dense N x N matrices, ours sparse operators."""
    mv = pytest.importorskip("mvlearn.cluster")
    x, _ = planted_views(n=200, n_views=6, noise=0.3, seed=seed)
    views = [x[:, v] for v in range(x.shape[1])]
    ref = mv.MultiviewCoRegSpectralClustering(n_clusters=2, v_lambda=2, random_state=0, affinity="nearest_neighbors",
                                              n_neighbors=10).fit_predict(views)
    ours = clusterers.get("coreg")(scheme=scheme, v_lambda=2.0, n_neighbors=10).fit_predict(x)
    assert adjusted_rand_score(ref, ours) >= 0.9


@pytest.mark.filterwarnings("ignore:Graph is not fully connected")
@pytest.mark.parametrize("seed", [0, 2])
def test_spray_agrees_with_sklearn_spectral_clustering(seed):
    """Moderately overlapping blobs (neither method is perfect), same binary symmetric kNN affinity."""
    x, _ = make_blobs(300, n_features=8, centers=3, cluster_std=2.5, random_state=seed)
    a = kneighbors_graph(x, 10, include_self=False)
    ref = SpectralClustering(3, affinity="precomputed", random_state=0).fit_predict(0.5 * (a + a.T))
    ours = clusterers.get("spray")(n_clusters=3, n_neighbors=10).fit_predict(x[:, None, :])
    assert adjusted_rand_score(ref, ours) >= 0.9
