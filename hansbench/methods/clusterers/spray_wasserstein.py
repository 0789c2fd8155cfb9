"""SpRAy with optimal-transport distances (SpRAy paper Sec. "Wasserstein"; the pipeline: :mod:`.spray`).

``spray-wasserstein`` replaces the Euclidean distance with the Gromov-Wasserstein distance
between heatmaps as point clouds (the pixels covering 99 % of the positive relevance,
SpRAy paper Sec. "Wasserstein"), or with the grid Wasserstein distance; POT (a core dependency) is
the solver. It costs one OT problem per pair of samples and
view, so it has a time budget: the cost is estimated from the first pairs, and the method
raises :class:`TimeBudgetExceeded` *before* running past ``time_budget_s`` (it does not
subsample: a clustering of a subset would not label every sample).

Only the kNN graph is needed, so not every pair is solved: each pair has a cheap lower bound
of its squared distance (per view, summed like the distances), and each sample's candidates
are solved in increasing lower-bound order until the next bound exceeds the current k-th
smallest exact distance ("exact kNN with lower-bound pruning"). The bounds: for
``wasserstein`` (W2 squared with a squared-Euclidean ground cost between probability
measures) the squared distance between the maps' centres of mass (Jensen); for ``gromov``
(POT's square-loss GW objective, ``sum (C1_ik - C2_jl)^2 T_ij T_kl``, which its local solver
only over-estimates) the squared difference of the clouds' sizes ``p^T C p`` (Jensen on
``T x T``). Every solved pair is solved exactly as the all-pairs loop solves it (same
orientation, same batching of POT's marginal rescaling), so the kNN sets are identical;
neighbours tied at the k-th distance are taken by lowest index (the all-pairs path left
that to ``np.argpartition``).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import torch

from hansbench.methods.clusterers._graph import (
    knn_affinity,
)
from hansbench.methods.clusterers._maps import downsample, square_side
from hansbench.methods.clusterers._validation import cap_neighbors, check_choice
from hansbench.methods.clusterers.spray import SpRAy
from hansbench.registry import clusterers

_BLOCK = 16  # pairs per solver call; the budget is checked between blocks


def _n_jobs(n_jobs: int | None) -> int:
    """``None``: the threads the run gave torch (``--threads``; all cores by default); -1: every core."""
    if n_jobs is None:
        return torch.get_num_threads()
    if n_jobs == -1:
        return os.cpu_count() or 1
    return n_jobs


class _Progress:
    """Samples finished across the blocks of :meth:`SpRAyWasserstein._pruned_knn` (for the time budget)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.done = 0
        self.stop = False

    def add(self) -> None:
        with self._lock:
            self.done += 1


class TimeBudgetExceeded(TimeoutError):
    """The estimated (or elapsed) time of the pairwise OT distances exceeds ``time_budget_s``."""


