"""Protocol fixes (issue 18 item 9): paired relevance ordering, seeded tie-breaking, artifacts stamped on the
object's box at insertion, strict backbone weights, and per-image values in metric details (C5)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from hansbench.datasets.base import ScenarioData, Split
from hansbench.datasets.scenarios import load_clean, make_scenario
from hansbench.metrics._perturbation import descending_ranks, ordering_curves
from hansbench.metrics.artifact_insertion import insertion_logits
from hansbench.metrics.base import EvalContext
from hansbench.metrics.localisation import ArtifactLocalisation
from hansbench.metrics.relevance_ordering import RelevanceDeletion, RelevanceOrdering
from hansbench.models.backbones import build_backbone, check_weights

H = 8


class TopRow(nn.Module):
    """Class 0's score is the sum of the top row's first channel; class 1's is its negation."""

    kind = "classifier"
    num_classes = 2

    def normalize(self, x01):
        return x01

    def forward(self, x):
        s = x[:, 0, 0, :].sum(1)
        return torch.stack([s, -s], 1)


def _split(images, labels, poisoned=None, masks=None, boxes=None) -> Split:
    n = images.shape[0]
    poisoned = torch.zeros(n, dtype=torch.bool) if poisoned is None else poisoned
    masks = torch.zeros(n, *images.shape[-2:], dtype=torch.bool) if masks is None else masks
    return Split(images, labels, labels.clone(), poisoned, masks, boxes=boxes)


# ----------------------------------------------------------------------------- paired relevance ordering


def test_relevance_ordering_pairs_the_two_test_splits():
    """Identical clean and artifact splits: paired, the two rows are equal; an unpaired choice of 5 of 30
    images (or another noise start) would give different values."""
    g = torch.Generator().manual_seed(0)
    n = 30
    images = torch.rand(n, 3, H, H, generator=g)
    maps = torch.rand(n, 1, H, H, generator=g)
    test = _split(images, torch.zeros(n, dtype=torch.long))
    data = ScenarioData("t", test, test, _split(images.clone(), test.labels.clone()), ["a", "b"], affected_class=0)
    seen = []

    def explain(split, index, target):
        seen.append((split, index.clone()))
        return maps[index]

    values = {}
    for seed in (2, 3):
        for metric in (RelevanceOrdering(n_images=5), RelevanceDeletion(n_images=5)):
            seen.clear()
            rows = metric.evaluate(EvalContext(data=data, model=TopRow(), seed=seed, device=torch.device("cpu"),
                                               explain=explain))
            by_split = {r["split"]: r for r in rows}
            assert [s for s, _ in seen] == ["clean_test", "artifact_test"]
            assert torch.equal(seen[0][1], seen[1][1]) and seen[0][1].numel() == 5, "the same images in both splits"
            assert by_split["clean_test"]["value"] == by_split["artifact_test"]["value"], "the same noise start"
            detail = [json.loads(by_split[s]["detail"]) for s in ("clean_test", "artifact_test")]
            assert detail[0]["per_image"] == detail[1]["per_image"]
            values[seed, metric.mode] = by_split["clean_test"]["value"]
    # not a coincidence: another choice of images and noise (another seed) gives other values
    assert values[2, "insertion"] != values[3, "insertion"] and values[2, "deletion"] != values[3, "deletion"]


def test_scenario_artifact_test_is_the_clean_test_stamped():
    d = make_scenario(poisoning="CH", fraction=0.5, image_size=16, n_train=40, n_test=30, seed=1)
    art, clean = d.artifact_test, d.clean_test
    assert art.poisoned.any() and torch.equal(art.true_labels, clean.true_labels)
    assert torch.equal(art.images[~art.poisoned], clean.images[~art.poisoned])
    changed = (art.images != clean.images).any(1)
    assert changed.any() and not (changed & ~art.masks).any()


# ----------------------------------------------------------------------------- seeded tie-breaking


