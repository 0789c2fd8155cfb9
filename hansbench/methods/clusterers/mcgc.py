"""MCGC: multi-view consensus graph clustering (Zhan, Nie, Wang, Yang, Zhang, IEEE TIP 2019).

1. Per view a sparse adaptive-neighbour (CAN, Nie et al. 2014) graph on squared Euclidean
   distances, k = 10: ``a_ij = (d_{i,k+1} - d_ij) / (k d_{i,k+1} - sum_{l<=k} d_il)`` for the
   k nearest j, symmetrised. (The per-view rank-constrained refinement of the public
   re-implementation is skipped: the consensus step below enforces the rank constraint.)
2. Consensus graph S with the rank constraint ``rank(L_S) = N - c`` (alternating, as in the
   paper's Algorithm 1): ``U_v`` = top-c eigvecs of ``W_v + beta S``; ``A0 = beta sum_v U_v U_v^T``;
   rows of S are projected on the simplex from ``A0 - gamma/2 * ||h_i - h_j||^2`` where H are
   the c smallest eigvecs of ``L_S``; gamma doubles/halves until ``L_S`` has exactly c zero
   eigenvalues (c connected components).
3. Labels = connected components of S (no k-means); when S does not have exactly c components
   after the iteration budget, k-means on the row-normalised H instead: ``info["fallback"]`` is
   then True and ``info["fallback_reason"]`` says why. The learned S is kept as ``graph_``.

beta = 0.6 (PAPERS.md §5: 0.1-0.6). S, A0 and the distance matrix are dense N x N: the
method refuses N > ``max_n`` (3000, about 0.4 GB of float64 work matrices) unless ``force=True``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import LinearOperator, eigsh
from sklearn.neighbors import NearestNeighbors

from hansbench.methods.clusterers._base import BaseClusterer
from hansbench.methods.clusterers._graph import (
    _start_vector,
    centroid_scores,
    kmeans_labels,
    row_normalize,
    top_eigenpairs,
)
from hansbench.methods.clusterers._validation import cap_neighbors
from hansbench.registry import clusterers

_ZERO = 1e-10  # eigenvalue threshold of the rank test (the reference code's zr)


def can_graph(x: np.ndarray, k: int, name: str = "mcgc") -> csr_matrix:
    """Adaptive-neighbour graph of Nie et al. (2014), closed form, symmetrised; O(N k) memory."""
    n = x.shape[0]
    k = cap_neighbors(k, n, name)
    kk = min(k + 1, n - 1)
    dist, idx = NearestNeighbors(n_neighbors=kk).fit(x).kneighbors(None, n_neighbors=kk)
    d = dist**2
    dk1 = d[:, -1:] if kk > k else d[:, -1:] + 1.0  # the (k+1)-th distance (fictitious when k = N-1)
    d, idx = d[:, :k], idx[:, :k]
    denom = k * dk1 - d.sum(axis=1, keepdims=True)
    denom = np.where(denom > 0, denom, 1.0)
    w = np.clip((dk1 - d) / denom, 0.0, None)
    flat = w.sum(axis=1) <= 0  # all k+1 neighbours equidistant: equal weights
    w[flat] = 1.0 / k
    a = csr_matrix((w.ravel(), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    return ((a + a.T) * 0.5).tocsr()


def project_rows_to_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of every row onto the probability simplex (Duchi et al. 2008), vectorised."""
    n, d = v.shape
    u = -np.sort(-v, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    ind = np.arange(1, d + 1)
    rho = (u - css / ind > 0).sum(axis=1)
    theta = css[np.arange(n), rho - 1] / rho
    return np.maximum(v - theta[:, None], 0.0)


def smallest_eigenpairs(lap: np.ndarray, k: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest eigenpairs of a dense PSD Laplacian (dense eigh when small, else shift-invert)."""
    n = lap.shape[0]
    k = min(k, n)
    if n <= 1000 or k >= n - 1:
        return scipy.linalg.eigh(lap, subset_by_index=[0, k - 1])
    vals, vecs = eigsh(lap, k=k, sigma=-1e-3, which="LM", v0=_start_vector(n, random_state))
    order = np.argsort(vals)
    return vals[order], vecs[:, order]


@clusterers.register("mcgc")
class MCGC(BaseClusterer):
    """Multi-view consensus graph clustering with a rank constraint (dense N x N; refuses N > max_n)."""

    multiview = True  # the V views are clustered jointly (no pixels control)

    max_n_default = 3000

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller", *,
                 beta: float = 0.6, n_neighbors: int = 10, max_iter: int = 5, max_inner: int = 30,
                 max_n: int = 3000, force: bool = False):
        super().__init__(n_clusters=n_clusters, random_state=random_state, flag_rule=flag_rule)
        self.beta = beta
        self.n_neighbors = n_neighbors
        self.max_iter = max_iter
        self.max_inner = max_inner
        self.max_n = max_n
        self.force = force

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
        n, c, rs, beta = views[0].shape[0], self.n_clusters, self.random_state, self.beta
        if n > self.max_n and not self.force:
            raise ValueError(
                f"mcgc: N = {n} exceeds max_n = {self.max_n}: it keeps dense N x N matrices "
                f"(~{6 * 8 * n * n / 2**30:.1f} GiB at this N) and O(N^2 log N) work per iteration; "
                "pass force=True to run anyway, or cluster a subsample"
            )
        ws = [can_graph(x, self.n_neighbors) for x in views]
        us = [top_eigenpairs(w, c, rs)[1] for w in ws]
        s = beta * sum(u @ u.T for u in us)
        s = (s + s.T) / 2
        _, h = smallest_eigenpairs(np.diag(s.sum(axis=1)) - s, c, rs)
        gamma, objective, reached = 1.0, [], False
        for _ in range(self.max_iter):
            a0 = np.zeros((n, n))
            us = []
            for w in ws:
                op = LinearOperator((n, n), matvec=lambda x, w=w, s=s: w @ x + beta * (s @ x),
                                    matmat=lambda x, w=w, s=s: w @ x + beta * (s @ x), dtype=np.float64)
                u = top_eigenpairs(op, c, rs)[1]
                us.append(u)
                a0 += beta * (u @ u.T)
            for _ in range(self.max_inner):
                sq = np.sum(h**2, axis=1)
                dist = np.maximum(sq[:, None] + sq[None, :] - 2 * h @ h.T, 0.0)
                target = a0 - 0.5 * gamma * dist
                np.fill_diagonal(target, target.min() - 2.0)  # below any row's threshold: s_ii = 0 as in CAN
                s = project_rows_to_simplex(target)
                s = (s + s.T) / 2
                lap = np.diag(s.sum(axis=1)) - s
                h_old = h
                ev, vecs = smallest_eigenpairs(lap, c + 1, rs)
                h = vecs[:, :c]
                if ev[:c].sum() > _ZERO:
                    gamma *= 2
                elif ev.sum() < _ZERO:
                    gamma /= 2
                    h = h_old
                else:
                    reached = True
                    break
            objective.append(float(sum(np.trace(u.T @ lap @ u) for u in us)))
            if len(objective) > 2 and abs(objective[-1] - objective[-2]) < 1e-5:
                break
        graph = csr_matrix(np.where(s > 0, s, 0.0))
        n_comp, comp = connected_components(graph, directed=False)
        self.graph_ = graph  # the learned consensus graph S (sparse), for inspection
        if n_comp == c:
            labels, source, reason = comp, "connected components of S", None
        else:
            labels = kmeans_labels(row_normalize(h), c, rs)
            source = "k-means on the spectral embedding"
            reason = (f"rank constraint not met within max_iter={self.max_iter}, max_inner={self.max_inner}: "
                      f"S has {n_comp} connected components, not n_clusters={c}")
        info = {"fallback": reason is not None, "fallback_reason": reason, "labels_from": source,
                "n_components": int(n_comp), "rank_constraint_met": reached, "gamma": gamma, "objective": objective}
        # score in the final spectral embedding of S (constant per connected component when the rank is met)
        return labels, info, centroid_scores(row_normalize(h), labels, self._flagged_of(labels))
