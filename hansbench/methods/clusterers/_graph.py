"""The spectral machinery shared by SpRAy, Co-Reg, WMSC and MCGC: one way of doing each thing.

- :func:`knn_affinity`: sparse symmetric kNN graph (binary as in SpRAy, or Gaussian-weighted
  with sigma = mean kNN distance as in WMSC), built with scikit-learn's ``NearestNeighbors``;
  memory O(N k).
- :func:`normalized_affinity`: ``D^-1/2 A D^-1/2``; its largest eigenvalues ``mu`` are the
  smallest of ``L_sym = I - D^-1/2 A D^-1/2`` (``lambda = 1 - mu``).
- :func:`top_eigenpairs`: the largest algebraic eigenpairs of a symmetric matrix or operator,
  with ``scipy.sparse.linalg.eigsh`` (deterministic start vector from ``random_state``); tiny
  problems (N < ``EIGSH_MIN_N``), where a Krylov space would span everything anyway, and
  ARPACK non-convergence fall back to dense ``eigh``.
- :func:`eigengap`: the number of clusters suggested by the largest gap of the smallest eigenvalues.
- :func:`kmeans_labels`: scikit-learn ``KMeans(n_init=10, random_state)``.
- :func:`centroid_scores`: a per-sample suspicion score in the space k-means clustered
  (distance to the nearest unflagged centroid minus distance to the flagged one).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from hansbench.methods.clusterers._validation import cap_neighbors

EIGSH_MIN_N = 128  # below this, dense eigh: exact, and cheaper than ARPACK's bookkeeping
DENSE_FALLBACK_MAX_N = 6000  # ARPACK failures above this are re-raised instead of going dense


def knn_affinity(x: np.ndarray, n_neighbors: int = 10, weighting: str = "binary", *, precomputed: bool = False,
                 name: str = "clusterer") -> sp.csr_matrix:
    """Symmetric sparse kNN affinity ``A = (A + A^T) / 2`` (no self loops).

    ``weighting``: ``binary`` (SpRAy: a_ij = 1 for neighbours) or ``gaussian`` (WMSC:
    exp(-d^2 / 2 sigma^2) with sigma the mean kNN distance). ``precomputed``: ``x`` is an
    ``[N, N]`` distance matrix (Wasserstein SpRAy).
    """
    n = x.shape[0]
    k = cap_neighbors(n_neighbors, n, name)
    nn = NearestNeighbors(n_neighbors=k, metric="precomputed" if precomputed else "euclidean")
    nn.fit(x)
    dist, idx = nn.kneighbors(None, n_neighbors=k)  # X=None: a point is not its own neighbour
    if weighting == "binary":
        vals = np.ones(dist.size)
    elif weighting == "gaussian":
        sigma = float(dist.mean())
        if sigma <= 0:  # all neighbours at distance 0 (duplicates): every edge gets weight 1
            vals = np.ones(dist.size)
        else:
            vals = np.exp(-(dist.ravel() ** 2) / (2.0 * sigma**2))
    else:
        raise ValueError(f"{name}: unknown kNN weighting {weighting!r}; use 'binary' or 'gaussian'")
    rows = np.repeat(np.arange(n), k)
    a = sp.csr_matrix((vals, (rows, idx.ravel())), shape=(n, n))
    return ((a + a.T) * 0.5).tocsr()


def normalized_affinity(a: sp.spmatrix) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` (symmetrised); isolated nodes keep a zero row."""
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    nz = deg > 0
    inv[nz] = 1.0 / np.sqrt(deg[nz])
    d = sp.diags(inv)
    m = (d @ a @ d).tocsr()
    return ((m + m.T) * 0.5).tocsr()


def _start_vector(n: int, random_state: int) -> np.ndarray:
    return np.random.default_rng(random_state).uniform(-1.0, 1.0, n)


def _dense(op) -> np.ndarray:
    if sp.issparse(op):
        return op.toarray()
    if isinstance(op, LinearOperator):
        return op @ np.eye(op.shape[0])
    return np.asarray(op)


