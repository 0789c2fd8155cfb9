"""cluster-detection (separability only): hand-computed ACC/F1, sklearn ARI/NMI, permutation and swap invariance,
K = 3, clean sets."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from hansbench.datasets.base import ScenarioData, Split
from hansbench.metrics.base import EvalContext
from hansbench.metrics.cluster_detection import detection_scores
from hansbench.registry import metrics


def _split(poisoned: list[bool]) -> Split:
    n = len(poisoned)
    return Split(torch.zeros(n, 3, 4, 4), torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long),
                 torch.tensor(poisoned), torch.zeros(n, 4, 4, dtype=torch.bool))


def _ctx(labels, poisoned_train, index, flagged) -> EvalContext:
    train = _split(poisoned_train)
    data = ScenarioData("t", train, train, train, ["a", "b"], affected_class=0)
    return EvalContext(data=data, model=torch.nn.Identity(), seed=0, device=torch.device("cpu"),
                       clustering=SimpleNamespace(labels=np.asarray(labels), flagged=flagged),
                       cluster_index=torch.as_tensor(index))


def _values(rows) -> dict[str, float]:
    return {r["metric"]: r["value"] for r in rows}


def _brute_acc(labels, truth) -> float:
    """Best one-to-one map of two clusters to (clean, poisoned); unmatched clusters are errors."""
    ids = np.unique(labels)
    best = 0
    for clean_c, art_c in itertools.permutations(list(ids) + [None, None], 2):
        if clean_c is not None and clean_c == art_c:
            continue
        ok = np.sum((labels == art_c) & truth) + np.sum((labels == clean_c) & ~truth)
        best = max(best, ok)
    return 100.0 * best / len(truth)


def test_hand_computed_two_clusters():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    s = detection_scores(labels, truth)
    assert s["cluster-acc"] == pytest.approx(80.0)  # cluster 0 -> poisoned: 3 TP, 1 FP, 1 FN
    assert s["cluster-f1"] == pytest.approx(0.75)
    assert s["cluster-ari"] == pytest.approx(adjusted_rand_score(truth, labels))
    assert s["cluster-nmi"] == pytest.approx(normalized_mutual_info_score(truth, labels))
    assert set(s) == {"cluster-acc", "cluster-f1", "cluster-ari", "cluster-nmi"}


def test_permuted_ids_give_same_numbers():
    rng = np.random.default_rng(0)
    truth = rng.random(60) < 0.3
    labels = np.where(truth, rng.random(60) < 0.85, rng.random(60) < 0.1).astype(int)
    a = detection_scores(labels, truth)
    b = detection_scores(np.where(labels == 1, 7, 3), truth)
    assert a == pytest.approx(b)
    assert a["cluster-acc"] == pytest.approx(_brute_acc(labels, truth))


def test_three_clusters_unmatched_cluster_counts_as_error():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    s = detection_scores(labels, truth)
    assert s["cluster-acc"] == pytest.approx(75.0)
    assert s["cluster-f1"] == pytest.approx(6 / 7)
    rng = np.random.default_rng(1)
    for _ in range(20):
        lab, tr = rng.integers(0, 4, 30), rng.random(30) < 0.4
        assert detection_scores(lab, tr)["cluster-acc"] == pytest.approx(_brute_acc(lab, tr))


def test_metric_uses_cluster_index_and_ignores_the_flagged_cluster():
    poisoned = [False] * 5 + [True, True, False, True, False]
    index = [5, 6, 7, 8, 9, 0]  # truth: 1 1 0 1 0 0
    labels = [4, 4, 9, 4, 9, 9]
    metric = metrics.get("cluster-detection")()
    rows = metric.evaluate(_ctx(labels, poisoned, index, flagged=4))
    v = _values(rows)
    assert v["cluster-acc"] == pytest.approx(100.0) and v["cluster-f1"] == pytest.approx(1.0)
    assert v["cluster-ari"] == pytest.approx(1.0)
    assert all(r["unit"] == ("%" if r["metric"].startswith("cluster-acc") else "") for r in rows)
    assert metrics.get("cluster-detection").level == "clustering"
    assert _values(metric.evaluate(_ctx(labels, poisoned, index, flagged=9))) == v  # the wrong cluster flagged


def test_separability_only_no_flag_values():
    """Version 4: the flagged cluster's values moved to flag-detection (one per flagging rule)."""
    cls = metrics.get("cluster-detection")
    assert set(cls.values) == {"cluster-acc", "cluster-f1", "cluster-ari", "cluster-nmi", "auroc", "auprc"}
    shows = cls.presentation
    assert shows.label_free == ("cluster-ari", "auroc", "auprc")
    assert shows.label_matched == ("cluster-acc", "cluster-f1")
    assert "picks the right cluster" in shows.meaning and "picks the right cluster" in cls.__doc__
    rows = cls().evaluate(_ctx([0, 0, 1, 1], [True, True, False, False], [0, 1, 2, 3], flagged=0))
    assert {r["metric"] for r in rows} == set(cls.values)