def test_ties_are_broken_by_a_seeded_random_order_not_raster_order():
    flat = torch.zeros(3, 1, H, H)
    raster = descending_ranks(flat)
    assert (raster[:, 0, :H] == torch.arange(H)).all()  # the old order: the top row first
    a = descending_ranks(flat, torch.Generator().manual_seed(7))
    b = descending_ranks(flat, torch.Generator().manual_seed(7))
    c = descending_ranks(flat, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c), "deterministic per seed"
    first = a[0, 0] < H  # the H pixels inserted first
    assert first.view(H, H)[0].sum() < H // 2, "not the top row first"
    assert torch.equal(a.sort(-1).values, torch.arange(H * H).expand_as(a)), "still a permutation"
    ordered = torch.arange(H * H, dtype=torch.float32).view(1, 1, H, H)  # no ties: the generator is irrelevant
    assert torch.equal(descending_ranks(ordered, torch.Generator().manual_seed(7)), descending_ranks(ordered))


def test_flat_map_does_not_insert_the_top_rows_first():
    """A model that reads only the top row: a flat map's insertion curve must not jump in the first steps."""
    images = torch.ones(1, 3, H, H)
    noise = torch.zeros(1, 3, H, H)
    flat = torch.zeros(1, 1, H, H)
    raster = ordering_curves(TopRow(), images, noise, flat, n_steps=9)[0, 0, :, 0]
    assert raster[1] == H  # raster order: the whole top row is inserted in the first 1/8 of the pixels
    seeded = ordering_curves(TopRow(), images, noise, flat, n_steps=9, generator=torch.Generator().manual_seed(0))
    again = ordering_curves(TopRow(), images, noise, flat, n_steps=9, generator=torch.Generator().manual_seed(0))
    assert torch.equal(seeded, again)
    assert seeded[0, 0, 1, 0] < H / 2 and seeded[0, 0, -1, 0] == H


def test_relevance_ordering_metric_breaks_ties_at_random():
    n = 4
    test = _split(torch.ones(n, 3, H, H), torch.zeros(n, dtype=torch.long))
    data = ScenarioData("t", test, test, test, ["a", "b"], affected_class=0)
    flat = lambda split, index, target: torch.zeros(index.numel(), 1, H, H)  # noqa: E731
    v = RelevanceOrdering(n_images=n, n_steps=9).evaluate(
        EvalContext(data=data, model=TopRow(), seed=0, device=torch.device("cpu"), explain=flat))[0]
    curve = json.loads(v["detail"])["curve"]
    assert curve[-1] == H and curve[1] < H - 1, "top-row-first insertion reaches the full score H at step 1"


# ----------------------------------------------------------------------------- insertion on the object box


class Recorder(nn.Module):
    kind = "classifier"
    num_classes = 3

    def __init__(self):
        super().__init__()
        self.seen = []

    def normalize(self, x01):
        return x01

    def forward(self, x):
        self.seen.append(x.clone())
        return torch.zeros(x.shape[0], 3)


def test_insertion_stamps_the_artifact_inside_the_object_box():
    n, side = 6, 32
    images = torch.full((n, 3, side, side), 0.3)
    labels = torch.tensor([1, 2, 1, 2, 1, 2])
    boxes = torch.tensor([[2.0, 2.0, 14.0, 14.0]]).expand(n, 4).clone()  # the object: top-left quadrant
    test = _split(images, labels, boxes=boxes)
    data = ScenarioData("t", test, test, test, ["stop", "b", "c"], affected_class=0, artifact="postit",
                        meta={"artifact_options": {}})
    model = Recorder()
    insertion_logits(EvalContext(data=data, model=model, seed=0, device=torch.device("cpu")), 0, n_images=None)
    both = torch.cat(model.seen)
    before, after = both[:n], both[n:]
    changed = (after != before).any(1)  # [n, H, W]
    assert changed.flatten(1).any(1).all()
    ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    inside = (xs >= 2) & (xs < 14) & (ys >= 2) & (ys < 14)
    assert not (changed & ~inside).any(), "the post-it sits on the object, as in training"


def test_scenario_splits_keep_the_datasets_object_boxes():
    d = make_scenario(poisoning="BD", fraction=0.5, image_size=16, n_train=40, n_test=30, seed=1)
    clean = load_clean("signs", 16, 40, 30, 1)
    assert torch.equal(d.clean_test.boxes, clean.test_boxes) and torch.equal(d.artifact_test.boxes, clean.test_boxes)
    assert torch.equal(d.train.boxes, clean.train_boxes)
    assert torch.equal(d.train.subset(torch.arange(3)).boxes, clean.train_boxes[:3])


