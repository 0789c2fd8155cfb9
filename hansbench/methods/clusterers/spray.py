"""SpRAy: spectral relevance analysis (Lapuschkin et al. 2019; Anders et al., *Analyzing ImageNet with SpRAy*).

``spray`` implements the SpRAy paper's pipeline (Sec. "Computing the spectral embedding",
PAPERS.md §5): optional per-map normalisation -> optional area downsampling -> Euclidean
distances -> binary kNN graph (k = 10), ``A <- (A + A^T)/2`` -> ``L_sym = I - D^-1/2 A D^-1/2``
-> its q = 32 smallest eigenpairs (``eigsh``) -> k-means on the spectral embedding. The
eigengap of those 32 eigenvalues is reported as ``info["eigengap_k"]`` beside the k = 2
labels used for artifact detection [D]. Multi-view input (PRP: one map per prototype) is
SpRAy-PRP: the V maps of a sample are concatenated into one vector [PRP paper Sec. V-D].

k-means runs on the first ``n_eigenvectors`` columns of the embedding; the default
(``None`` = ``n_clusters``) is the Ng-Jordan-Weiss choice, which scikit-learn's
``SpectralClustering`` also makes; ``n_eigenvectors=32`` clusters the whole ``Phi`` of the
SpRAy paper, where the 30 within-cluster eigenvectors can outweigh the one that separates.

``spray-wasserstein`` replaces the Euclidean distance with the Gromov-Wasserstein distance
between heatmaps as point clouds (the pixels covering 99 % of the positive relevance,
SpRAy paper Sec. "Wasserstein"), or with the grid Wasserstein distance; POT is the solver
(optional extra ``hansbench[wasserstein]``). It costs one OT problem per pair of samples and
view, so it has a time budget: the cost is estimated from the first pairs, and the method
raises :class:`TimeBudgetExceeded` *before* running past ``time_budget_s`` (it does not
subsample: a clustering of a subset would not label every sample).
"""

from __future__ import annotations

import time

import numpy as np

from hansbench.methods.clusterers._base import BaseClusterer
from hansbench.methods.clusterers._graph import knn_affinity, normalized_affinity, spectral_labels
from hansbench.methods.clusterers._maps import NORMALIZATIONS, downsample, normalize, square_side
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

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict]:
        x = np.concatenate(self._preprocess(views), axis=1)
        a = knn_affinity(x, self.n_neighbors, "binary", name=self.name)
        return self._spectral(a)

    def _spectral(self, a) -> tuple[np.ndarray, dict]:
        labels, info = spectral_labels(normalized_affinity(a), self.n_clusters, self.random_state,
                                       n_eigenvectors=self.n_eigenvectors, q_eigengap=self.n_eigenvalues)
        info["n_components_graph"] = _n_components(a)
        return labels, info


def _n_components(a) -> int:
    from scipy.sparse.csgraph import connected_components

    return int(connected_components(a, directed=False)[0])


_BLOCK = 16  # pairs per solver call; the budget is checked between blocks


class TimeBudgetExceeded(TimeoutError):
    """The estimated (or elapsed) time of the pairwise OT distances exceeds ``time_budget_s``."""


def _import_ot():
    try:
        import ot  # noqa: F401  (POT)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "spray-wasserstein needs POT (Python Optimal Transport): pip install hansbench[wasserstein]"
        ) from exc
    return ot