def test_ari_and_label_matched_f1_are_invariant_to_swapping_the_two_clusters():
    """The point of separability: a 50/50 split scores the same whichever half is called poisoned (or flagged)."""
    rng = np.random.default_rng(5)
    metric = metrics.get("cluster-detection")()
    for n_poisoned in (20, 13):  # a symmetric split and an asymmetric one
        truth = np.r_[np.ones(n_poisoned, bool), np.zeros(40 - n_poisoned, bool)]
        labels = np.where(truth, rng.random(40) < 0.9, rng.random(40) < 0.15).astype(int)  # imperfect split
        scores = truth + rng.normal(0, 0.7, 40)
        a = _values(metric.evaluate(_ctx_with(_scored(labels, scores, flagged=0), truth.tolist())))
        b = _values(metric.evaluate(_ctx_with(_scored(1 - labels, scores, flagged=0), truth.tolist())))
        assert 0.2 < a["cluster-ari"] < 1.0 and 0.5 < a["cluster-f1"] < 1.0  # neither chance nor perfect
        assert a["cluster-ari"] == b["cluster-ari"] and a["cluster-f1"] == b["cluster-f1"]
        assert a == pytest.approx(b)


def test_clean_clustered_set_gives_missing_values_with_reason():
    rows = metrics.get("cluster-detection")().evaluate(_ctx([0, 1, 1, 1], [False] * 4, [0, 1, 2, 3], flagged=0))
    assert {r["metric"] for r in rows} == set(metrics.get("cluster-detection").values)
    assert all("no poisoned sample" in r["detail"] for r in rows)
    assert all(r["value"] is None for r in rows)  # missing (None): the row check refuses NaN


def test_runs_where_flag_detection_runs():
    """The clean control (all values missing there) included; left out only without clean images."""
    for name in ("cluster-detection", "flag-detection"):
        metric = metrics.get(name)()
        assert metric.not_applicable(model_kind="classifier", scenario={"poisoning": "none", "fraction": 0.0}) is None
        assert metric.not_applicable(model_kind="classifier", scenario={"poisoning": "CH", "fraction": 0.5}) is None
        assert "no clean ones" in metric.not_applicable(model_kind="classifier",
                                                        scenario={"poisoning": "CH", "fraction": 1.0})


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="labels"):
        detection_scores(np.zeros(3), np.zeros(4, dtype=bool))


def _ctx_with(clustering, poisoned_train) -> EvalContext:
    train = _split(poisoned_train)
    data = ScenarioData("t", train, train, train, ["a", "b"], affected_class=0)
    return EvalContext(data=data, model=torch.nn.Identity(), seed=0, device=torch.device("cpu"),
                       clustering=clustering, cluster_index=torch.arange(len(poisoned_train)))


def test_detail_carries_a_real_clusterers_diagnostics():
    import json

    from hansbench.registry import clusterers

    rng = np.random.default_rng(0)
    poisoned = [False] * 20 + [True] * 10
    views = np.concatenate([rng.normal(0, 1, (20, 1, 8)), rng.normal(6, 1, (10, 1, 8))])
    est = clusterers.get("spray")(n_clusters=2, random_state=0, n_neighbors=5)
    est.fit_predict(views)
    rows = metrics.get("cluster-detection")().evaluate(_ctx_with(est.result_, poisoned))
    details = [json.loads(r["detail"]) for r in rows]
    assert all(d == details[0] for d in details)
    assert details[0]["info"]["eigengap_k"] == est.result_.info["eigengap_k"]
    assert details[0]["info"]["eigenvalues"] == pytest.approx(est.result_.info["eigenvalues"])
    assert details[0]["fallback"] is False


