"""Clusterers: planted-structure recovery, determinism, the unsupervised flag, and clear errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from scipy.sparse.csgraph import connected_components
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from hansbench.methods.base import Clusterer
from hansbench.methods.clusterers import _graph
from hansbench.methods.clusterers.spray_wasserstein import TimeBudgetExceeded
from hansbench.registry import clusterers
from hansbench.testing import planted_views
from tests._seeds import mean, per_seed

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
DEEP = ("simvc", "comvc")  # they train networks: learned recoveries are asserted on the mean over SEEDS
ALL = list(FAST)


def make(key: str, **kw) -> Clusterer:
    name = "coreg" if key == "coreg-centroid" else key
    return clusterers.get(name)(**{**FAST[key], **kw})


def accuracy(y: np.ndarray, labels: np.ndarray) -> float:
    a = float((y == labels).mean())
    return max(a, 1.0 - a)


def recovery(key: str, x, y: np.ndarray, **kw) -> float:
    """Accuracy of ``make(key)`` on ``x``; for the deep clusterers (they train networks, whose weights differ
    across hosts) the mean over random_state in SEEDS."""
    if key not in DEEP:
        return accuracy(y, make(key, **kw).fit_predict(x))
    return mean(per_seed(lambda seed: round(accuracy(y, make(key, **{"random_state": seed, **kw}).fit_predict(x)), 4)))


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


@pytest.mark.parametrize("key", ALL)
def test_clone_gives_equal_params_and_equal_labels(small, key):
    """Issue 12: every clusterer is a scikit-learn estimator -- clone/get_params/set_params work, and a
    clone (parameters only, no fitted state) clusters exactly like the original."""
    from sklearn.base import BaseEstimator, ClusterMixin

    x, _ = small
    est = make(key, random_state=3)
    assert isinstance(est, BaseEstimator) and isinstance(est, ClusterMixin)
    labels = est.fit_predict(x)
    twin = clone(est)
    assert twin is not est and twin.get_params() == est.get_params()
    assert not hasattr(twin, "labels_")  # clone copies parameters, not fitted state
    np.testing.assert_array_equal(twin.fit_predict(x), labels)
    assert twin.fit(x) is twin
    np.testing.assert_array_equal(twin.labels_, labels)
    twin.set_params(n_clusters=3)
    assert twin.n_clusters == 3 and est.n_clusters == 2


def test_planted_data_is_ambiguous_per_view(planted):
    """The premise of the recovery test: no single view separates the groups."""
    x, y = planted
    for v in range(x.shape[1]):
        assert accuracy(y, make("spray").fit_predict(x[:, v : v + 1])) < 0.9


@pytest.mark.parametrize("key", MULTIVIEW)
def test_recovers_planted_groups_and_is_deterministic(planted, key):
    """Same random_state, same labels (two runs here); recovery > 0.95. The deep clusterers train networks,
    so theirs is the mean over random_state in SEEDS.

    Measured accuracy per random_state 0, 1, 2, torch threads 1 and 2 on a 16-core x86 host: 1.0, 1.0, 1.0 for
    both (the 2-core dev VM, threads 1 and 2: the same). Asserted: mean > 0.95.
    """
    x, y = planted
    a, b = make(key), make(key)
    la = a.fit_predict(x)
    np.testing.assert_array_equal(la, b.fit_predict(x))
    assert a.result_.info == b.result_.info
    json.dumps(a.result_.info)  # stored by the runner
    if key in DEEP:
        accs = per_seed(lambda seed: round(accuracy(y, la if seed == 0 else make(key, random_state=seed)
                                                    .fit_predict(x)), 4))
        assert mean(accs) > 0.95, accs
    else:
        assert accuracy(y, la) > 0.95


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
    est.fit_predict(x)
    assert est.result_.info["device"].startswith("cuda")
    accs = per_seed(lambda seed: accuracy(y, clusterers.get("simvc")(runs=3, epochs=20, batch_size=50,
                                                                      random_state=seed).fit_predict(x)))
    assert mean(accs) > 0.95, accs


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
    assert recovery(key, x[:, :1], y) > 0.95


@pytest.mark.parametrize("key", ["spray", "coreg", "wmsc", "mcgc", "simvc", "comvc", "activation-clustering"])
def test_views_of_different_sizes(small, key):
    x, y = small
    ragged = [x[:, 0], x[:, 1, :4]]
    # the deep methods' default CNN encoder needs square views of one size: their MLP takes ragged views
    assert recovery(key, ragged, y, **({"encoder": "mlp"} if key in DEEP else {})) > 0.95


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
    x, y = _shapes()
    est = make("spray-wasserstein")
    assert accuracy(y, est.fit_predict(x)) > 0.95
    assert est.result_.info["ot_pairs"] == 24 * 23 // 2


def test_spray_wasserstein_respects_time_budget():
    x, _ = _shapes(n=200)
    with pytest.raises(TimeBudgetExceeded, match="time_budget_s"):
        make("spray-wasserstein", time_budget_s=1e-3).fit_predict(x)


def test_spray_wasserstein_without_pot_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ot", None)
    x, _ = _shapes(n=8)
    with pytest.raises(ImportError, match=r"core dependency.*reinstall hansbench"):
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


# -- issue 9: SiMVC / CoMVC on planted 11x11 maps at the quick suite's budget ---------------

QUICK_DEEP = {"runs": 2, "epochs": 20}  # hansbench/suites/quick.toml


@pytest.mark.parametrize(("key", "encoder", "frac_b"), [
    ("simvc", "cnn", 0.5), ("comvc", "cnn", 0.5), ("simvc", "mlp", 0.5), ("comvc", "mlp", 0.5),
    ("simvc", "cnn", 0.2), ("simvc", "mlp", 0.2)])
def test_deep_recovers_planted_maps_at_quick_budget(key, encoder, frac_b):
    """Issue 9: on 150 planted 6-view 11x11 maps (the quick suite's map size; spectral methods: 100 %),
    SiMVC/CoMVC reached 55-85 % (mean over seeds) before the fix: with N far below the encoders'
    parameter count every balanced split is a zero-loss DDC minimum, and the random initial head
    picked one. Near-zero head init + input noise fixed it. frac_b = 0.2: a poisoned minority (DDC's
    ddc_2 term favours balanced clusters, so this is the harder case).

    Measured (threads 1), per data seed 0, 1, 2 with random_state = seed:
    simvc cnn 1.0/1.0/1.0 (0.2: .993/.967/1.0); comvc cnn 1.0/1.0/1.0 (0.2: .993/.973/1.0);
    simvc mlp 1.0/1.0/1.0 (0.2: .907/.82/.927); comvc mlp 1.0/1.0/1.0. Asserted: mean >= 0.9
    (balanced) and >= 0.8 (minority, MLP) / 0.9 (minority, CNN).
    """
    accs = per_seed(lambda seed: round(accuracy(*_fit_planted(key, seed, encoder=encoder, frac_b=frac_b)), 4))
    assert mean(accs) >= (0.8 if (encoder == "mlp" and frac_b != 0.5) else 0.9), accs


def _fit_planted(key: str, seed: int, **kw):
    frac_b = kw.pop("frac_b", 0.5)
    x, y = planted_views(n=150, n_views=6, side=11, noise=0.3, frac_b=frac_b, seed=seed)
    est = clusterers.get(key)(random_state=seed, device="cpu", **QUICK_DEEP, **kw)
    return y, est.fit_predict(x)


def test_deep_fails_without_cross_view_evidence():
    """Negative control for the deep methods: views shuffled independently carry no joint group signal,
    so recovery must fail (a clusterer that 'wins' here is reading something else)."""
    x, y = planted_views(n=150, n_views=6, side=11, noise=0.3, seed=0)
    rng = np.random.default_rng(0)
    for v in range(1, x.shape[1]):
        x[:, v] = x[rng.permutation(len(y)), v]
    est = clusterers.get("simvc")(random_state=0, device="cpu", **QUICK_DEEP)
    assert accuracy(y, est.fit_predict(x)) < 0.9


def test_deep_cnn_is_default_and_per_view():
    """PAPERS.md §5: one CNN encoder per view by default -- each view's weights are its own group of the
    grouped convolution, so changing view 0's input changes only view 0's representation."""
    from hansbench.methods.clusterers.deep_mvc import CNNEncoders

    est = clusterers.get("simvc")()
    assert est.encoder == "cnn"
    net = est._model(3, 121).eval()
    assert isinstance(net.encoders, CNNEncoders)
    x = torch.randn(4, 3, 121)
    x2 = x.clone()
    x2[:, 0] += 1.0
    with torch.no_grad():
        z, z2 = net.encoders(x), net.encoders(x2)
    assert not torch.allclose(z[:, 0], z2[:, 0])
    torch.testing.assert_close(z[:, 1:], z2[:, 1:])


def test_deep_info_describes_the_chosen_run(planted):
    """SiMVC/CoMVC diagnostics: fusion weights on the simplex, the chosen run's losses, cluster sizes."""
    x, _ = planted
    est = make("comvc", runs=2, epochs=3)
    labels = est.fit_predict(x)
    info = est.result_.info
    json.dumps(info)
    w = np.array(info["fusion_weights"])
    assert w.shape == (x.shape[1],) and (w > 0).all() and np.isclose(w.sum(), 1.0, atol=1e-5)
    assert set(info["best_run_losses"]) == {"ddc_1", "ddc_2", "ddc_3", "contrastive", "total"}
    assert info["best_run_losses"]["ddc_1"] == info["best_run_loss"] == min(info["run_losses"])
    assert info["cluster_sizes"] == np.bincount(labels, minlength=2).tolist()
    assert "contrastive" not in make("simvc", runs=1, epochs=1).fit(x).result_.info["best_run_losses"]


# -- diagnostics and value tests of MCGC and WMSC ----------------------------------------

def test_mcgc_meets_rank_constraint_on_planted_views(planted):
    """MCGC's defining property: the learned consensus graph S has exactly n_clusters connected
    components (counted here independently), and the labels are those components."""
    x, y = planted
    est = make("mcgc")
    labels = est.fit_predict(x)
    info = est.result_.info
    assert info["fallback"] is False and info["fallback_reason"] is None
    n_comp, comp = connected_components(est.graph_, directed=False)
    assert n_comp == 2 == info["n_components"]
    assert adjusted_rand_score(comp, labels) == 1.0
    assert accuracy(y, labels) > 0.95


def test_mcgc_reports_its_kmeans_fallback(planted):
    """With no iterations S is the unconstrained initial graph: the rank constraint is not met, MCGC
    must fall back to k-means and say so (a reader would otherwise take k-means labels for MCGC's)."""
    x, _ = planted
    est = make("mcgc", max_iter=0)
    labels = est.fit_predict(x)
    info = est.result_.info
    assert info["fallback"] is True
    assert "not n_clusters=2" in info["fallback_reason"] and info["labels_from"].startswith("k-means")
    assert connected_components(est.graph_, directed=False)[0] != 2
    assert labels.shape == (x.shape[0],) and np.unique(labels).size == 2
    json.dumps(info)


@pytest.mark.parametrize("seed", [0, 1])
def test_wmsc_gives_a_pure_noise_view_the_smallest_weight(seed):
    """WMSC's view weights (Zong et al. 2018) must down-weight a view that disagrees with the consensus:
    a pure-noise view appended to planted views gets the smallest weight, and recovery survives it."""
    x, y = planted_views(n=200, n_views=6, side=4, noise=0.3, seed=seed, noise_views=1)
    est = make("wmsc")
    labels = est.fit_predict(x)
    w = np.array(est.result_.info["view_weights"])
    assert w.shape == (7,) and np.isclose(w.sum(), 1.0)
    assert int(np.argmin(w)) == 6, w
    assert accuracy(y, labels) > 0.95


@pytest.mark.parametrize("key", [k for k in ALL if k != "spray-wasserstein"])
def test_scores_rank_the_planted_minority_and_are_oriented(key):
    """``result_.scores``: one finite float per sample, higher on the flagged cluster, ranking the planted
    minority first (AUROC near 1 on well-separated groups). The deep clusterers' soft assignments too."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = (np.arange(60) % 10 < 3).astype(int)  # a 30 % minority
    x = rng.normal(0, 1, (60, 2, 9)) + 6.0 * y[:, None, None]  # two well-separated blobs in both views
    est = make(key, **({"runs": 1, "epochs": 10, "encoder": "mlp"} if key in DEEP else {}))
    est.fit_predict(x)
    res = est.result_
    assert res.scores is not None and res.scores.shape == (60,) and np.isfinite(res.scores).all(), key
    flagged = res.flagged_mask
    assert res.scores[flagged].min() > res.scores[~flagged].max(), key  # oriented: the flagged cluster scores high
    assert roc_auc_score(y == 1, res.scores) > 0.95, key  # the smaller (flagged) group is the planted minority


def test_centroid_scores_reproduce_the_kmeans_assignment():
    """Thresholding centroid_scores at 0 gives back the nearest-centroid assignment (hand-checked formula)."""
    rng = np.random.default_rng(0)
    z = np.r_[rng.normal(0, 1, (30, 2)), rng.normal(5, 1, (10, 2))]
    labels = _graph.kmeans_labels(z, 3, 0)
    flagged = int(np.argmin(np.bincount(labels)))
    s = _graph.centroid_scores(z, labels, flagged)
    centres = np.stack([z[labels == c].mean(0) for c in range(3)])
    nearest = np.linalg.norm(z[:, None] - centres[None], axis=2).argmin(1)
    np.testing.assert_array_equal(s > 0, nearest == flagged)
    assert np.array_equal(_graph.centroid_scores(z, np.zeros(40, int), 0), np.zeros(40))  # one cluster: no ranking
