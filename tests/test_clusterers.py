"""Clusterers: planted-structure recovery, determinism, the unsupervised flag, and clear errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from hansbench.methods.base import Clusterer
from hansbench.methods.clusterers import _graph
from hansbench.methods.clusterers._synthetic import planted_views
from hansbench.methods.clusterers.spray import TimeBudgetExceeded
from hansbench.registry import clusterers

# small budgets: every deep run here is seconds on one core
FAST = {
    "spray": {},
    "spray-wasserstein": {"downsample": None, "n_neighbors": 5},
    "coreg": {},
    "coreg-centroid": {"scheme": "centroid"},
    "wmsc": {},
    "mcgc": {},
    "simvc": {"runs": 3, "epochs": 20, "batch_size": 50, "device": "cpu"},
    "comvc": {"runs": 3, "epochs": 20, "batch_size": 50, "device": "cpu"},
    "activation-clustering": {},
}
MULTIVIEW = ["spray", "coreg", "coreg-centroid", "wmsc", "mcgc", "simvc", "comvc"]
ALL = list(FAST)


def make(key: str, **kw) -> Clusterer:
    name = "coreg" if key == "coreg-centroid" else key
    return clusterers.get(name)(**{**FAST[key], **kw})


def accuracy(y: np.ndarray, labels: np.ndarray) -> float:
    a = float((y == labels).mean())
    return max(a, 1.0 - a)


@pytest.fixture(scope="module")
def planted():
    return planted_views(n=200, n_views=6, side=4, noise=0.3, seed=0)


@pytest.fixture(scope="module")
def small():
    """Two clean groups, 40 samples, 2 views of 3x3 maps: cheap for edge-case tests."""
    x, y = planted_views(n=40, n_views=2, side=3, noise=0.05, seed=3)
    x[:, :, :] += 2.0 * y[:, None, None]  # both views informative for every sample
    return x, y


def test_all_registered_and_sklearn_style():
    names = clusterers.names()
    for name in ["spray", "spray-wasserstein", "coreg", "wmsc", "mcgc", "simvc", "comvc", "activation-clustering"]:
        assert name in names
        est = clusterers.get(name)()
        params = est.get_params()
        assert {"n_clusters": 2, "random_state": 0, "flag_rule": "smaller"}.items() <= params.items()
    assert clusterers.get("activation-clustering").input == "activations"
    assert clusterers.get("coreg").input == "maps"


def test_planted_data_is_ambiguous_per_view(planted):
    """The premise of the recovery test: no single view separates the groups."""
    x, y = planted
    for v in range(x.shape[1]):
        assert accuracy(y, make("spray").fit_predict(x[:, v : v + 1])) < 0.9


@pytest.mark.parametrize("key", MULTIVIEW)
def test_recovers_planted_groups_and_is_deterministic(planted, key):
    x, y = planted
    a, b = make(key), make(key)
    la = a.fit_predict(x)
    assert accuracy(y, la) > 0.95
    np.testing.assert_array_equal(la, b.fit_predict(x))
    assert a.result_.info == b.result_.info
    json.dumps(a.result_.info)  # stored by the runner


def test_random_state_matters_for_deep_and_leaves_global_rng_alone(planted):
    x, _ = planted
    state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    a = make("simvc", runs=1, epochs=2).fit_predict(x)
    est = make("simvc", runs=1, epochs=2, random_state=1)
    est.fit_predict(x)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(np_state, np.random.get_state()[1])
    assert est.result_.info["run_losses"] != make("simvc", runs=1, epochs=2).fit(x).result_.info["run_losses"]
    assert a.shape == (x.shape[0],)


def test_deep_keeps_run_with_lowest_ddc1(planted):
    x, _ = planted
    est = make("comvc", runs=3, epochs=3)
    est.fit_predict(x)
    info = est.result_.info
    assert len(info["run_losses"]) == 3
    assert info["best_run_loss"] == min(info["run_losses"])
    assert info["best_run"] == int(np.argmin(info["run_losses"]))
    assert np.isclose(sum(info["fusion_weights"]), 1.0, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_deep_uses_gpu_by_default(planted):
    x, y = planted
    est = clusterers.get("simvc")(runs=3, epochs=20, batch_size=50)
    labels = est.fit_predict(x)
    assert est.result_.info["device"].startswith("cuda")
    assert accuracy(y, labels) > 0.95


def test_flagged_cluster_rule():
    x, _ = planted_views(n=120, n_views=4, noise=0.3, frac_b=0.2, seed=5)
    est = make("coreg")
    labels = est.fit_predict(x)
    counts = np.bincount(labels)
    assert counts[est.result_.flagged] == counts.min()
    est_l = make("coreg", flag_rule="larger")
    est_l.fit_predict(x)
    assert counts[est_l.result_.flagged] == counts.max()
    with pytest.raises(ValueError, match="flag rule"):
        make("coreg", flag_rule="biggest").fit_predict(x)


def test_spray_reports_eigengap_of_three_groups():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 5
    y = np.repeat(np.arange(3), 30)
    x = (centres[y] + 0.3 * rng.normal(size=(90, 16)))[:, None, :]
    est = make("spray")
    est.fit_predict(x)
    assert est.result_.info["eigengap_k"] == 3
    assert len(est.result_.info["eigenvalues"]) == 32
    assert est.result_.info["n_components_graph"] == 3  # disconnected graph: no crash


def test_spray_options(small):
    x, y = small
    for how in ["none", "max-abs", "l2", "sum"]:
        assert accuracy(y, make("spray", normalize=how).fit_predict(x)) > 0.95
    assert accuracy(y, make("spray", downsample=2).fit_predict(x)) > 0.95
    wide = make("spray", n_eigenvectors=8)  # the SpRAy paper's wider Phi: runs, k-means on 8 columns
    assert wide.fit_predict(x).shape == y.shape
    with pytest.raises(ValueError, match="normalize"):
        make("spray", normalize="zscore").fit_predict(x)
    with pytest.raises(ValueError, match="square"):
        make("spray", downsample=2).fit_predict(x[:, :, :8])


def test_eigsh_and_dense_paths_agree(planted, monkeypatch):
    x, _ = planted
    via_eigsh = make("spray").fit(x).result_
    assert via_eigsh.info["eigen_solver"] == "eigsh"
    monkeypatch.setattr(_graph, "EIGSH_MIN_N", 10**9)
    dense = make("spray").fit(x).result_
    assert dense.info["eigen_solver"] == "dense"
    np.testing.assert_allclose(via_eigsh.info["eigenvalues"], dense.info["eigenvalues"], atol=1e-6)
    assert accuracy(via_eigsh.labels, dense.labels) == 1.0


# -- edge cases ------------------------------------------------------------------------

@pytest.mark.parametrize("key", [k for k in ALL if k != "spray-wasserstein"])
def test_one_view(small, key):
    x, y = small
    assert accuracy(y, make(key).fit_predict(x[:, :1])) > 0.95


@pytest.mark.parametrize("key", ["spray", "coreg", "wmsc", "mcgc", "simvc", "comvc", "activation-clustering"])
def test_views_of_different_sizes(small, key):
    x, y = small
    ragged = [x[:, 0], x[:, 1, :4]]
    assert accuracy(y, make(key).fit_predict(ragged)) > 0.95


def test_views_of_different_sizes_refused_clearly_where_unsupported(small):
    x, _ = small
    with pytest.raises(ValueError, match="one size"):
        make("simvc", encoder="cnn").fit_predict([x[:, 0], x[:, 1, :4]])
    with pytest.raises(ValueError, match="same number of samples"):
        make("coreg").fit_predict([x[:, 0], x[:10, 1]])


@pytest.mark.parametrize("key", ALL)
def test_all_identical_maps_give_one_cluster(key):
    x = np.ones((30, 2, 9))
    est = make(key)
    labels = est.fit_predict(x)
    assert labels.shape == (30,) and np.unique(labels).size == 1
    assert "identical" in est.result_.info["degenerate"]
    assert est.result_.flagged == labels[0]


@pytest.mark.parametrize("key", ALL)
def test_nan_refused_naming_samples(small, key):
    x = small[0].copy()
    x[7, 1, 2] = np.nan
    x[11, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"NaN/inf .*\[7, 11\].*views \[0, 1\]"):
        make(key).fit_predict(x)


@pytest.mark.parametrize("key", [k for k in ALL if k not in ("simvc", "comvc", "activation-clustering")])
def test_n_smaller_than_knn_k(key):
    x, _ = planted_views(n=6, n_views=2, side=3, noise=0.05, seed=1)
    with pytest.warns(UserWarning, match="n_neighbors"):
        labels = make(key, n_neighbors=10).fit_predict(x)
    assert labels.shape == (6,)


@pytest.mark.parametrize("key", ["simvc", "comvc", "activation-clustering"])
def test_tiny_n(key):
    x, _ = planted_views(n=5, n_views=2, side=3, noise=0.05, seed=1)
    assert make(key, **({"epochs": 2} if key != "activation-clustering" else {})).fit_predict(x).shape == (5,)


def test_bad_shapes_and_parameters(small):
    x, _ = small
    with pytest.raises(ValueError, match=r"\[N, V, D\]"):
        make("coreg").fit_predict(x[:, 0])
    with pytest.raises(ValueError, match="exceeds the number of samples"):
        make("coreg", n_clusters=50).fit_predict(x)
    with pytest.raises(ValueError, match="at least 2 samples"):
        make("spray").fit_predict(x[:1])
    with pytest.raises(ValueError, match="scheme"):
        make("coreg", scheme="star").fit_predict(x)


def test_mcgc_refuses_large_n_unless_forced():
    x, y = planted_views(n=60, n_views=3, noise=0.2, seed=2)
    with pytest.raises(ValueError, match="force=True"):
        make("mcgc", max_n=50).fit_predict(x)
    assert make("mcgc", max_n=50, force=True).fit_predict(x).shape == (60,)


def test_activation_clustering_flags_the_poisoned_minority():
    rng = np.random.default_rng(0)
    poisoned = np.arange(100) < 15
    acts = rng.normal(size=(100, 64)) + 4.0 * poisoned[:, None] * (rng.random(64) < 0.2)
    est = make("activation-clustering")
    est.fit_predict(acts[:, None, :])
    np.testing.assert_array_equal(est.result_.flagged_mask, poisoned)
    est.fit_predict(acts[:, None, :5])  # fewer features than PCA components: capped
    assert est.result_.info["pca_components"] == 5


# -- spray-wasserstein -----------------------------------------------------------------

def _shapes(n: int = 24, side: int = 8, seed: int = 0):
    """Group 0: a 2x2 blob, group 1: a horizontal bar, each at a random place (GW is translation-invariant)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    maps = 0.01 * rng.random((n, side, side))
    for i, (r, c) in enumerate(rng.integers(0, side - 2, (n, 2))):
        if y[i]:
            maps[i, r, :] += 1.0
        else:
            maps[i, r : r + 2, c : c + 2] += 1.0
    return maps.reshape(n, 1, -1), y