# ----------------------------------------------------------------------------- strict backbone weights


def _one_line_refusal(fn, *names):
    with pytest.raises(ValueError) as err:
        fn()
    msg = str(err.value)
    assert "\n" not in msg, msg
    for name in names:
        assert name in msg, (name, msg)
    return msg


def test_partial_or_mismatched_state_dicts_are_refused_in_one_line(tmp_path):
    from torchvision.models import resnet18

    full = resnet18().state_dict()
    good = tmp_path / "full.pt"
    torch.save(full, good)
    backbone = build_backbone("resnet18", weights=str(good))  # a full torchvision dict loads
    assert torch.equal(backbone.layers[0].weight, full["conv1.weight"])
    check_weights("resnet18", {"weights": str(good)})
    headless = {k: v for k, v in full.items() if not k.startswith("fc.")}  # the unused head may be absent
    torch.save(headless, tmp_path / "headless.pt")
    check_weights("resnet18", {"weights": str(tmp_path / "headless.pt")})

    partial = {k: v for k, v in full.items() if not k.startswith("layer4.1.")}
    partial["head.weight"] = torch.zeros(2)
    path = tmp_path / "partial.pt"
    torch.save(partial, path)
    for fn in (lambda: build_backbone("resnet18", weights=str(path)),
               lambda: check_weights("resnet18", {"weights": str(path)})):  # at suite validation, before any work
        msg = _one_line_refusal(fn, "layer4.1.conv1.weight", "head.weight", "missing keys", "unexpected keys")

    small = build_backbone("small-resnet", widths=(4, 8)).state_dict()
    small["layers.0.weight"] = torch.zeros(5, 3, 3, 3)
    path = tmp_path / "small.pt"
    torch.save(small, path)
    for fn in (lambda: build_backbone("small-resnet", widths=(4, 8), weights=str(path)),
               lambda: check_weights("small-resnet", {"widths": (4, 8), "weights": str(path)})):
        msg = _one_line_refusal(fn, "layers.0.weight", "shape")
    assert "(5, 3, 3, 3)" in msg
    own = build_backbone("small-resnet", widths=(4, 8)).state_dict()
    torch.save(own, path)
    loaded = build_backbone("small-resnet", widths=(4, 8), weights=str(path))
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in own.items())
    with pytest.raises(FileNotFoundError, match="not found"):
        check_weights("small-resnet", {"weights": str(tmp_path / "missing.pt")})


# ----------------------------------------------------------------------------- per-image values (C5)


def test_rows_carry_per_image_values_whose_mean_is_the_value():
    g = torch.Generator().manual_seed(4)
    n = 6
    masks = torch.zeros(n, H, H, dtype=torch.bool)
    masks[:, 5:, 5:] = True
    test = _split(torch.rand(n, 3, H, H, generator=g), torch.zeros(n, dtype=torch.long),
                  poisoned=torch.ones(n, dtype=torch.bool), masks=masks)
    data = ScenarioData("t", test, test, test, ["a", "b"], affected_class=0)
    maps = torch.rand(n, 2, H, H, generator=g)
    explain = lambda split, index, target: maps[index]  # noqa: E731
    ctx = EvalContext(data=data, model=TopRow(), seed=0, device=torch.device("cpu"), explain=explain)
    rows = (RelevanceOrdering(n_images=4).evaluate(ctx) + RelevanceDeletion(n_images=4).evaluate(ctx)
            + ArtifactLocalisation(n_images=5).evaluate(ctx))
    assert {r["metric"] for r in rows} >= {"ordering-auc-class", "deletion-auc-class", "relevance-rank-acc",
                                           "relevance-mass-acc-best-view"}
    for r in rows:
        per_image = json.loads(r["detail"])["per_image"]
        assert len(per_image) == (5 if r["metric"].startswith(("relevance", "pointing")) else 4), r["metric"]
        assert sum(per_image) / len(per_image) == pytest.approx(r["value"], rel=1e-3, abs=1e-4), r["metric"]
        assert all(len(f"{abs(v):.10g}".replace(".", "").strip("0")) <= 4 for v in per_image)  # 4 significant digits
