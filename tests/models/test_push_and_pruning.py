"""Push (prototype projection), ProtoPNet's pruning rule, and masking prototypes out."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from hansbench.datasets.base import Split
from hansbench.models.backbones import FeatureBackbone
from hansbench.models.evaluation import predict
from hansbench.models.protopnet import ProtoPNet
from hansbench.models.protopnet_training import push_prototypes, retrain_last_layer
from hansbench.models.pruning import nearest_images, protopnet_prune_candidates, prune_prototypes

CPU = torch.device("cpu")


def random_split(n: int, k: int = 3, size: int = 16, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    return Split(torch.rand(n, 3, size, size, generator=g), y, y.clone(), torch.zeros(n, dtype=torch.bool),
                 torch.zeros(n, size, size, dtype=torch.bool))


def pixel_protopnet(num_classes: int = 2, per_class: int = 2) -> ProtoPNet:
    """A ProtoPNet whose latent patches are the raw pixels (identity backbone and add-on): hand-made cases."""
    model = ProtoPNet(FeatureBackbone(nn.Sequential(nn.Identity()), 3), num_classes, (0.0, 0.0, 0.0),
                      (1.0, 1.0, 1.0), prototypes_per_class=per_class, prototype_dim=3)
    model.add_on = nn.Identity()
    return model.eval()


def uniform_images(colours: list[list[float]], size: int = 2) -> torch.Tensor:
    return torch.tensor(colours)[:, :, None, None].expand(-1, -1, size, size).contiguous()


# --------------------------------------------------------------------------- push
@pytest.mark.parametrize("batch_size", [7, 1000])
def test_push_projects_onto_own_class_patches(tiny_protopnet, batch_size):
    data = random_split(40)
    model = tiny_protopnet
    push_prototypes(model, data, device=CPU, batch_size=batch_size)
    with torch.no_grad():
        z = model.latent(model.normalize(data.images))  # [N, D, h, w]
        d = model.prototype_layer.distances(z)  # [N, P, h, w]
    proto_class = model.prototype_class_identity.argmax(1)
    for j in range(model.num_prototypes):
        i, (r, c) = model.push_image_index[j].item(), model.push_location[j].tolist()
        assert data.labels[i] == proto_class[j]
        assert torch.allclose(model.prototypes[j, :, 0, 0], z[i, :, r, c], atol=1e-5)
        assert d[i, j].min() < 1e-4  # the prototype sits on that patch
        own = data.labels == proto_class[j]
        assert d[own, j].min() >= d[i, j, r, c] - 1e-5  # no own-class patch is nearer


def test_push_result_does_not_depend_on_batching(tiny_protopnet):
    data = random_split(30)
    a, b = copy.deepcopy(tiny_protopnet), copy.deepcopy(tiny_protopnet)
    push_prototypes(a, data, device=CPU, batch_size=4)
    push_prototypes(b, data, device=CPU, batch_size=64)
    assert torch.equal(a.push_image_index, b.push_image_index)
    assert torch.equal(a.push_location, b.push_location)
    assert torch.allclose(a.prototypes, b.prototypes, atol=1e-6)


def test_push_picks_the_nearest_patch_by_hand_and_skips_pruned():
    model = pixel_protopnet()
    with torch.no_grad():
        model.prototypes.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]])[:, :, None, None])
    images = uniform_images([[0.2, 0.2, 0.2], [0.9, 0.1, 0.0], [0.1, 0.9, 0.1], [0.0, 0.0, 0.8]])
    images[1, :, 1, 0] = torch.tensor([0.95, 0.0, 0.0])  # the best red patch is at (1, 0) of image 1
    labels = torch.tensor([0, 0, 1, 1])
    data = Split(images, labels, labels.clone(), torch.zeros(4, dtype=torch.bool), torch.zeros(4, 2, 2, dtype=torch.bool))
    model.prototype_mask[1] = 0
    before = model.prototypes[1].clone()
    push_prototypes(model, data, device=CPU)
    assert model.push_image_index.tolist() == [1, -1, 3, 2]  # prototype 2 (class 1, blue) -> image 3
    assert model.push_location[0].tolist() == [1, 0]
    assert torch.allclose(model.prototypes[0, :, 0, 0], torch.tensor([0.95, 0.0, 0.0]))
    assert torch.equal(model.prototypes[1], before)


def test_push_warns_when_a_class_has_no_images(tiny_protopnet):
    data = random_split(20, k=2)  # tiny_protopnet has 3 classes
    with pytest.warns(UserWarning, match=r"class\(es\) \[2\]"):
        push_prototypes(tiny_protopnet, data, device=CPU)
    assert (tiny_protopnet.push_image_index[6:] == -1).all() and (tiny_protopnet.push_image_index[:6] >= 0).all()


# --------------------------------------------------------------------------- ProtoPNet's pruning rule
def _line_case():
    """Images are uniform colours (t, 0, 0); prototype distances are (t - p)^2, so neighbours are known."""
    model = pixel_protopnet(num_classes=2, per_class=2)
    # prototypes: 0, 1 of class 0; 2, 3 of class 1
    p = torch.tensor([0.10, 0.60, 0.61, 0.95])
    with torch.no_grad():
        model.prototypes.copy_(torch.stack([p, torch.zeros(4), torch.zeros(4)], 1)[:, :, None, None])
    t = [0.00, 0.05, 0.10, 0.15, 0.20, 0.25, 0.55, 0.58, 0.62, 0.65, 0.80, 0.90, 0.93, 0.96, 1.00]
    y = [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1]
    images = uniform_images([[v, 0.0, 0.0] for v in t])
    labels = torch.tensor(y)
    n = len(t)
    return model, Split(images, labels, labels.clone(), torch.zeros(n, dtype=torch.bool),
                        torch.zeros(n, 2, 2, dtype=torch.bool))


def test_nearest_images_match_brute_force():
    model, data = _line_case()
    dist, idx = nearest_images(model, data.images, k=6, device=CPU, batch_size=4)
    t = data.images[:, 0, 0, 0]
    brute = (t[None, :] - model.prototypes[:, 0, 0, 0][:, None]) ** 2  # [P, N]
    ref = brute.topk(6, dim=1, largest=False)
    assert torch.allclose(dist, ref.values, atol=1e-6)
    assert torch.equal(torch.sort(idx, 1).values, torch.sort(ref.indices, 1).values)


def test_protopnet_prune_candidates_by_hand():
    model, data = _line_case()
    # 6 nearest images of each prototype (own-class count):
    # p0=0.10 (class 0): t 0.10 0.05 0.15 0.00 0.20 0.25 -> 6 own -> keep
    # p1=0.60 (class 0): 0.58 0.62 0.55 0.65 0.80 0.90 -> labels 1 1 0 0 1 1 -> 2 own -> prune
    # p2=0.61 (class 1): 0.62 0.58 0.65 0.55 0.80 0.90 -> labels 1 1 0 0 1 1 -> 4 own -> keep
    # p3=0.95 (class 1): 0.96 0.93 0.90 1.00 0.80 0.65 -> 5 own -> keep
    assert protopnet_prune_candidates(model, data, k=6, threshold=3, device=CPU).tolist() == [1]
    assert protopnet_prune_candidates(model, data, k=6, threshold=5, device=CPU).tolist() == [1, 2]
    assert protopnet_prune_candidates(model, data, k=6, threshold=2, device=CPU).tolist() == []
    model.prototype_mask[1] = 0  # already pruned: not a candidate again
    assert protopnet_prune_candidates(model, data, k=6, threshold=3, device=CPU).tolist() == []
    with pytest.raises(ValueError, match="threshold"):
        protopnet_prune_candidates(model, data, k=6, threshold=7, device=CPU)


# --------------------------------------------------------------------------- masking prototypes out
def test_prune_prototypes_removes_their_contribution(tiny_protopnet, tiny_images):
    x01 = tiny_images * 0.25 + 0.5
    original = copy.deepcopy(tiny_protopnet)
    pruned = prune_prototypes(tiny_protopnet, [1, 4])
    assert torch.equal(tiny_protopnet.prototype_mask, original.prototype_mask)  # the original is untouched
    assert torch.equal(tiny_protopnet.last_layer.weight, original.last_layer.weight)
    assert pruned.prototype_mask.tolist() == [1, 0, 1, 1, 0, 1, 1, 1, 1]
    assert (pruned.last_layer.weight[:, [1, 4]] == 0).all()
    with torch.no_grad():
        scores = original.scores(original.normalize(x01))
        w = original.last_layer.weight.clone()
        w[:, [1, 4]] = 0
        expected = scores @ w.t()
        assert (pruned.scores(pruned.normalize(x01))[:, [1, 4]] == 0).all()
    logits = predict(pruned, x01, device=CPU)
    assert torch.allclose(logits, expected, atol=1e-5)
    assert not torch.allclose(logits, predict(original, x01, device=CPU), atol=1e-3)
    with torch.no_grad():  # whatever the pruned prototypes become, the logits do not move
        pruned.prototypes[[1, 4]] += 5.0
    assert torch.allclose(predict(pruned, x01, device=CPU), logits, atol=1e-5)
    with pytest.raises(ValueError, match="prototype indices"):
        prune_prototypes(tiny_protopnet, [9])


def test_retraining_after_pruning_keeps_pruned_columns_zero(tiny_protopnet):
    data = random_split(30)
    pruned = prune_prototypes(tiny_protopnet, [0, 5])
    new = retrain_last_layer(pruned, data, epochs=3, lr=1e-2, seed=0, device=CPU, progress=False)
    assert (new.last_layer.weight[:, [0, 5]] == 0).all()
    assert not torch.equal(new.last_layer.weight, pruned.last_layer.weight)
    assert torch.equal(new.prototype_mask, pruned.prototype_mask)
