"""Wasserstein SpRAy's pruned exact kNN = the all-pairs path; SpRAy clusters its input without copying it."""

from __future__ import annotations

import tracemalloc

import numpy as np
import ot
import pytest

from hansbench.methods.clusterers import spray as S
from hansbench.methods.clusterers import spray_wasserstein as W
from hansbench.registry import clusterers
from hansbench.testing import blob_maps


def _blobs(n: int, views: int, side: int = 8, seed: int = 0) -> np.ndarray:
    return blob_maps(n, views, side, seed)


class _Recorder(W.SpRAyWasserstein):
    graphs: dict = {}

    def _spectral(self, a):
        _Recorder.graphs[self._prune] = a
        return super()._spectral(a)


def _both(x, **kw):
    out = {}
    for prune in (False, True):
        est = _Recorder(downsample=None, time_budget_s=1e9, **kw)
        est._prune = prune
        out[prune] = (est.fit_predict(x), est.result_.info, _Recorder.graphs[prune])
    return out


@pytest.mark.parametrize("distance,n,views,k", [
    ("wasserstein", 40, 1, 5),  # n = 40: rows whose last all-pairs block holds one pair (POT rounds those apart)
    ("wasserstein", 35, 3, 10),
    ("gromov", 18, 1, 4),
])
def test_pruned_knn_is_the_all_pairs_knn(distance, n, views, k):
    x = _blobs(n, views, seed=n)
    out = _both(x, distance=distance, n_neighbors=k)
    (l_all, i_all, a_all), (l_pruned, i_pruned, a_pruned) = out[False], out[True]
    assert (a_all != a_pruned).nnz == 0  # the same kNN graph, edge for edge
    np.testing.assert_array_equal(l_all, l_pruned)
    assert i_all["eigenvalues"] == i_pruned["eigenvalues"]
    assert i_pruned["ot_pairs"] == n * (n - 1) // 2 * views  # the work the all-pairs path does
    if distance == "wasserstein":
        assert i_pruned["ot_pairs_solved"] < 0.8 * i_pruned["ot_pairs"]  # and pruning skipped a lot of it


@pytest.mark.parametrize("distance,n_jobs", [("wasserstein", 3), ("gromov", 2)])
def test_threaded_blocks_give_the_all_pairs_knn(distance, n_jobs):
    """Pairs solved in ``n_jobs`` threads (each block its own table of solved pairs): the kNN graph is the
    all-pairs one, edge for edge, whatever the block split; only the count of solved pairs may differ."""
    x = _blobs(31, 2, seed=7)  # 31 rows: blocks of unequal size
    reference = _both(x, distance=distance, n_neighbors=5, n_jobs=1)
    threaded = _Recorder(downsample=None, time_budget_s=1e9, distance=distance, n_neighbors=5, n_jobs=n_jobs)
    labels = threaded.fit_predict(x)
    assert (_Recorder.graphs[True] != reference[False][2]).nnz == 0
    np.testing.assert_array_equal(labels, reference[False][0])
    assert threaded.result_.info["eigenvalues"] == reference[False][1]["eigenvalues"]


def test_n_jobs_is_checked():
    with pytest.raises(ValueError, match="n_jobs"):
        clusterers.get("spray-wasserstein")(n_jobs=0).fit_predict(_blobs(12, 1))


@pytest.mark.parametrize("distance", ["wasserstein", "gromov"])
def test_bounds_never_exceed_the_solved_distances(distance):
    rng = np.random.default_rng(3)
    x = np.concatenate([_blobs(8, 1, seed=1)[:, 0], rng.random((8, 64)) ** 3])  # blobs and sparse noise
    masses, _ = W._mass(x)
    grid = np.stack(np.meshgrid(np.arange(8), np.arange(8), indexing="ij"), -1).reshape(-1, 2) / 7
    est = W.SpRAyWasserstein(distance=distance)
    solve, bound = (est._grid_solver if distance == "wasserstein" else est._gromov_solver)(ot, masses, grid)
    for i in range(len(x)):
        js = np.array([j for j in range(len(x)) if j != i])
        exact, lower = solve(i, js), bound(i)[js]
        assert (lower <= exact * (1 + 1e-9) + 1e-15).all()
        if distance == "wasserstein":
            assert np.median(lower / exact) > 0.5  # and tight enough to prune


def test_ties_and_duplicates_give_a_valid_graph():
    x = np.repeat(_blobs(6, 1), 3, axis=0)  # every map three times: distance-0 ties
    est = clusterers.get("spray-wasserstein")(distance="wasserstein", downsample=None, n_neighbors=2)
    labels = est.fit_predict(x)
    assert labels.shape == (18,)
    assert est.result_.info["n_components_graph"] == 6  # each triple is its own component (its 2 twins at 0)


# -- SpRAy without a copy of its input ---------------------------------------------------------

def test_spray_does_not_copy_its_input():
    rng = np.random.default_rng(0)
    n, v, d = 400, 4, 2048  # 25 MiB float64, C-contiguous [N, V, D]
    x = rng.standard_normal((n, v, d))
    x[: n // 3] += 0.5
    est = clusterers.get("spray")()
    est.fit_predict(x[:20])  # imports and caches outside the measurement
    tracemalloc.start()
    labels = est.fit_predict(x)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < x.nbytes / 4, f"peak {peak / 2**20:.1f} MiB for a {x.nbytes / 2**20:.1f} MiB input"
    # labels equal those of the concatenating path (a list of separate per-view arrays is concatenated)
    copied = clusterers.get("spray")().fit_predict([np.array(x[:, i]) for i in range(v)])
    np.testing.assert_array_equal(labels, copied)


def test_concatenated_is_a_view_only_for_consecutive_slices():
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    views = [x[:, i] for i in range(3)]
    out = S._concatenated(views)
    assert np.shares_memory(out, x) and not out.flags.writeable
    np.testing.assert_array_equal(out, np.concatenate(views, axis=1))
    for other in ([x[:, 2], x[:, 0], x[:, 1]], [x[:, i].astype(np.float32) for i in range(3)], [x[:, 0], x[:, 2]]):
        np.testing.assert_array_equal(S._concatenated(other), np.concatenate(other, axis=1))
        assert not np.shares_memory(S._concatenated(other), x)
