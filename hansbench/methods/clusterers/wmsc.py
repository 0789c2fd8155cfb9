"""WMSC: weighted multi-view spectral clustering by spectral perturbation (Zong et al., AAAI 2018).

Per view (PAPERS.md §5): Gaussian kNN affinity (k = 10, sigma = mean kNN distance) and its
normalized affinity ``M_v = D^-1/2 A D^-1/2``; ``U_v, Lambda_v`` = its top-c eigenpairs.
The consensus is ``M* = sum_v w_v M_v``; the weights minimise the spectral-perturbation
bound on the consensus eigenvectors plus the *cluster ability smoothness* term, a quadratic
programme on the simplex (the paper's Eq. for w, laid out as in the public re-implementation
of Liang et al.'s multi-view clustering collection):

    min_w  1/2 w^T (H1 + beta I + eta Q) w - y^T w    s.t.  w >= 0, sum w = 1
    H1_ij = sum_a <M_i U_a, M_j U_a>_F,   y_i = sum_a <M_i U_a, U_a Lambda_a>_F
    R_ij  = pi - (largest canonical angle between U_i and U_j),  Q = diag(R 1) - R
    beta  = b_hat / sqrt(V) * ||H1 + Q||_F,   eta = n_hat / ||Q||_F * ||H1 + I||_F

Canonical angles: ``arccos`` of the singular values of ``U_i^T U_j``, clipped to <= 1
(PAPERS.md §5). The QP is solved with scipy's SLSQP (convex, V variables) from uniform
weights. Then ``U*`` = top-c eigvecs of ``M*``, row-normalised, k-means.
``info`` reports the weights and each view's largest canonical angle to ``U*``.
All products are sparse x thin (N x c): memory O(N (k + V c)).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from hansbench.methods.clusterers._base import BaseClusterer
from hansbench.methods.clusterers._graph import (
    canonical_angles,
    centroid_scores,
    kmeans_labels,
    knn_affinity,
    normalized_affinity,
    row_normalize,
    top_eigenpairs,
)
from hansbench.registry import clusterers


def simplex_qp(h: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmin 1/2 w^T h w - y^T w on the probability simplex (SLSQP; falls back to uniform on failure)."""
    v = len(y)
    if v == 1:
        return np.ones(1)
    res = minimize(lambda w: 0.5 * w @ h @ w - y @ w, np.full(v, 1.0 / v), jac=lambda w: h @ w - y,
                   method="SLSQP", bounds=[(0.0, 1.0)] * v,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(v)}],
                   options={"ftol": 1e-12, "maxiter": 500})
    w = np.clip(res.x, 0.0, None) if res.success else np.full(v, 1.0 / v)
    return w / w.sum()


@clusterers.register("wmsc")
class WMSC(BaseClusterer):
    """Weighted multi-view spectral clustering: view weights from canonical angles and a simplex QP."""

    multiview = True  # the V views are clustered jointly (no pixels control)

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller", *,
                 n_neighbors: int = 10, b_hat: float = 0.1, n_hat: float = 0.1):
        super().__init__(n_clusters=n_clusters, random_state=random_state, flag_rule=flag_rule)
        self.n_neighbors = n_neighbors
        self.b_hat = b_hat
        self.n_hat = n_hat

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
        c, rs = self.n_clusters, self.random_state
        ms = [normalized_affinity(knn_affinity(x, self.n_neighbors, "gaussian", name=self.name)) for x in views]
        eig = [top_eigenpairs(m, c, rs) for m in ms]
        us = [e[1] for e in eig]
        lams = [e[0] for e in eig]
        nv = len(ms)
        h1 = np.zeros((nv, nv))
        y = np.zeros(nv)
        angle = np.zeros((nv, nv))
        for a in range(nv):
            mu = [m @ us[a] for m in ms]  # M_i U_a, each N x c
            stack = np.stack([p.ravel() for p in mu])
            h1 += stack @ stack.T
            y += stack @ (us[a] * lams[a]).ravel()
            for i in range(nv):
                angle[i, a] = canonical_angles(us[i], us[a]).max()
        r = np.pi - angle
        q = np.diag(r.sum(axis=1)) - r
        beta = self.b_hat / np.sqrt(nv) * np.linalg.norm(h1 + q)
        qn = np.linalg.norm(q)
        eta = self.n_hat / qn * np.linalg.norm(h1 + np.eye(nv)) if qn > 0 else 0.0
        h = h1 + beta * np.eye(nv) + eta * q
        w = simplex_qp((h + h.T) / 2, y)
        consensus = sum(wv * m for wv, m in zip(w, ms))
        _, u, solver = top_eigenpairs(consensus, c, rs)
        emb = row_normalize(u)
        labels = kmeans_labels(emb, c, rs)
        to_consensus = [float(canonical_angles(uv, u).max()) for uv in us]
        info = {"view_weights": w.tolist(), "largest_canonical_angle": to_consensus, "eigen_solver": solver}
        return labels, info, centroid_scores(emb, labels, self._flagged_of(labels))  # in the embedding k-means saw