def _import_ot():
    """POT, imported on first use: it adds ~0.2 s of imports to every registry load and only this fit needs it."""
    try:
        import ot  # lazy: see the docstring
    except ImportError as exc:  # a broken install: POT is a core dependency (pyproject.toml)
        raise ImportError(
            "spray-wasserstein needs POT (Python Optimal Transport), a core dependency of hansbench that is missing: "
            "reinstall hansbench (pip install --force-reinstall hansbench) or pip install 'pot>=0.9'"
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
    """SpRAy on (Gromov-)Wasserstein distances between heatmaps (POT; time-budgeted)."""

    pixels_control = False  # its distances need heatmaps (mass on a square grid), not RGB pixel vectors

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller", *,
                 n_neighbors: int = 10, downsample: int | None = 16, distance: str = "gromov",
                 mass: float = 0.99, max_points: int = 64, time_budget_s: float = 60.0,
                 n_eigenvalues: int = 32, n_eigenvectors: int | None = None, n_jobs: int | None = None):
        super().__init__(n_clusters=n_clusters, random_state=random_state, flag_rule=flag_rule,
                         n_neighbors=n_neighbors, normalize="none", downsample=downsample,
                         n_eigenvalues=n_eigenvalues, n_eigenvectors=n_eigenvectors)
        self.distance = distance
        self.mass = mass
        self.max_points = max_points
        self.time_budget_s = time_budget_s
        self.n_jobs = n_jobs  # threads for the OT pairs (None: torch's thread count); the labels never depend on it

    _prune = True  # False: the all-pairs reference loop (tests compare the two)

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict]:
        ot = _import_ot()
        check_choice(self.distance, ("gromov", "wasserstein"), "distance", self.name)
        if self.n_jobs is not None and (isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, int)
                                        or (self.n_jobs < 1 and self.n_jobs != -1)):
            raise ValueError(f"{self.name}: n_jobs must be a positive number of threads, -1 (every core) or None "
                             f"(the run's torch threads), got {self.n_jobs!r}")
        views = [downsample(x, self.downsample, self.name) for x in views]
        n = views[0].shape[0]
        total = n * (n - 1) // 2 * len(views)
        start = time.perf_counter()
        flat_maps = 0
        solvers, bounds = [], []
        for x in views:
            side = square_side(x.shape[1], self.name, "spray-wasserstein")
            masses, flat = _mass(x)
            flat_maps += flat
            grid = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2)
            grid = grid / max(side - 1, 1)
            if self.distance == "gromov":
                solve, bound = self._gromov_solver(ot, masses, grid)
            else:
                solve, bound = self._grid_solver(ot, masses, grid)
            solvers.append(solve)
            bounds.append(bound)
        if self._prune:
            k = cap_neighbors(self.n_neighbors, n, self.name)
            idx, solved = self._pruned_knn(solvers, bounds, k, start)
            a = _binary_knn_graph(idx)
        else:
            dist = self._all_pairs(solvers, n, start, total)
            a = knn_affinity(dist, self.n_neighbors, "binary", precomputed=True, name=self.name)
            solved = total
        labels, info, scores = self._spectral(a)
        info.update(distance=self.distance, ot_pairs=int(total), ot_pairs_solved=int(solved),
                    ot_seconds=time.perf_counter() - start, maps_without_relevance=flat_maps)
        return labels, info, scores

    def _all_pairs(self, solvers, n: int, start: float, total: int) -> np.ndarray:
        """Every pair's distance ``sqrt(sum_v d_v(i, j))``: the reference the pruned kNN must reproduce."""
        dist = np.zeros((n, n))
        done = 0
        for solve in solvers:
            for i in range(n - 1):  # the budget is checked after every block of pairs
                for lo in range(i + 1, n, _BLOCK):
                    js = np.arange(lo, min(lo + _BLOCK, n))
                    dist[i, js] += solve(i, js)
                    done += js.size
                    self._check_budget(start, done, total)
        dist = np.sqrt(np.maximum(dist + dist.T, 0.0))
        np.fill_diagonal(dist, 0.0)
        return dist

    def _pruned_knn(self, solvers, bounds, k: int, start: float) -> tuple[np.ndarray, int]:
        """The ``k`` nearest neighbours of every sample ``[N, k]`` (ascending distance, ties by index),
        solving only the pairs whose lower bound does not exceed the sample's current k-th distance.

        ``bounds``: per view, ``bound(i) -> [N]`` lower bounds of ``d_v(i, j)`` for every j; their
        sum bounds the squared distance. Returns the neighbours and the number of OT problems solved.
        The samples are split into ``n_jobs`` contiguous blocks solved in threads that share one
        table of solved pairs. Every stored value is exact, so the neighbours never depend on
        ``n_jobs`` or on thread timing; ``ot_pairs_solved`` does (a pair one block solved is reused
        by another). Measured on 2 cores (CH-50 maps, 200 samples, 64 pixels): 1.09-1.11x, because
        POT's ``emd2`` spends ~75 % of a small problem in Python around its C solver, which holds
        the GIL (blocks of 8 problems per call: 1.75x); its private ``emd_c`` changes signature
        between POT releases, so it is not called directly.
        """
        n = bounds[0](0).shape[0]
        jobs = max(1, min(_n_jobs(self.n_jobs), n))
        progress = _Progress()
        exact = np.full((n, n), np.nan)  # squared distances, symmetric, NaN = not solved (shared by the blocks)

        def block(rows: range) -> tuple[np.ndarray, int]:
            return self._knn_rows(solvers, bounds, k, exact, rows, start, progress)

        blocks = [range(n * w // jobs, n * (w + 1) // jobs) for w in range(jobs)]
        if jobs == 1:
            parts = [block(blocks[0])]
        else:
            with ThreadPoolExecutor(jobs, thread_name_prefix="spray-ot") as pool:
                futures = [pool.submit(block, rows) for rows in blocks]
                try:
                    parts = [f.result() for f in futures]
                except BaseException:
                    progress.stop = True  # the other blocks stop at their next sample
                    raise
        return np.concatenate([p[0] for p in parts]), sum(p[1] for p in parts)

    def _knn_rows(self, solvers, bounds, k: int, exact: np.ndarray, rows: range, start: float,
                  progress: _Progress) -> tuple[np.ndarray, int]:
        """:meth:`_pruned_knn` for the samples ``rows``; ``exact`` is the table of solved pairs."""
        n = exact.shape[0]
        solved = 0
        neighbours = np.empty((len(rows), k), dtype=np.int64)
        for r, i in enumerate(rows):
            if progress.stop:
                raise TimeBudgetExceeded("spray-wasserstein: stopped (another block of pairs failed)")
            # rounding in the bound (and in the solvers' sums) must never prune a true neighbour
            lower = sum(bound(i) for bound in bounds) * (1.0 - 1e-6) - 1e-12
            order = np.argsort(lower, kind="stable")
            order = order[order != i]
            pos = 0
            while True:
                known = np.flatnonzero(~np.isnan(exact[i]))
                kth = np.partition(exact[i, known], k - 1)[k - 1] if known.size >= k else np.inf
                batch = []
                want = max(k - known.size, 4)  # enough to reach k at once, then small steps
                while pos < order.size and len(batch) < want and lower[order[pos]] <= kth:
                    if np.isnan(exact[i, order[pos]]):
                        batch.append(int(order[pos]))
                    pos += 1
                if not batch:
                    break
                d = self._solve_pairs(solvers, i, np.array(batch), n)
                exact[i, batch] = d
                exact[batch, i] = d
                solved += len(batch) * len(solvers)
                self._check_budget(start, progress.done, n)
            known = np.flatnonzero(~np.isnan(exact[i]))
            known = known[known != i]
            dist = np.sqrt(np.maximum(exact[i, known], 0.0))  # the all-pairs path ranks these values
            neighbours[r] = known[np.lexsort((known, dist))[:k]]
            progress.add()
            self._check_budget(start, progress.done, n)
        return neighbours, solved

    @staticmethod
    def _solve_pairs(solvers, i: int, js: np.ndarray, n: int) -> np.ndarray:
        """``sum_v d_v(i, j)`` for each j, each pair solved as the all-pairs loop solves it:
        from the lower index (``solve(min, [max, ...])``), views summed in order from 0."""
        total = np.zeros(js.size)
        later, earlier = js > i, np.flatnonzero(js < i)
        for solve in solvers:
            part = np.empty(js.size)
            if later.any():
                part[later] = solve(i, js[later], n)
            for e in earlier:
                part[e] = solve(int(js[e]), np.array([i]), n)[0]
            total += part
        return total

    def _check_budget(self, start: float, done: int, total: int) -> None:
        elapsed = time.perf_counter() - start
        if done < total and elapsed > 0.5 or elapsed > self.time_budget_s:
            estimate = elapsed / done * total if done > 0 else elapsed
            if estimate > self.time_budget_s:
                raise TimeBudgetExceeded(
                    f"spray-wasserstein: the OT distances would take ~{estimate:.0f} s "
                    f"(measured {elapsed:.1f} s for {done:.4g} of {total} {'samples' if self._prune else 'pairs'}), "
                    f"over time_budget_s={self.time_budget_s:g}; "
                    "use fewer samples, a smaller downsample/max_points, distance='wasserstein', "
                    "or raise time_budget_s"
                )

    def _grid_solver(self, ot, masses: np.ndarray, grid: np.ndarray):
        """Exact earth mover's distance on the shared pixel grid (squared Euclidean ground cost): W2^2.

        Lower bound: the largest of (a) Gelbrich's ``|m_a - m_b|^2 + B^2(S_a, S_b)`` (means m,
        covariances S, Bures distance ``B^2 = tr S_a + tr S_b - 2 tr (S_a^1/2 S_b S_a^1/2)^1/2``,
        for 2x2 matrices ``tr sqrt(M) = sqrt(tr M + 2 sqrt(det M))``) and (b) for an orthonormal
        basis (u, v) of the plane, ``W2^2(a_u, b_u) + W2^2(a_v, b_v)`` of the 1-D projections (a
        coupling of the maps couples their projections, and the squared cost splits over u, v),
        for the axes and the diagonals.
        POT rescales a block of target histograms column by column, with a sum whose rounding
        differs for a single column; a pair that the all-pairs loop solves in a block of
        several is solved here beside a one-pixel histogram (a trivial problem), so the values
        are bit-identical.
        """
        cost = ot.dist(grid, grid)
        delta = np.zeros(masses.shape[1])
        delta[0] = 1.0

        def solve(i: int, js: np.ndarray, n: int | None = None) -> np.ndarray:
            if n is not None and js.size == 1 and _block_size(i, int(js[0]), n) > 1:
                return np.atleast_1d(ot.emd2(masses[i], np.stack([masses[js[0]], delta], 1), cost))[:1]
            return np.atleast_1d(ot.emd2(masses[i], masses[js].T.copy(), cost))

        mean = masses @ grid  # [N, 2]
        centred = grid[None] - mean[:, None]  # [N, P, 2]
        cov = np.einsum("np,npa,npb->nab", masses, centred, centred)  # [N, 2, 2]
        tr = np.trace(cov, axis1=1, axis2=2)
        det = np.maximum(np.linalg.det(cov), 0.0)

        projections = []  # [(support [K], histograms [N, K], cumulative [N, K])] per direction
        for direction in ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, -1.0)):
            values = grid @ (np.array(direction) / np.hypot(*direction))
            support, which = np.unique(np.round(values, 12), return_inverse=True)
            hist = np.zeros((masses.shape[0], support.size))
            np.add.at(hist.T, which, masses.T)
            projections.append((support, np.cumsum(hist, axis=1)))

        def bound(i: int) -> np.ndarray:
            cross = np.einsum("ab,nba->n", cov[i], cov)  # tr(S_i S_j)
            root = np.sqrt(np.maximum(cross + 2.0 * np.sqrt(det[i] * det), 0.0))
            gelbrich = ((mean - mean[i]) ** 2).sum(axis=1) + np.maximum(tr[i] + tr - 2.0 * root, 0.0)
            w = [_w2_1d_rows(support, cum[i], cum) for support, cum in projections]
            return np.maximum(gelbrich, np.maximum(w[0] + w[1], w[2] + w[3]))

        return solve, bound

    def _gromov_solver(self, ot, masses: np.ndarray, grid: np.ndarray):
        """Gromov-Wasserstein between point clouds of the pixels covering ``mass`` of each map.

        Lower bound (Memoli's first lower bound): for any coupling T the square-loss objective
        ``sum (C1_ik - C2_jl)^2 T_ij T_kl >= sum_ij T_ij (e_i - f_j)^2 >= W2^2(e#p, f#q)`` with the
        eccentricities ``e = C1 p``, ``f = C2 q`` (Jensen over k, l for fixed i, j), a 1-D OT
        problem; POT's local solver returns the objective of a coupling, never less.
        """
        clouds = []
        for m in masses:
            order = np.argsort(m, kind="stable")[::-1]
            keep = int(np.searchsorted(np.cumsum(m[order]), self.mass) + 1)
            idx = order[: max(1, min(keep, self.max_points, m.size))]
            p = m[idx] / m[idx].sum()
            clouds.append((ot.dist(grid[idx], grid[idx]), p))

        def solve(i: int, js: np.ndarray, n: int | None = None) -> np.ndarray:
            ci, pi = clouds[i]
            return np.array([ot.gromov.gromov_wasserstein2(ci, clouds[j][0], pi, clouds[j][1], "square_loss")
                             for j in js])

        ecc = [_quantiles(c @ p, p) for c, p in clouds]

        def bound(i: int) -> np.ndarray:
            return np.array([_w2_1d(ecc[i], e) for e in ecc])

        return solve, bound


