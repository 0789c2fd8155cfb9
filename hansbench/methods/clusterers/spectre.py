"""SPECTRE (Hayase, Kong, Somani, Oh 2021, *SPECTRE: Defending Against Backdoor Attacks Using Robust Statistics*).

Spectral signatures look at one direction of the raw representations, which the clean data's own
variance can hide. SPECTRE whitens the representations with a *robust* estimate of the clean
mean and covariance, so that any direction of excess variance is the poison's, and scores each
sample by its QUantum Entropy (QUE) score. PAPERS.md §8; decisions:

1. input ``activations`` of the inspected class (views concatenated), projected on the top ``k``
   principal components (scikit-learn ``PCA``, exact SVD; ``k`` capped by ``max_components``
   (100, the paper's), the data's rank and ``n // 10``: a robust covariance in ``k`` dimensions needs
   several samples per dimension, and FastMCD's cost grows fast with ``k``);
2. robust mean ``mu`` and covariance ``S`` with scikit-learn's ``MinCovDet`` (FastMCD, seeded by
   ``random_state``) instead of the paper's iterative filter (Diakonikolas et al. 2017): a
   standard, tested estimator that also works at the tens-to-hundreds of samples of a benchmark
   class. Whitened ``w_i = S^{-1/2} (z_i - mu)`` (the robust location, since the poison shifts
   the plain mean; the paper's code centres with the plain mean, which does not change ``Sigma'``);
3. QUE: ``Sigma'`` = covariance of the whitened samples, ``Q = exp(alpha (Sigma' - I) / (||Sigma'||_2 - 1))``
   (computed by ``eigh``, equal to ``scipy.linalg.expm``), score ``tau_i = w_i^T Q w_i / tr(Q)``,
   ``alpha = 4`` as in the paper. If ``||Sigma'||_2 <= 1`` no direction has excess variance and
   ``Q = I`` (the score is the squared robust Mahalanobis distance over ``k``);
4. ``k``: ``n_components = None`` picks it as the paper's code does: for each ``k`` in
   ``1, 4, 9, ..., 100`` (the squares, capped as in 1), remove the top scores, whiten the
   ``k_max``-dimensional representations by the covariance of the kept ones, and keep the ``k``
   whose QUE-weighted variance ``tr(Sigma' Q) / tr(Q)`` is largest (the removal that leaves the
   poison standing out most). An integer ``n_components`` fixes ``k``;
5. flagged without labels: the ``round(1.5 * expected_fraction * n)`` highest scores, as in the
   paper but with an assumed ``expected_fraction`` (default 0.1) where the paper uses the true
   rate; stated in the row's info.

Why SPECTRE and not SCAn (Tang et al. 2021): SCAn needs a small clean set of the class, which
a label-free benchmark method may not assume.
"""

from __future__ import annotations

import numpy as np
from sklearn.covariance import MinCovDet
from sklearn.decomposition import PCA

from hansbench.methods.clusterers._detect import ScoreDetector, n_removed, removal_info, top_scored
from hansbench.registry import clusterers

K_GRID = tuple(int(round(v * v)) for v in np.linspace(1, 10, 10))  # 1, 4, 9, ..., 100 (the paper's code)
MIN_SAMPLES = 4
SAMPLES_PER_DIM = 10  # k <= n / 10: a robust covariance in k dimensions needs several samples per dimension


def inv_sqrt(c: np.ndarray, floor: float) -> np.ndarray:
    """``c^{-1/2}`` of a symmetric PSD matrix, eigenvalues floored at ``floor`` (a singular estimate stays finite)."""
    lam, q = np.linalg.eigh(np.atleast_2d(c))
    return (q / np.sqrt(np.maximum(lam, floor))) @ q.T


def que_matrix(sigma: np.ndarray, alpha: float) -> np.ndarray:
    """``Q / tr(Q)`` with ``Q = exp(alpha (sigma - I) / (||sigma||_2 - 1))``; ``I / k`` when ``||sigma||_2 <= 1``."""
    sigma = np.atleast_2d(sigma)
    lam, q = np.linalg.eigh((sigma + sigma.T) / 2)
    top = lam.max()
    if top - 1.0 <= 1e-12:
        return np.eye(sigma.shape[0]) / sigma.shape[0]
    e = np.exp(alpha * (lam - 1.0) / (top - 1.0))  # exponents <= alpha: no overflow
    return (q * (e / e.sum())) @ q.T


