"""The trivial floors (PAPERS.md §9): prediction ≠ label, training loss, random filter.

On a constructed label flip (images relabelled to the inspected class with no trigger, and a model
whose logits read each image's true class): prediction ≠ label flags exactly the images the model
disagrees with, so every flipped one (F1 1); the training loss ranks them highest (AUROC 1) and
equals torch's cross-entropy; the random filter is seeded, of the budget's size, and at chance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, roc_auc_score
from torch import nn

from hansbench.datasets.base import GroundTruthUnavailable, ScenarioData, Split
from hansbench.methods.clusterers._detect import n_removed
from hansbench.methods.inputs import LABEL_FIT, SAMPLE_INDEX, label_fit
from hansbench.registry import clusterer_inputs, clusterers

K = 3
INSPECTED = 2
CPU = torch.device("cpu")
FLOORS = {"prediction-mismatch": LABEL_FIT, "training-loss": LABEL_FIT, "random-filter": SAMPLE_INDEX}


class ReadsTrueClass(nn.Module):
    """Hand-built: pixel (0, 0, 0) encodes the true class, ``(c + 0.5 + u) / K`` with ``|u| <= 0.3``;
    logit ``k`` is ``-50 (K x - 0.5 - k)^2``, so the model predicts every image's true class, with a
    confidence that varies from image to image."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))  # gives the model a device

    def normalize(self, x01):
        return x01

    def forward(self, x):
        v = x[:, 0, 0, 0:1].flatten(1) * K - 0.5  # [B, 1]
        return -50.0 * (v - torch.arange(K, dtype=x.dtype)) ** 2 + self.dummy


class RandomLinear(nn.Module):
    """A seeded random linear read-out of the pixels: right on some images, wrong on others."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, K)

    def normalize(self, x01):
        return x01 - 0.5

    def forward(self, x):
        return self.fc(x.flatten(1)) * 10


def label_flip(n: int = 120, n_flipped: int = 14, seed: int = 0) -> tuple[ScenarioData, torch.Tensor]:
    """Random 8x8 images of 3 classes; ``n_flipped`` images of class 0 relabelled to class 2, no trigger."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, 8, 8, generator=g)
    true = torch.arange(n) % K
    u = (torch.rand(n, generator=g) - 0.5) * 0.6
    images[:, 0, 0, 0] = (true + 0.5 + u) / K
    flipped = (true == 0) & (torch.arange(n) < 3 * n_flipped)
    labels = torch.where(flipped, torch.full_like(true, INSPECTED), true)
    train = Split(images, labels, true.clone(), flipped, torch.zeros(n, 8, 8, dtype=torch.bool))
    data = ScenarioData("LF", train, train, train, ["a", "b", "c"], affected_class=0, target_class=INSPECTED)
    assert int(flipped.sum()) == n_flipped and data.inspect_class == INSPECTED
    return data, flipped


def fit_views(model: nn.Module, data: ScenarioData) -> tuple[np.ndarray, torch.Tensor]:
    """The ``label-fit`` views of the inspected class, computed on the data without ground truth."""
    blind = data.without_ground_truth()
    index = torch.nonzero(blind.train.labels == INSPECTED).flatten()
    views = clusterer_inputs.get(LABEL_FIT)().views(model=model, data=blind, index=index, device=CPU, settings={})
    with pytest.raises(GroundTruthUnavailable):  # the kind ran on data whose ground truth is hidden
        _ = blind.train.poisoned
    return views, index


@pytest.fixture(scope="module")
def flip():
    data, flipped = label_flip()
    views, index = fit_views(ReadsTrueClass(), data)
    return data, views, index, flipped[index].numpy()


# -- prediction ≠ label ---------------------------------------------------------------------------------------

def test_prediction_mismatch_flags_exactly_the_flipped_images(flip):
    data, views, index, y = flip
    assert views.shape == (len(index), 1, 2) and 0 < y.sum() < len(y)
    est = clusterers.get("prediction-mismatch")()
    labels = est.fit_predict(views)
    np.testing.assert_array_equal(labels.astype(bool), y)
    assert f1_score(y, labels) == 1.0 and est.result_.flagged == 1
    assert roc_auc_score(y, est.result_.scores) == 1.0  # the deficit is positive exactly on the flagged
    assert est.result_.info["n_disagree"] == y.sum() and "none_disagree" not in est.result_.info


def test_prediction_mismatch_is_the_models_disagreement_not_the_flip():
    """A model that errs on clean images too: the flags are exactly argmax(logits) != training label."""
    data, _ = label_flip(n=150, n_flipped=10, seed=1)
    torch.manual_seed(2)
    model = RandomLinear()
    views, index = fit_views(model, data)
    with torch.no_grad():
        pred = model(model.normalize(data.train.images[index])).argmax(dim=1)
    disagree = (pred != data.train.labels[index]).numpy()
    assert 0 < disagree.sum() < len(disagree)  # both kinds present: the check can tell
    labels = clusterers.get("prediction-mismatch")().fit_predict(views)
    np.testing.assert_array_equal(labels.astype(bool), disagree)