def test_detail_marks_a_fallback_and_is_strict_json():
    import json

    poisoned = [False, False, True, True]
    mcgc_like = {"labels_from": "k-means on the spectral embedding (S has 3 components, not 2)",
                 "rank_constraint_met": np.bool_(False), "gamma": np.float64(2.0),
                 "objective": np.array([1.5, np.nan]), "weights": torch.tensor([0.25, 0.75])}
    res = SimpleNamespace(labels=np.array([0, 0, 1, 1]), flagged=1, info=mcgc_like)
    detail = metrics.get("cluster-detection")().evaluate(_ctx_with(res, poisoned))[0]["detail"]
    d = json.loads(detail, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert d["fallback"] is True and d["info"]["rank_constraint_met"] is False
    assert d["info"]["objective"] == [1.5, None] and d["info"]["weights"] == [0.25, 0.75]
    for info, expected in (({"labels_from": "connected components of S"}, False), ({"fallback": True}, True),
                           ({}, False)):
        res = SimpleNamespace(labels=np.array([0, 0, 1, 1]), flagged=1, info=info)
        assert json.loads(metrics.get("cluster-detection")().evaluate(_ctx_with(res, poisoned))[0]["detail"])[
            "fallback"] is expected
    # undefined detection (nothing poisoned) still reports the diagnostics
    res = SimpleNamespace(labels=np.array([0, 0, 1, 1]), flagged=1, info=mcgc_like)
    d = json.loads(metrics.get("cluster-detection")().evaluate(_ctx_with(res, [False] * 4))[0]["detail"])
    assert d["fallback"] is True and "undefined" in d


def _scored(labels, scores, flagged=1):
    return SimpleNamespace(labels=np.asarray(labels), flagged=flagged, info={},
                           scores=None if scores is None else np.asarray(scores, dtype=float))


def test_auroc_auprc_equal_sklearn_and_a_perfect_score_gives_one():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(3)
    truth = rng.random(40) < 0.3
    scores = truth + rng.normal(0, 0.8, 40)  # informative but imperfect
    labels = (scores > 0.5).astype(int)
    v = _values(metrics.get("cluster-detection")().evaluate(_ctx_with(_scored(labels, scores), truth.tolist())))
    assert v["auroc"] == pytest.approx(roc_auc_score(truth, scores))
    assert v["auprc"] == pytest.approx(average_precision_score(truth, scores))
    assert 0.5 < v["auroc"] < 1.0  # the constructed case is neither chance nor perfect
    perfect = truth * 2.0 - 1.0 + rng.normal(0, 0.01, 40)
    v = _values(metrics.get("cluster-detection")().evaluate(_ctx_with(_scored(labels, perfect), truth.tolist())))
    assert v["auroc"] == pytest.approx(1.0) and v["auprc"] == pytest.approx(1.0)
    flipped = _values(metrics.get("cluster-detection")().evaluate(_ctx_with(_scored(labels, -perfect),
                                                                            truth.tolist())))
    assert flipped["auroc"] == pytest.approx(0.0)  # the orientation matters: higher = more suspicious


def test_no_scores_give_nan_auc_with_the_reason():
    import json

    rows = metrics.get("cluster-detection")().evaluate(_ctx_with(_scored([0, 0, 1, 1], None), [False, False, True, True]))
    v = _values(rows)
    assert v["auroc"] is None and v["auprc"] is None and v["cluster-acc"] == pytest.approx(100.0)
    assert "no per-sample scores" in json.loads(rows[0]["detail"])["auc_undefined"]
    with pytest.raises(ValueError, match="scores"):
        metrics.get("cluster-detection")().evaluate(_ctx_with(_scored([0, 0, 1, 1], [1.0, 2.0]),
                                                              [False, False, True, True]))


def test_spray_scores_rank_a_planted_cluster_first():
    """SpRAy's centroid-difference scores: the flagged (smaller) planted group scores highest, AUROC 1."""
    from sklearn.metrics import roc_auc_score

    from hansbench.registry import clusterers

    rng = np.random.default_rng(0)
    views = np.concatenate([rng.normal(0, 1, (30, 1, 8)), rng.normal(6, 1, (10, 1, 8))])
    truth = np.r_[np.zeros(30, bool), np.ones(10, bool)]
    for name in ("spray", "activation-clustering", "coreg", "wmsc"):
        est = clusterers.get(name)(n_clusters=2, random_state=0, n_neighbors=5) if name != "activation-clustering" \
            else clusterers.get(name)(n_clusters=2, random_state=0)
        est.fit_predict(views)
        res = est.result_
        assert res.scores is not None and res.scores.shape == (40,), name
        assert roc_auc_score(truth, res.scores) == pytest.approx(1.0), name
        assert np.array_equal(res.scores > 0, res.flagged_mask), name  # positive exactly on the flagged cluster
