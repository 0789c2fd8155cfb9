"""Supervised ceiling: the logistic-regression probe poisoned vs clean on maps, pixels and activations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from hansbench.datasets.scenarios import make_scenario
from hansbench.metrics.base import EvalContext
from hansbench.metrics.probe import ProbeCeiling, ProbeCeilingInputs, pooled, probe_scores
from hansbench.testing import tiny_model

SIDE = 16


@pytest.fixture(scope="module")
def data():
    return make_scenario(image_size=SIDE, n_train=200, n_test=20, poisoning="CH", fraction=0.5, seed=0)


def planted_maps(data, index, strength: float, seed: int = 0) -> torch.Tensor:
    """Noise maps ``[n, 2, H, W]``; poisoned images get ``strength`` added in the artifact's mask (view 0)."""
    g = torch.Generator().manual_seed(seed)
    maps = torch.rand(len(index), 2, SIDE, SIDE, generator=g)
    maps[:, 0] += strength * data.train.masks[index].float() * data.train.poisoned[index].float()[:, None, None]
    return maps


def context(data, strength: float, seed: int = 0, calls: list | None = None) -> EvalContext:
    def explain(split, index, target):
        if calls is not None:
            calls.append((split, index.clone(), target.clone()))
        return planted_maps(data, index, strength)

    return EvalContext(data=data, model=tiny_model(num_classes=5, side=SIDE), seed=seed, device=torch.device("cpu"),
                       explainer="test", explain=explain)


def values(rows, stage=""):
    return {r["metric"]: r["value"] for r in rows if r["stage"] == stage}


def test_probe_reads_a_planted_artifact_and_not_pure_noise(data):
    calls = []
    planted = values(ProbeCeiling().evaluate(context(data, 3.0, calls=calls)))
    noise = values(ProbeCeiling().evaluate(context(data, 0.0)))
    assert planted["probe-accuracy"] >= 95 and planted["probe-auroc"] >= 0.95, planted
    assert 25 <= noise["probe-balanced-accuracy"] <= 75 and 0.25 <= noise["probe-auroc"] <= 0.75, noise
    split, index, target = calls[0]  # the clusterers' maps: the inspected class's training images, its targets
    assert split == "train" and torch.equal(index, data.train.of_class(data.inspect_class))
    assert torch.equal(target, data.explain_targets("train", index))


def test_probe_folds_are_seeded(data):
    a = ProbeCeiling().evaluate(context(data, 0.0, seed=3))
    b = ProbeCeiling().evaluate(context(data, 0.0, seed=3))
    assert [r["value"] for r in a] == [r["value"] for r in b], "same seed -> same numbers"
    feats = np.random.default_rng(0).normal(size=(40, 30))
    y = np.r_[np.zeros(20, bool), np.ones(20, bool)]
    runs = {probe_scores(feats, y, seed=s)["probe-auroc"] for s in range(6)}
    assert len(runs) > 1, "the seed reaches the folds"


def test_probe_equals_a_plain_sklearn_loop():
    """Independent reference: the folds by hand, the scaler fitted on each training fold only."""
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(25, bool), np.ones(15, bool)]
    x = (rng.normal(size=(40, 12)) + 0.8 * y[:, None]) * np.logspace(-3, 3, 12)  # scales the scaler must undo
    got = probe_scores(x, y, seed=4)
    proba = np.zeros(40)
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=4).split(x, y):
        scaler = StandardScaler().fit(x[tr])
        clf = LogisticRegression(max_iter=2000).fit(scaler.transform(x[tr]), y[tr])
        proba[te] = clf.predict_proba(scaler.transform(x[te]))[:, 1]
    assert got["probe-accuracy"] == pytest.approx(100 * accuracy_score(y, proba >= 0.5))
    assert got["probe-auroc"] == pytest.approx(roc_auc_score(y, proba))
    assert got["folds"] == 5


def test_probe_uses_fewer_folds_for_a_small_class_and_none_below_two():
    x = np.arange(20, dtype=float)[:, None]
    y = np.r_[np.zeros(17, bool), np.ones(3, bool)]
    assert probe_scores(x, y, seed=0)["folds"] == 3
    assert probe_scores(x, np.r_[np.zeros(19, bool), np.ones(1, bool)], seed=0) is None


def test_pooled_follows_the_clusterers_map_size_rule():
    maps = torch.rand(2, 3, 32, 32)
    assert pooled(maps, None).shape == (2, 3 * 11 * 11)  # max(4, round(32 / 3)) = 11
    assert pooled(maps, 4).shape == (2, 3 * 16)
    np.testing.assert_allclose(pooled(maps, 1), maps.mean(dim=(-2, -1)).numpy(), rtol=1e-6)


def test_inputs_probe_on_pixels_and_activations(data):
    rows = ProbeCeilingInputs().evaluate(context(data, 0.0))
    assert {r["stage"] for r in rows} == {"pixels", "activations"}
    pixels = values(rows, "pixels")
    assert pixels["probe-accuracy"] >= 90, pixels  # the post-it is a block of pixels: linearly readable
    assert json.loads(rows[0]["detail"])["n_poisoned"] == int(data.train.poisoned.sum())