def top_eigenpairs(op, k: int, random_state: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """The ``k`` largest algebraic eigenpairs of a symmetric matrix/operator, descending.

    Returns ``(values [k], vectors [N, k], solver)``; ``solver`` says which path ran
    (``eigsh``, ``dense``, or ``dense (ARPACK did not converge)``) for the clusterer's info.
    """
    n = op.shape[0]
    k = min(k, n)
    solver = "dense"
    if n >= EIGSH_MIN_N and k < n - 1:
        try:
            vals, vecs = eigsh(op, k=k, which="LA", v0=_start_vector(n, random_state), tol=1e-8,
                               maxiter=max(1000, 20 * n))
            solver = "eigsh"
        except ArpackNoConvergence:
            if n > DENSE_FALLBACK_MAX_N:
                raise
            warnings.warn(f"ARPACK did not converge for N = {n}; falling back to dense eigh", stacklevel=2)
            solver = "dense (ARPACK did not converge)"
    if solver != "eigsh":
        vals, vecs = scipy.linalg.eigh(_dense(op), subset_by_index=[n - k, n - 1])
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    # a sign convention makes the embedding independent of the solver's arbitrary signs
    signs = np.sign(vecs[np.abs(vecs).argmax(axis=0), np.arange(vecs.shape[1])])
    signs[signs == 0] = 1.0
    return vals, vecs * signs, solver


def laplacian_spectrum(m: sp.spmatrix, q: int, random_state: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """The ``q`` smallest eigenpairs of ``L_sym = I - m`` (ascending), from the largest of ``m``."""
    mu, vecs, solver = top_eigenpairs(m, q, random_state)
    return 1.0 - mu, vecs, solver


def eigengap(eigenvalues: np.ndarray) -> int:
    """Number of clusters = position of the largest gap between consecutive smallest eigenvalues."""
    vals = np.sort(np.asarray(eigenvalues))
    if vals.size < 2:
        return 1
    return int(np.argmax(np.diff(vals)) + 1)


def row_normalize(u: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows left as they are)."""
    norm = np.linalg.norm(u, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    return u / norm


def kmeans_labels(x: np.ndarray, n_clusters: int, random_state: int = 0) -> np.ndarray:
    """k-means labels (10 seeded restarts) as int64."""
    km = KMeans(n_clusters=n_clusters, n_init=10, random_state=random_state)
    return km.fit_predict(np.ascontiguousarray(x)).astype(np.int64)


def centroid_scores(z: np.ndarray, labels: np.ndarray, flagged: int) -> np.ndarray:
    """Suspicion ``[N]`` in the space ``z`` that k-means clustered, higher = closer to the flagged cluster.

    ``score_i = min_{c != flagged} ||z_i - mu_c|| - ||z_i - mu_flagged||`` with ``mu_c`` the mean of
    cluster ``c`` (k-means' centroid at convergence): positive exactly where the sample is nearer the
    flagged centroid than any other, so thresholding at 0 gives back the k-means assignment of the
    flagged cluster and the ranking orders samples by how clearly they belong to it. With a single
    cluster nothing separates the samples and every score is 0.
    """
    z = np.asarray(z, dtype=np.float64).reshape(len(labels), -1)
    ids = np.unique(labels)
    if ids.size < 2 or flagged not in ids:
        return np.zeros(len(labels))
    dist = {int(c): np.linalg.norm(z - z[labels == c].mean(axis=0), axis=1) for c in ids}
    others = np.min([d for c, d in dist.items() if c != flagged], axis=0)
    return others - dist[int(flagged)]


def spectral_embedding_labels(m: sp.spmatrix, n_clusters: int, random_state: int = 0, *,
                              n_eigenvectors: int | None = None,
                              q_eigengap: int = 32) -> tuple[np.ndarray, dict, np.ndarray]:
    """:func:`spectral_labels` plus the ``[N, p]`` embedding k-means clustered (for :func:`centroid_scores`)."""
    n = m.shape[0]
    p = n_eigenvectors or n_clusters
    q = min(max(q_eigengap, p), n)
    lam, vecs, solver = laplacian_spectrum(m, q, random_state)
    labels = kmeans_labels(vecs[:, :p], n_clusters, random_state)
    info = {"eigengap_k": eigengap(lam), "eigenvalues": [float(v) for v in lam], "eigen_solver": solver}
    return labels, info, vecs[:, :p]


def spectral_labels(m: sp.spmatrix, n_clusters: int, random_state: int = 0, *, n_eigenvectors: int | None = None,
                    q_eigengap: int = 32) -> tuple[np.ndarray, dict]:
    """Spectral clustering of a normalized affinity ``m``: eigenvectors -> k-means.

    ``n_eigenvectors`` columns of the embedding go to k-means (default ``n_clusters``, the
    Ng-Jordan-Weiss choice); ``q_eigengap`` smallest eigenvalues are computed for the eigengap.
    """
    labels, info, _ = spectral_embedding_labels(m, n_clusters, random_state, n_eigenvectors=n_eigenvectors,
                                                q_eigengap=q_eigengap)
    return labels, info


def canonical_angles(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Principal angles (radians, ascending) between the column spaces of two orthonormal bases."""
    s = np.linalg.svd(u1.T @ u2, compute_uv=False)
    return np.sort(np.arccos(np.clip(s, -1.0, 1.0)))