def _whitened_cov(w: np.ndarray) -> np.ndarray:
    return np.atleast_2d(np.cov(w, rowvar=False, bias=True))


@clusterers.register("spectre")
class Spectre(ScoreDetector):
    """Robust (MCD) whitening + QUE scores (alpha 4) of activations; flags the 1.5·ε·n highest (Hayase et al. 2021)."""

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller", *,
                 expected_fraction: float = 0.1, removal_multiplier: float = 1.5, alpha: float = 4.0,
                 n_components: int | None = None, max_components: int = 100, support_fraction: float | None = None):
        super().__init__(n_clusters=n_clusters, random_state=random_state, flag_rule=flag_rule)
        self.expected_fraction = expected_fraction
        self.removal_multiplier = removal_multiplier
        self.alpha = alpha
        self.n_components = n_components
        self.max_components = max_components
        self.support_fraction = support_fraction

    def _check(self, n: int) -> None:
        if n < MIN_SAMPLES:
            raise ValueError(f"{self.name}: a robust covariance needs at least {MIN_SAMPLES} samples, got N = {n}; "
                             "use spectral-signatures for so small a class")
        if not isinstance(self.alpha, (int, float)) or self.alpha <= 0:
            raise ValueError(f"{self.name}: alpha must be > 0 (the paper uses 4), got {self.alpha!r}")
        for opt in ("n_components", "max_components"):
            v = getattr(self, opt)
            if v is not None and (not isinstance(v, (int, np.integer)) or v < 1):
                raise ValueError(f"{self.name}: {opt} must be a positive integer{' or None' * (opt == 'n_components')}"
                                 f", got {v!r}")

    def que_scores(self, z: np.ndarray) -> np.ndarray:
        """QUE scores of ``z [n, k]`` after robust (MCD) whitening."""
        mcd = MinCovDet(support_fraction=self.support_fraction, random_state=self.random_state).fit(z)
        floor = 1e-12 * max(float(np.var(z, axis=0).max()), 1e-300)
        w = (z - mcd.location_) @ inv_sqrt(mcd.covariance_, floor)
        m = que_matrix(_whitened_cov(w), self.alpha)
        return np.einsum("ij,jk,ik->i", w, m, w)

    def que_variance(self, z: np.ndarray, kept: np.ndarray) -> float:
        """``tr(Sigma' Q) / tr(Q)`` of ``z`` whitened by the covariance of the ``kept`` rows: the paper's choice of k."""
        c = _whitened_cov(z[kept])
        floor = 1e-12 * max(float(np.var(z, axis=0).max()), 1e-300)
        sigma = _whitened_cov((z - z[kept].mean(axis=0)) @ inv_sqrt(c, floor))
        return float(np.trace(sigma @ que_matrix(sigma, self.alpha)))

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
        x = np.concatenate(views, axis=1)
        n, d = x.shape
        self._check(n)
        m = n_removed(n, self.expected_fraction, self.removal_multiplier, self.name)
        s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
        rank = int((s > 1e-10 * s[0]).sum())
        k_max = max(1, min(self.max_components, rank, n // SAMPLES_PER_DIM))
        z = PCA(n_components=k_max, svd_solver="full").fit_transform(x)
        ks = [min(int(self.n_components), k_max)] if self.n_components is not None else \
            [k for k in K_GRID if k <= k_max]
        fits = {}
        for k in ks:
            scores = self.que_scores(z[:, :k])
            labels = top_scored(scores, m)
            fits[k] = (self.que_variance(z, labels == 0), scores, labels)
        best = max(ks, key=lambda k: fits[k][0])  # first maximum: the smaller k on ties
        _, scores, labels = fits[best]
        info = {**removal_info(self.expected_fraction, self.removal_multiplier, m, n),
                "n_components": best, "k_max": k_max, "alpha": float(self.alpha), "robust_estimator": "MinCovDet",
                "que_variance_by_k": {str(k): fits[k][0] for k in ks},
                "k_selection": "fixed n_components" if self.n_components is not None else
                               "max QUE-weighted variance after removal (paper's code)"}
        return labels, info, scores