def test_spray_wasserstein_separates_shapes_anywhere():
    pytest.importorskip("ot")
    x, y = _shapes()
    est = make("spray-wasserstein")
    assert accuracy(y, est.fit_predict(x)) > 0.95
    assert est.result_.info["ot_pairs"] == 24 * 23 // 2


def test_spray_wasserstein_respects_time_budget():
    pytest.importorskip("ot")
    x, _ = _shapes(n=200)
    with pytest.raises(TimeBudgetExceeded, match="time_budget_s"):
        make("spray-wasserstein", time_budget_s=1e-3).fit_predict(x)


def test_spray_wasserstein_without_pot_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ot", None)
    x, _ = _shapes(n=8)
    with pytest.raises(ImportError, match=r"pip install hansbench\[wasserstein\]"):
        make("spray-wasserstein").fit_predict(x)


@pytest.mark.parametrize("key", ["spray", "coreg", "wmsc"])
def test_negative_control_views_decoupled(planted, key):
    """Shuffling samples independently per view destroys the cross-view evidence: recovery must fail."""
    x, y = planted
    rng = np.random.default_rng(0)
    shuffled = x.copy()
    for v in range(1, x.shape[1]):
        shuffled[:, v] = x[rng.permutation(len(y)), v]
    assert accuracy(y, make(key).fit_predict(shuffled)) < 0.9
