"""flag-detection on constructed flaggings: a perfect flag, an abstention, the clean control, scikit-learn's scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, precision_score, recall_score

from hansbench.datasets.base import ScenarioData, Split
from hansbench.methods.flagging.base import Flagging
from hansbench.metrics.base import EvalContext
from hansbench.registry import metrics


def _ctx(poisoned: list[bool], flagging, index=None, rule: str = "relative-size") -> EvalContext:
    n = len(poisoned)
    train = Split(torch.zeros(n, 3, 4, 4), torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long),
                  torch.tensor(poisoned), torch.zeros(n, 4, 4, dtype=torch.bool))
    data = ScenarioData("t", train, train, train, ["a", "b"], affected_class=0)
    index = torch.arange(n) if index is None else torch.as_tensor(index)
    return EvalContext(data=data, model=torch.nn.Identity(), seed=0, device=torch.device("cpu"),
                       clustering=None, cluster_index=index, flagging=flagging, rule=rule)


def _run(ctx):
    rows = metrics.get("flag-detection")().evaluate(ctx)
    return {r["metric"]: r["value"] for r in rows}, [json.loads(r["detail"]) for r in rows]


def test_a_perfect_flag_scores_one():
    truth = np.r_[np.ones(7, bool), np.zeros(13, bool)]
    v, details = _run(_ctx(truth.tolist(), Flagging.of(truth, "cluster 1 holds 35 % of the class")))
    assert v == {"flag-f1": 1.0, "flag-precision": 100.0, "flag-recall": 100.0, "flagged-fraction": 0.35,
                 "abstained": 0.0}
    assert details[0]["reason"] == "cluster 1 holds 35 % of the class" and details[0]["rule"] == "relative-size"
    assert details[0]["rule_info"] == {"n_flagged": 7} and details[0]["n_flagged"] == 7


def test_an_abstention_flags_nothing_and_finds_nothing():
    truth = np.r_[np.ones(10, bool), np.zeros(10, bool)]
    v, details = _run(_ctx(truth.tolist(), Flagging.abstain(20, "the two clusters tie at 10 images")))
    assert v["flag-f1"] == 0.0 and v["flag-precision"] is None and v["flag-recall"] == 0.0
    assert v["abstained"] == 1.0 and v["flagged-fraction"] == 0.0
    assert details[0]["abstained"] is True and "tie" in details[0]["reason"]
    assert "precision is undefined" in details[0]["undefined"]


def test_the_clean_control_gives_the_false_alarm_rate_only():
    flags = np.zeros(10, bool)
    flags[[1, 4, 7]] = True
    v, details = _run(_ctx([False] * 10, Flagging.of(flags, "cluster 0 holds 30 % of the class")))
    defined = {k for k, x in v.items() if x is not None}
    assert defined == {"flagged-fraction", "abstained"}
    assert v["flagged-fraction"] == pytest.approx(0.3) and v["abstained"] == 0.0
    assert "no poisoned sample" in details[0]["undefined"]


def test_scores_equal_scikit_learn_on_the_clustered_samples():
    rng = np.random.default_rng(2)
    poisoned = (rng.random(60) < 0.3).tolist()
    index = rng.permutation(60)[:40]  # the clustered samples are a subset, in another order
    truth = np.asarray(poisoned)[index]
    flags = truth ^ (rng.random(40) < 0.2)  # an imperfect flag
    v, _ = _run(_ctx(poisoned, Flagging.of(flags, "some"), index=index))
    assert v["flag-f1"] == pytest.approx(f1_score(truth, flags))
    assert v["flag-precision"] == pytest.approx(100 * precision_score(truth, flags))
    assert v["flag-recall"] == pytest.approx(100 * recall_score(truth, flags))
    assert v["flagged-fraction"] == pytest.approx(flags.mean())
    assert 0.3 < v["flag-f1"] < 1.0


def test_clear_errors():
    flagging = Flagging.of(np.ones(3, bool), "all")
    with pytest.raises(ValueError, match="needs ctx.flagging"):
        metrics.get("flag-detection")().evaluate(_ctx([True, False, False], None))
    with pytest.raises(ValueError, match="flags 3 samples for 4 clustered"):
        metrics.get("flag-detection")().evaluate(_ctx([True, False, False, False], flagging))
    bad = Flagging(np.array([True, False, False]), True, "abstained but flags")
    with pytest.raises(ValueError, match="abstained but flags 1"):
        metrics.get("flag-detection")().evaluate(_ctx([True, False, False], bad))


def test_declarations():
    cls = metrics.get("flag-detection")
    assert cls.level == "flagging"
    assert cls.values["flagged-fraction"] == ("", False) and cls.values["abstained"] == ("bool", False)
    assert cls.presentation.shape == "detection" and "flagged-fraction" in cls.presentation.control
    assert cls().not_applicable(model_kind="classifier", scenario={"poisoning": "none", "fraction": 0.0}) is None
    assert "no clean ones" in cls().not_applicable(model_kind="classifier",
                                                    scenario={"poisoning": "CH", "fraction": 1.0})