def _quantiles(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 1-D discrete distribution as its quantile function: (cumulative weights, sorted values)."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return cum / cum[-1], values[order]


def _w2_1d_rows(support: np.ndarray, cum_a: np.ndarray, cum_b: np.ndarray) -> np.ndarray:
    """Squared 2-Wasserstein distances ``[N]`` between one histogram and N histograms on a common sorted
    1-D ``support``, given as cumulative sums (``cum_a [K]``, ``cum_b [N, K]``)."""
    k = support.size
    t = np.sort(np.concatenate([np.broadcast_to(cum_a, cum_b.shape), cum_b], axis=1), axis=1)  # [N, 2K]
    dt = np.diff(t, axis=1, prepend=0.0)
    qa = support[np.minimum(np.searchsorted(cum_a, t, side="left"), k - 1)]
    qb = support[np.minimum((cum_b[:, None, :] < t[:, :, None]).sum(axis=2), k - 1)]
    return ((qa - qb) ** 2 * dt).sum(axis=1)


def _w2_1d(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Squared 2-Wasserstein distance of two 1-D discrete distributions (integral of the squared
    difference of their quantile functions)."""
    t = np.union1d(a[0], b[0])
    lo = np.concatenate(([0.0], t[:-1]))
    qa = a[1][np.minimum(np.searchsorted(a[0], t, side="left"), a[1].size - 1)]
    qb = b[1][np.minimum(np.searchsorted(b[0], t, side="left"), b[1].size - 1)]
    return float(((qa - qb) ** 2 * (t - lo)).sum())


def _block_size(i: int, j: int, n: int) -> int:
    """Size of the block of targets in which the all-pairs loop solves pair (i, j), i < j."""
    lo = i + 1 + (j - i - 1) // _BLOCK * _BLOCK
    return min(_BLOCK, n - lo)


def _binary_knn_graph(neighbours: np.ndarray):
    """``knn_affinity``'s binary graph from given neighbour lists ``[N, k]``: ``(A + A^T) / 2``."""
    n, k = neighbours.shape
    rows = np.repeat(np.arange(n), k)
    a = sp.csr_matrix((np.ones(n * k), (rows, neighbours.ravel())), shape=(n, n))
    return ((a + a.T) * 0.5).tocsr()
