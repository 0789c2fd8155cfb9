"""Metric computations on degenerate inputs: random shapes, all-zero and constant maps, ties, NaN,
a single sample, an empty set. Each returns a well-defined value or raises a clear ValueError:
never a silent 0.0 or NaN that a leaderboard would rank."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hansbench.metrics._perturbation import descending_ranks, step_counts, trapezoid_auc
from hansbench.metrics.artifact_insertion import class_rank
from hansbench.metrics.class_ranking import fisher_separability, separability_tau
from hansbench.metrics.cluster_detection import detection_scores
from hansbench.metrics.localisation import localisation_scores
from hansbench.metrics.pruning import artifact_shares

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Relevance values with many ties: a few levels, zeros, negatives and large magnitudes.
VALUES = st.sampled_from([0.0, 0.0, 1.0, -1.0, 0.5, 1e-30, 3e4, -2.5])


@st.composite
def maps_and_masks(draw, allow_empty_mask: bool = False):
    n, v = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["random", "zeros", "constant", "levels"]))
    if kind == "random":
        maps = torch.tensor(draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=n * v * h * w,
                                          max_size=n * v * h * w)), dtype=torch.float32)
    elif kind == "levels":
        maps = torch.tensor(draw(st.lists(VALUES, min_size=n * v * h * w, max_size=n * v * h * w)))
    else:
        maps = torch.full((n * v * h * w,), 0.0 if kind == "zeros" else draw(VALUES))
    masks = torch.tensor(draw(st.lists(st.booleans(), min_size=n * h * w, max_size=n * h * w))).view(n, h, w)
    if not allow_empty_mask:
        masks[:, 0, 0] |= ~masks.flatten(1).any(1)  # at least one pixel per image
    return maps.view(n, v, h, w).float(), masks


def with_nan(maps: torch.Tensor) -> torch.Tensor:
    maps = maps.clone()
    maps.view(-1)[maps.numel() // 2] = math.nan
    return maps


# ----------------------------------------------------------------------------- pixel orderings


@SETTINGS
@given(maps_and_masks())
def test_descending_ranks_are_a_stable_permutation(mm):
    maps, _ = mm
    ranks = descending_ranks(maps)
    flat = maps.flatten(-2)
    n_pix = flat.shape[-1]
    assert torch.equal(ranks.sort(-1).values, torch.arange(n_pix).expand_as(ranks)), "a permutation per map"
    i, j = torch.meshgrid(torch.arange(n_pix), torch.arange(n_pix), indexing="ij")
    before = (flat[..., :, None] > flat[..., None, :]) | ((flat[..., :, None] == flat[..., None, :]) & (i < j))
    assert ((ranks[..., :, None] < ranks[..., None, :]) == before).all(), "higher first, ties in pixel order"


@SETTINGS
@given(maps_and_masks())
def test_descending_ranks_refuse_nan(mm):
    with pytest.raises(ValueError, match="NaN"):
        descending_ranks(with_nan(mm[0]))


@given(st.integers(0, 10_000), st.integers(2, 50))
def test_step_counts_go_from_none_to_all(n_pixels, n_steps):
    ks = step_counts(n_pixels, n_steps)
    assert ks[0] == 0 and ks[-1] == n_pixels and (ks.diff() >= 0).all() and len(ks) == n_steps


def test_step_counts_and_auc_refuse_too_few_points():
    with pytest.raises(ValueError, match="n_steps"):
        step_counts(10, 1)
    with pytest.raises(ValueError, match="at least 2 points"):
        trapezoid_auc(torch.ones(3, 1))


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=30))
def test_auc_lies_between_the_curve_extremes(values):
    curve = torch.tensor(values, dtype=torch.float64)
    auc = float(trapezoid_auc(curve))
    assert math.isfinite(auc)
    assert curve.min().item() - 1e-6 * (1 + abs(auc)) <= auc <= curve.max().item() + 1e-6 * (1 + abs(auc))
    assert float(trapezoid_auc(torch.full((len(values),), 2.5))) == pytest.approx(2.5)


# ----------------------------------------------------------------------------- localisation


@SETTINGS
@given(maps_and_masks())
def test_localisation_scores_are_shares(mm):
    maps, masks = mm
    s = localisation_scores(maps, masks)
    for name, values in s.items():
        assert values.shape == maps.shape[:2], name
        assert torch.isfinite(values).all() and (values >= 0).all() and (values <= 1 + 1e-6).all(), name
    no_positive = maps.flatten(2).clamp(min=0).sum(-1) == 0
    assert (s["relevance-mass-acc"][no_positive] == 0).all(), "documented: a map with no positive relevance gets 0"
    full = masks.flatten(1).all(1)
    assert (s["relevance-rank-acc"][full] == 1).all() and (s["pointing-game"][full] == 1).all()


@SETTINGS
@given(maps_and_masks(allow_empty_mask=True))
def test_localisation_refuses_nan_and_empty_masks(mm):
    maps, masks = mm
    masks = masks.clone()
    masks[0] = False
    with pytest.raises(ValueError, match="non-empty mask"):
        localisation_scores(maps, masks)
    masks[:, 0, 0] = True
    with pytest.raises(ValueError, match="NaN"):
        localisation_scores(with_nan(maps), masks)
    with pytest.raises(ValueError, match="do not match"):
        localisation_scores(maps, masks[:, :, :0])


def test_constant_map_scores_chance_wherever_the_mask_is():
    maps = torch.ones(2, 1, 4, 4)
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[0, :1, :] = True  # the first 4 pixels in raster order
    masks[1, 3:, :] = True  # the last 4
    s = localisation_scores(maps, masks)
    assert s["relevance-rank-acc"][:, 0].tolist() == pytest.approx([0.25, 0.25])
    assert s["pointing-game"][:, 0].tolist() == pytest.approx([0.25, 0.25])


@SETTINGS
@given(maps_and_masks())
def test_artifact_shares_are_shares_or_refuse_nan(mm):
    maps, masks = mm
    shares = artifact_shares(maps, masks)
    assert shares.shape == (maps.shape[1],) and torch.isfinite(shares).all()
    assert (shares >= 0).all() and (shares <= 1 + 1e-6).all()
    with pytest.raises(ValueError, match="NaN"):
        artifact_shares(with_nan(maps), masks)
    with pytest.raises(ValueError, match=r"\[N, V, H, W\]"):
        artifact_shares(maps[:, 0], masks)


# ----------------------------------------------------------------------------- cluster detection


@st.composite
def clusterings(draw):
    n = draw(st.integers(2, 40))
    labels = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)))
    truth = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    assume(truth.any() and not truth.all())
    return labels, truth


@SETTINGS
@given(clusterings())
def test_detection_scores_are_bounded_and_label_invariant(lt):
    labels, truth = lt
    s = detection_scores(labels, truth)
    assert all(math.isfinite(v) for v in s.values()), s
    assert 0 <= s["cluster-acc"] <= 100
    assert 0 <= s["cluster-f1"] <= 1
    assert -1 <= s["cluster-ari"] <= 1 and 0 <= s["cluster-nmi"] <= 1 + 1e-9
    renamed = detection_scores(labels * 7 + 3, truth)  # cluster ids are names, not values
    assert {k: renamed[k] for k in renamed} == pytest.approx({k: s[k] for k in renamed})
    perfect = detection_scores(truth.astype(int), truth)
    assert perfect["cluster-acc"] == 100 and perfect["cluster-f1"] == 1 and perfect["cluster-ari"] == pytest.approx(1)


@pytest.mark.parametrize("labels, truth", [
    ([], []),  # empty set
    ([0], [True]),  # a single sample
    ([0, 1, 1], [False, False, False]),  # a class with no poisoned sample (clean scenario)
    ([0, 1, 1], [True, True, True]),  # only poisoned samples
])
def test_detection_is_undefined_without_both_classes(labels, truth):
    with pytest.raises(ValueError, match="undefined"):
        detection_scores(np.array(labels, dtype=int), np.array(truth, dtype=bool))


def test_detection_refuses_nan_labels_and_length_mismatch():
    with pytest.raises(ValueError, match="NaN"):
        detection_scores(np.array([0.0, np.nan, 1.0]), np.array([True, False, False]))
    with pytest.raises(ValueError, match="labels"):
        detection_scores(np.zeros(3, dtype=int), np.zeros(4, dtype=bool))


# ----------------------------------------------------------------------------- class ranks and separability


@SETTINGS
@given(st.integers(1, 5), st.integers(1, 6), st.data())
def test_class_rank_is_one_based_and_ties_count_against(n, k, data):
    logits = torch.tensor(data.draw(st.lists(VALUES, min_size=n * k, max_size=n * k))).view(n, k)
    cls = data.draw(st.integers(0, k - 1))
    ranks = class_rank(logits, cls)
    assert ((ranks >= 1) & (ranks <= k)).all()
    assert (class_rank(torch.zeros(n, k), cls) == k).all(), "all tied: the watched class ranks last"
    with pytest.raises(ValueError, match="NaN"):
        class_rank(with_nan(logits), cls)


@SETTINGS
@given(st.integers(2, 12), st.integers(1, 4), st.sampled_from(["random", "constant"]), st.integers(0, 3))
def test_fisher_separability_is_finite_and_non_negative(n, d, kind, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) if kind == "random" else np.ones((n, d))
    labels = rng.integers(0, 2, n)
    value = fisher_separability(x, labels)
    assert math.isfinite(value) and value >= -1e-9
    assert fisher_separability(x, np.zeros(n, dtype=int)) == pytest.approx(0.0, abs=1e-9), "one cluster: nothing separated"


def test_separability_tau_few_samples_and_nan():
    # documented: NaN below 4 samples; the class-ranking metric must then report the class as unranked
    assert math.isnan(separability_tau(np.ones((3, 5))))
    with pytest.raises(ValueError, match="NaN"):
        separability_tau(np.full((8, 5), np.nan))
    with pytest.raises(ValueError, match="NaN or inf"):
        separability_tau(np.full((8, 5), np.inf))
    # identical maps (an explainer that returns zeros): nothing is separable. Without the guard, the kNN
    # graph's arbitrary tie-breaking made k-means "separate" them (tau ~ 6), outranking real structure.
    for value in (0.0, 1.0):
        assert separability_tau(np.full((12, 5), value), k_max=4) == 0.0
    rng = np.random.default_rng(0)
    two_blobs = np.concatenate([rng.normal(0, 0.1, (10, 5)), rng.normal(5, 0.1, (10, 5))])
    assert separability_tau(two_blobs, k_max=4) > 0
