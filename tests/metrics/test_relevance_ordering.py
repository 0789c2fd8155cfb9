"""relevance-ordering / relevance-deletion: known optimum, per-sample reference, Quantus agreement."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from hansbench.datasets.base import ScenarioData, Split
from hansbench.metrics._perturbation import NOISE_SALT, ordering_curves, step_counts, trapezoid_auc
from hansbench.metrics.base import EvalContext
from hansbench.metrics.relevance_ordering import RelevanceDeletion, RelevanceOrdering
from hansbench.models.backbones import build_backbone
from hansbench.models.classifier import Classifier
from hansbench.models.protopnet import ProtoPNet

H = W = 20  # 400 pixels: a 5 % step moves exactly 20 pixels


class PixelSum(nn.Module):
    """Class 0's logit is a positive-weighted sum of a few pixels (all channels); class 1's is -mean."""

    kind = "classifier"
    num_classes = 2

    def __init__(self, pixels: list[tuple[int, int]], weights: list[float]):
        super().__init__()
        w = torch.zeros(2, 3, H, W)
        for (r, c), v in zip(pixels, weights):
            w[0, :, r, c] = v
        w[1] = -1.0 / (3 * H * W)
        self.register_buffer("w", w)

    def normalize(self, x01):
        return x01  # identity: the test computes scores in [0, 1] space by hand

    def forward(self, x):
        return torch.einsum("bchw,kchw->bk", x, self.w)


def _split(images, labels, true_labels=None, poisoned=None) -> Split:
    n = images.shape[0]
    true_labels = labels if true_labels is None else true_labels
    poisoned = torch.zeros(n, dtype=torch.bool) if poisoned is None else poisoned
    return Split(images, labels, true_labels, poisoned, torch.zeros(n, *images.shape[-2:], dtype=torch.bool))


def _ctx(model, test: Split, explain, seed=0) -> EvalContext:
    data = ScenarioData("t", test, test, test, [str(i) for i in range(model.num_classes)], affected_class=0,
                        mean=(0.5,) * 3, std=(0.25,) * 3)
    return EvalContext(data=data, model=model, seed=seed, device=torch.device("cpu"), explain=explain)


def _values(rows, split="clean_test"):
    return {r["metric"]: r["value"] for r in rows if r["split"] == split}


def test_ideal_map_reaches_hand_computed_optimum_random_map_does_not():
    g = torch.Generator().manual_seed(0)
    pixels = [(2, 3), (7, 11), (15, 4), (19, 19), (0, 10)]
    model = PixelSum(pixels, [1.0, 2.0, 0.5, 3.0, 1.5])
    n = 6
    images = torch.zeros(n, 3, H, W)
    for r, c in pixels:
        images[:, :, r, c] = 1.0
    test = _split(images, torch.zeros(n, dtype=torch.long))
    ideal = torch.zeros(n, 1, H, W)
    for r, c in pixels:
        ideal[:, 0, r, c] = 1.0
    random_map = torch.rand(n, 1, H, W, generator=g)
    for maps, is_ideal in ((ideal, True), (random_map, False)):
        explain = lambda split, index, target, maps=maps: maps[index]  # noqa: E731
        ctx = _ctx(model, test, explain)
        ins = _values(RelevanceOrdering(n_images=n).evaluate(ctx))["ordering-auc-class"]
        dele = _values(RelevanceDeletion(n_images=n).evaluate(ctx))["deletion-auc-class"]
        # By hand: the same noise image the metric draws for both (paired) test splits.
        noise = torch.rand(n, 3, H, W, generator=ctx.generator(NOISE_SALT["artifact_test"]))
        f_x = model(images)[:, 0].mean().item()
        f_b = model(noise)[:, 0].mean().item()
        best_ins = 0.05 * (f_b + f_x) / 2 + 0.95 * f_x  # every artifact pixel moves in the first step
        best_del = 0.05 * (f_x + f_b) / 2 + 0.95 * f_b
        if is_ideal:
            assert ins == pytest.approx(best_ins, rel=1e-5)
            assert dele == pytest.approx(best_del, rel=1e-5)
        else:
            assert ins < best_ins - 0.5 and dele > best_del + 0.5


def _reference_curves(model, images, baselines, maps, n_steps, mode):
    """Loop over images and steps, one forward each: the definition, not the fast path."""
    n, c, h, w = images.shape
    ks = step_counts(h * w, n_steps)
    out = torch.zeros(n, n_steps, model(images[:1]).shape[1])
    for i in range(n):
        order = np.argsort(-maps[i].flatten().numpy(), kind="stable")
        for s in range(n_steps):
            x = (baselines[i] if mode == "insertion" else images[i]).clone().view(c, -1)
            src = (images[i] if mode == "insertion" else baselines[i]).view(c, -1)
            sel = torch.as_tensor(order[: int(ks[s])])
            x[:, sel] = src[:, sel]
            with torch.no_grad():
                out[i, s] = model(x.view(1, c, h, w))[0]
    return out


@pytest.mark.parametrize("mode", ["insertion", "deletion"])
def test_batched_curves_match_per_sample_reference(mode):
    torch.manual_seed(0)
    model = Classifier(build_backbone("small-resnet", widths=(4, 8)), 3, (0.5,) * 3, (0.25,) * 3).eval()
    g = torch.Generator().manual_seed(3)
    images, baselines = torch.randn(3, 3, 12, 12, generator=g), torch.randn(3, 3, 12, 12, generator=g)
    maps = torch.randn(3, 1, 12, 12, generator=g)
    with torch.no_grad():
        fast = ordering_curves(model, images, baselines, maps, n_steps=7, mode=mode, batch_size=10)  # ragged chunks
    ref = _reference_curves(model, images, baselines, maps[:, 0], 7, mode)
    torch.testing.assert_close(fast[:, 0], ref, rtol=1e-4, atol=1e-5)


def test_protopnet_multiview_rows_match_reference():
    torch.manual_seed(0)
    model = ProtoPNet(build_backbone("small-resnet", widths=(4, 8)), 2, (0.5,) * 3, (0.25,) * 3,
                      prototypes_per_class=3, prototype_dim=4).eval()
    g = torch.Generator().manual_seed(5)
    n = 4
    test = _split(torch.rand(n, 3, 12, 12, generator=g), torch.tensor([0, 0, 1, 1]),
                  true_labels=torch.zeros(n, dtype=torch.long))  # all show class 0; two relabelled (backdoor)
    maps = torch.randn(n, 3, 12, 12, generator=g)
    with torch.no_grad():  # unequal last-layer weights, so the weighted class map differs from the plain sum
        model.last_layer.weight.uniform_(-1.0, 2.0, generator=torch.Generator().manual_seed(6))
    ctx = _ctx(model, test, lambda split, index, target: maps[index])
    rows = RelevanceOrdering(n_images=n, n_steps=6, batch_size=7, class_curve="class-map").evaluate(ctx)
    rows_pp = RelevanceOrdering(n_images=n, n_steps=6, batch_size=7).evaluate(ctx)  # default: per-prototype
    v, v_pp = _values(rows), _values(rows_pp)
    noise = torch.rand(n, 3, 12, 12, generator=ctx.generator(NOISE_SALT["artifact_test"]))
    x, b = model.normalize(test.images), model.normalize(noise)
    fwd = lambda z: torch.cat([model(z), model.scores(z)], 1)  # noqa: E731
    w = torch.stack([model.last_layer.weight[t, model.prototypes_of(t)] for t in test.labels.tolist()]).detach()
    class_ref = _reference_curves(fwd, x, b, (maps * w[:, :, None, None]).sum(1), 6, "insertion")
    cls = trapezoid_auc(class_ref[torch.arange(n), :, test.labels]).mean()
    protos, per_proto_cls = [], []
    for i, t in enumerate(test.labels.tolist()):
        for v_, p in enumerate(model.prototypes_of(t).tolist()):
            ref = _reference_curves(fwd, x[i:i + 1], b[i:i + 1], maps[i:i + 1, v_], 6, "insertion")[0]
            protos.append(trapezoid_auc(ref[:, 2 + p]))
            per_proto_cls.append(trapezoid_auc(ref[:, t]))  # PRP Fig. 10: class score under each prototype's order
    assert v["ordering-auc-class"] == pytest.approx(cls.item(), rel=1e-4)
    assert v_pp["ordering-auc-class"] == pytest.approx(torch.stack(per_proto_cls).mean().item(), rel=1e-4)
    assert v_pp["ordering-auc-class"] != pytest.approx(v["ordering-auc-class"], rel=1e-3)
    for values in (v, v_pp):
        assert values["ordering-auc-prototype"] == pytest.approx(torch.stack(protos).mean().item(), rel=1e-4)
    assert len(json.loads(rows[0]["detail"])["curve"]) == 6
    assert json.loads(rows[0]["detail"])["class_curve"] == "class-map"
    assert json.loads(rows[0]["detail"])["class_map"] == "weighted"
    assert json.loads(rows_pp[0]["detail"])["class_curve"] == "per-prototype"
    with pytest.raises(ValueError, match="one view per prototype"):
        bad = torch.randn(n, 2, 12, 12)
        RelevanceOrdering(n_images=n).evaluate(_ctx(model, test, lambda split, index, target: bad[index]))


def test_seeded_choice_and_noise_are_reproducible():
    model = PixelSum([(1, 1)], [1.0])
    g = torch.Generator().manual_seed(1)
    test = _split(torch.rand(30, 3, H, W, generator=g), torch.zeros(30, dtype=torch.long))
    maps = torch.rand(30, 1, H, W, generator=g)
    seen = []
    explain = lambda split, index, target: (seen.append(index.clone()), maps[index])[1]  # noqa: E731
    a = RelevanceOrdering(n_images=5).evaluate(_ctx(model, test, explain, seed=3))
    b = RelevanceOrdering(n_images=5).evaluate(_ctx(model, test, explain, seed=3))
    c = RelevanceOrdering(n_images=5).evaluate(_ctx(model, test, explain, seed=4))
    assert a == b and a != c
    assert seen[0].numel() == 5 and torch.equal(seen[0], seen[2]) and not torch.equal(seen[0], seen[4])


@pytest.mark.parametrize("mode", ["insertion", "deletion"])
def test_agrees_with_quantus_pixel_flipping(mode):
    quantus = pytest.importorskip("quantus")
    if not hasattr(np, "trapz"):  # Quantus 0.6.0 calls np.trapz, removed in NumPy 2.4
        np.trapz = np.trapezoid
    torch.manual_seed(0)
    model = Classifier(build_backbone("small-resnet", widths=(4, 8)), 3, (0.5,) * 3, (0.25,) * 3).eval()
    g = torch.Generator().manual_seed(7)
    n = 4
    images, noise = torch.randn(n, 3, H, W, generator=g), torch.randn(n, 3, H, W, generator=g)
    maps = torch.randn(n, 1, H, W, generator=g)
    y = np.array([0, 1, 2, 0])
    with torch.no_grad():
        ours = ordering_curves(model, images, noise, maps, n_steps=21, mode=mode)[:, 0, :, :]
    ours = ours[torch.arange(n), :, torch.as_tensor(y)]  # [n, 21]
    start, source = (noise, images) if mode == "insertion" else (images, noise)
    src = source.numpy().reshape(n, -1)

    def replace_by_source(arr, indices, **kwargs):  # Quantus' perturbation, with a per-image source image
        out = arr.copy()
        out[np.arange(n)[:, None], indices] = src[np.arange(n)[:, None], indices]
        return out

    # Quantus flips C*H*W features but asserts features_in_step divides H*W: flip 20 features per step, so
    # every third of its 60 steps ends on a pixel boundary (20 pixels = one 5 % step of ours).
    metric = quantus.PixelFlipping(features_in_step=H * W // 20, normalise=False, perturb_func=replace_by_source,
                                   disable_warnings=True)
    theirs = np.asarray(metric(model=model, x_batch=start.numpy(), y_batch=y, a_batch=maps.numpy(),
                               softmax=False, channel_first=True, device="cpu", batch_size=n))  # [n, 60]
    assert theirs.shape == (n, 60)
    np.testing.assert_allclose(ours[:, 1:].numpy(), theirs[:, 2::3], rtol=1e-4, atol=1e-4)