def _mass(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Maps -> probability masses: positive relevance; |r| where none is positive; uniform if all zero."""
    m = np.clip(x, 0.0, None)
    empty = m.sum(axis=1) <= 0
    m[empty] = np.abs(x[empty])
    flat = m.sum(axis=1) <= 0
    m[flat] = 1.0
    return m / m.sum(axis=1, keepdims=True), int(flat.sum())


@clusterers.register("spray-wasserstein")
class SpRAyWasserstein(SpRAy):
    """SpRAy on (Gromov-)Wasserstein distances between heatmaps (POT; optional extra; time-budgeted)."""

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller", *,
                 n_neighbors: int = 10, downsample: int | None = 16, distance: str = "gromov",
                 mass: float = 0.99, max_points: int = 64, time_budget_s: float = 60.0,
                 n_eigenvalues: int = 32, n_eigenvectors: int | None = None):
        super().__init__(n_clusters=n_clusters, random_state=random_state, flag_rule=flag_rule,
                         n_neighbors=n_neighbors, normalize="none", downsample=downsample,
                         n_eigenvalues=n_eigenvalues, n_eigenvectors=n_eigenvectors)
        self.distance = distance
        self.mass = mass
        self.max_points = max_points
        self.time_budget_s = time_budget_s

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict]:
        ot = _import_ot()
        check_choice(self.distance, ("gromov", "wasserstein"), "distance", self.name)
        views = [downsample(x, self.downsample, self.name) for x in views]
        n = views[0].shape[0]
        total = n * (n - 1) // 2 * len(views)
        start = time.perf_counter()
        dist = np.zeros((n, n))
        done = 0
        flat_maps = 0
        for x in views:
            side = square_side(x.shape[1], self.name, "spray-wasserstein")
            masses, flat = _mass(x)
            flat_maps += flat
            grid = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2)
            grid = grid / max(side - 1, 1)
            solve = self._gromov_solver(ot, masses, grid) if self.distance == "gromov" else \
                self._grid_solver(ot, masses, grid)
            for i in range(n - 1):  # the budget is checked after every block of pairs
                for lo in range(i + 1, n, _BLOCK):
                    js = np.arange(lo, min(lo + _BLOCK, n))
                    dist[i, js] += solve(i, js)
                    done += js.size
                    self._check_budget(start, done, total)
        dist = np.sqrt(np.maximum(dist + dist.T, 0.0))
        np.fill_diagonal(dist, 0.0)
        a = knn_affinity(dist, self.n_neighbors, "binary", precomputed=True, name=self.name)
        labels, info = self._spectral(a)
        info.update(distance=self.distance, ot_pairs=int(total), ot_seconds=time.perf_counter() - start,
                    maps_without_relevance=flat_maps)
        return labels, info

    def _check_budget(self, start: float, done: int, total: int) -> None:
        elapsed = time.perf_counter() - start
        if done < total and elapsed > 0.5 or elapsed > self.time_budget_s:
            estimate = elapsed / done * total
            if estimate > self.time_budget_s:
                raise TimeBudgetExceeded(
                    f"spray-wasserstein: {total} OT problems would take ~{estimate:.0f} s "
                    f"(measured {elapsed:.1f} s for {done}), over time_budget_s={self.time_budget_s:g}; "
                    "use fewer samples, a smaller downsample/max_points, distance='wasserstein', "
                    "or raise time_budget_s"
                )

    def _grid_solver(self, ot, masses: np.ndarray, grid: np.ndarray):
        """Exact earth mover's distance on the shared pixel grid (squared Euclidean ground cost)."""
        cost = ot.dist(grid, grid)

        def solve(i: int, js: np.ndarray) -> np.ndarray:
            return np.atleast_1d(ot.emd2(masses[i], masses[js].T.copy(), cost))

        return solve

    def _gromov_solver(self, ot, masses: np.ndarray, grid: np.ndarray):
        """Gromov-Wasserstein between point clouds of the pixels covering ``mass`` of each map."""
        clouds = []
        for m in masses:
            order = np.argsort(m, kind="stable")[::-1]
            keep = int(np.searchsorted(np.cumsum(m[order]), self.mass) + 1)
            idx = order[: max(1, min(keep, self.max_points, m.size))]
            p = m[idx] / m[idx].sum()
            clouds.append((ot.dist(grid[idx], grid[idx]), p))

        def solve(i: int, js: np.ndarray) -> np.ndarray:
            ci, pi = clouds[i]
            return np.array([ot.gromov.gromov_wasserstein2(ci, clouds[j][0], pi, clouds[j][1], "square_loss")
                             for j in js])

        return solve
