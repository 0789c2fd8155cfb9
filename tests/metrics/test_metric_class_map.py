"""class_map (PAPERS.md §2: sum_j w_h[c, j] * map_j) and the relevance-ordering class-curve options."""

from __future__ import annotations

import json

import pytest
import torch

from hansbench.datasets.base import ScenarioData, Split
from hansbench.metrics._perturbation import class_map, class_map_rule, view_prototypes
from hansbench.metrics.base import EvalContext
from hansbench.metrics.relevance_ordering import RelevanceDeletion, RelevanceOrdering


def _random_last_layer(model, seed=0):
    with torch.no_grad():
        model.last_layer.weight.uniform_(-1.0, 2.0, generator=torch.Generator().manual_seed(seed))


def test_class_map_is_the_last_layer_weighted_sum(tiny_protopnet):
    model = tiny_protopnet  # 3 classes x 3 prototypes
    _random_last_layer(model)
    g = torch.Generator().manual_seed(1)
    targets = torch.tensor([0, 2, 1, 2])
    maps = torch.randn(4, 3, 5, 5, generator=g)
    w = model.last_layer.weight.detach()
    ref = torch.stack([sum(w[t, p] * maps[i, j] for j, p in enumerate(model.prototypes_of(t).tolist()))
                       for i, t in enumerate(targets.tolist())])[:, None]
    out = class_map(maps, model, targets)
    assert out.shape == (4, 1, 5, 5)
    torch.testing.assert_close(out, ref)
    assert not torch.allclose(out, maps.sum(1, keepdim=True), atol=1e-3), "weights are not all 1: differs from a sum"
    assert class_map_rule(maps, model, targets) == "weighted"


def test_zero_weight_prototype_does_not_change_the_class_map(tiny_protopnet):
    model = tiny_protopnet
    _random_last_layer(model, seed=2)
    zero = int(model.prototypes_of(2)[1])
    with torch.no_grad():
        model.last_layer.weight[2, zero] = 0.0
    g = torch.Generator().manual_seed(3)
    targets = torch.tensor([2, 2, 0])
    maps = torch.randn(3, 3, 6, 6, generator=g)
    changed = maps.clone()
    changed[:, 1] = torch.randn(3, 6, 6, generator=g) * 10  # view 1 = prototype `zero` for class 2
    a, b = class_map(maps, model, targets), class_map(changed, model, targets)
    torch.testing.assert_close(a[:2], b[:2])  # class 2: the zero-weight prototype's map is irrelevant
    assert not torch.allclose(a[2], b[2])  # class 0: view 1 is a prototype with a non-zero weight


def test_pruned_prototypes_are_padding_views(tiny_protopnet):
    model = tiny_protopnet
    _random_last_layer(model, seed=4)
    pruned = int(model.prototypes_of(0)[0])
    model.prototype_mask[pruned] = 0
    left = model.prototypes_of(0).tolist()  # two prototypes remain; view 2 is zero padding
    targets = torch.tensor([0, 1])
    assert view_prototypes(model, targets, 3).tolist() == [left + [-1], model.prototypes_of(1).tolist()]
    maps = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(5))
    w = model.last_layer.weight.detach()
    torch.testing.assert_close(class_map(maps, model, targets)[0, 0], w[0, left[0]] * maps[0, 0] + w[0, left[1]] * maps[0, 1])


def test_non_prototype_views_are_summed(tiny_protopnet, tiny_classifier):
    maps = torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(6))
    targets = torch.tensor([0, 1])
    torch.testing.assert_close(class_map(maps, tiny_classifier, targets), maps.sum(1, keepdim=True))  # e.g. CRP concepts
    torch.testing.assert_close(class_map(maps, tiny_protopnet, targets), maps.sum(1, keepdim=True))  # 4 != 3 prototypes
    assert class_map_rule(maps, tiny_classifier, targets) == "sum"
    single = maps[:, :1]
    assert class_map(single, tiny_protopnet, targets) is single and class_map_rule(single, tiny_protopnet, targets) == "single"
    with pytest.raises(ValueError, match="targets"):
        class_map(maps, tiny_classifier, torch.tensor([0]))


def _ctx(model, n_views, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = 4
    images = torch.rand(n, 3, 16, 16, generator=g)
    labels = torch.tensor([0, 1, 0, 2])
    split = Split(images, labels, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool),
                  torch.zeros(n, 16, 16, dtype=torch.bool))
    data = ScenarioData("t", split, split, split, ["a", "b", "c"], affected_class=0, mean=(0.5,) * 3, std=(0.25,) * 3)
    maps = torch.randn(n, n_views, 16, 16, generator=g)
    return EvalContext(data=data, model=model, seed=seed, device=torch.device("cpu"),
                       explain=lambda split_name, index, target: maps[index])


@pytest.mark.parametrize("metric", [RelevanceOrdering, RelevanceDeletion])
@pytest.mark.parametrize("model_name", ["tiny_protopnet", "tiny_classifier"])
def test_class_curve_options_agree_on_single_view_maps(metric, model_name, request):
    model = request.getfixturevalue(model_name)
    if model_name == "tiny_protopnet":
        _random_last_layer(model, seed=7)
    ctx = _ctx(model, n_views=1)
    a = metric(n_images=4, n_steps=5, class_curve="class-map").evaluate(ctx)
    b = metric(n_images=4, n_steps=5, class_curve="per-prototype").evaluate(ctx)
    assert len(a) == len(b) == (4 if model_name == "tiny_protopnet" else 2)
    for ra, rb in zip(a, b):
        assert ra["metric"] == rb["metric"] and ra["value"] == pytest.approx(rb["value"], rel=1e-6)
        assert json.loads(rb["detail"])["class_curve"] == "class-map"  # nothing per prototype to average


def test_per_prototype_class_curve_needs_prototype_views(tiny_classifier):
    rows = RelevanceOrdering(n_images=4, n_steps=5).evaluate(_ctx(tiny_classifier, n_views=3))  # concept views
    detail = json.loads(rows[0]["detail"])
    assert detail["class_curve"] == "class-map" and detail["class_map"] == "sum" and detail["explained"] == "label"
    with pytest.raises(ValueError, match="class_curve"):
        RelevanceOrdering(class_curve="mean")


def test_pruned_prototypes_are_left_out_of_the_per_prototype_curves(tiny_protopnet):
    model = tiny_protopnet
    model.prototype_mask[int(model.prototypes_of(0)[0])] = 0  # class 0 keeps 2 of 3; its view 2 is padding
    ctx = _ctx(model, n_views=3)  # targets [0, 1, 0, 2]
    rows = RelevanceOrdering(n_images=4, n_steps=5).evaluate(ctx)
    curves = {r["metric"]: json.loads(r["detail"])["curves"] for r in rows}
    assert curves == {"ordering-auc-class": 2 + 3 + 2 + 3, "ordering-auc-prototype": 2 + 3 + 2 + 3}