def test_prediction_mismatch_when_the_model_agrees_everywhere_or_nowhere():
    loss = np.linspace(0.1, 0.3, 10)
    agree = np.stack([loss, -np.linspace(1.0, 2.0, 10)], axis=1)[:, None, :]  # every deficit < 0
    est = clusterers.get("prediction-mismatch")()
    labels = est.fit_predict(agree)
    assert labels.tolist() == [0] * 10 and "none_disagree" in est.result_.info  # it flags nothing
    assert est.result_.info["n_disagree"] == 0 and est.result_.flagged == 1 and not est.result_.flagged_mask.any()
    assert est.detects_by == "set"  # its labels are its verdict: the own-flag rule reads them (and abstains here)
    everywhere = est.fit_predict(-agree)
    assert everywhere.all() and est.result_.flagged == 1


def test_prediction_mismatch_on_identical_rows_still_reads_the_deficit():
    """Identical (loss, deficit) rows skip the clustering (the degenerate shortcut); the verdict is still the deficit."""
    est = clusterers.get("prediction-mismatch")()
    assert est.fit_predict(np.tile([[[0.5, 1.0]]], (6, 1, 1))).tolist() == [1] * 6  # every image disagrees
    assert est.fit_predict(np.tile([[[0.5, -1.0]]], (6, 1, 1))).tolist() == [0] * 6 and est.result_.flagged == 1


# -- training loss ------------------------------------------------------------------------------------------

def test_label_fit_equals_torch_cross_entropy_and_argmax():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 5, generator=g) * 4
    labels = torch.randint(0, 5, (50,), generator=g)
    out = label_fit(logits, labels)
    ref = F.cross_entropy(logits.double(), labels, reduction="none").numpy()
    np.testing.assert_allclose(out[:, 0], ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(out[:, 1] > 0, (logits.argmax(dim=1) != labels).numpy())
    with pytest.raises(ValueError, match="K >= 2"):
        label_fit(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))


def test_training_loss_ranks_the_flipped_images_highest(flip):
    data, views, index, y = flip
    model = ReadsTrueClass()
    with torch.no_grad():
        ref = F.cross_entropy(model(data.train.images[index]).double(), data.train.labels[index], reduction="none")
    est = clusterers.get("training-loss")()
    est.fit_predict(views)
    np.testing.assert_allclose(est.result_.scores, ref.numpy(), rtol=1e-12)
    assert roc_auc_score(y, est.result_.scores) == 1.0
    assert est.result_.info["mean_loss_flagged"] > est.result_.info["mean_loss_kept"]
    true_rate = clusterers.get("training-loss")(expected_fraction=y.mean(), removal_multiplier=1.0)
    assert f1_score(y, true_rate.fit_predict(views)) == 1.0  # a budget at the true rate flags exactly the flips
    with pytest.raises(ValueError, match="label-fit"):
        est.fit_predict(np.arange(12.0).reshape(4, 1, 3))


# -- random filter ------------------------------------------------------------------------------------------

def test_random_filter_is_seeded_of_the_budget_size_and_at_chance():
    n = 200
    views = clusterer_inputs.get(SAMPLE_INDEX)().views(model=None, data=None, index=torch.arange(n), device=CPU,
                                                       settings={})
    assert views.shape == (n, 1, 1)
    y = np.random.default_rng(99).permutation(n) < 40

    def run(seed, **kw):
        est = clusterers.get("random-filter")(random_state=seed, **kw)
        return est.fit_predict(views), est.result_

    a, ra = run(7)
    b, rb = run(7)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ra.scores, rb.scores)
    assert not np.array_equal(a, run(8)[0])
    assert a.sum() == n_removed(n, 0.1, 1.5, "") == 30 and ra.flagged == 1
    assert run(7, expected_fraction=0.2, removal_multiplier=1.0)[0].sum() == 40
    np.testing.assert_array_equal(a, clusterers.get("random-filter")(random_state=7).fit_predict(views[::-1] * 3))
    aurocs = [roc_auc_score(y, run(seed)[1].scores) for seed in range(300)]
    assert abs(np.mean(aurocs) - 0.5) < 0.02, np.mean(aurocs)  # sd of one AUROC here ~0.05, of the mean ~0.003


def test_floors_are_registered_on_their_inputs():
    for name, kind in FLOORS.items():
        cls = clusterers.get(name)
        assert cls.input == kind and cls().get_params()["n_clusters"] == 2
        assert not clusterer_inputs.get(kind).needs_explainer and not clusterer_inputs.get(kind).uses_settings
    assert clusterer_inputs.get(LABEL_FIT).uses_model and not clusterer_inputs.get(SAMPLE_INDEX).uses_model


# -- the suites ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suite", ["quick", "seeds", "controls"])
def test_every_detection_table_gets_the_floors_rows(suite):
    """Each (scenario, model kind) with detection rows has one per floor, the input kind in the
    explainer column: the label-flip controls and the clean control included."""
    from hansbench.bench.engine.planner import Planner
    from hansbench.bench.suite.config import load_suite

    plan = Planner(load_suite(suite)).plan()
    rows: dict[tuple, set] = {}
    for node in plan.nodes:
        if node.ids.get("family") in ("cluster-detection", "flag-detection"):  # the clean control: flags only
            rows.setdefault((node.ids["scenario"], node.ids["model"]), set()).add(
                (node.ids["explainer"], node.ids["clusterer"]))
    assert rows
    for where, pairs in rows.items():
        assert set(FLOORS.items()) <= {(c, e) for e, c in pairs}, where
    if suite == "controls":
        assert {"LF-30", "LF-A2O-10", "clean"} <= {s for s, _ in rows}
