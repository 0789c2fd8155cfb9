"""Training recipes: config validation, determinism, stage discipline, eval-mode prediction."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hansbench.bench.suite.config import load_suite
from hansbench.datasets.base import Split
from hansbench.models.classifier import Classifier
from hansbench.models.evaluation import accuracy, predict
from hansbench.models.kinds import build_model, train_model
from hansbench.models.protopnet import ProtoPNet
from hansbench.models.protopnet_training import protopnet_losses, retrain_last_layer
from hansbench.models.recipes import ClassifierRecipe, ProtoPNetRecipe, recipe_from_config
from hansbench.models.trainers import augment_batch
from tests._seeds import mean, per_seed

# The quick suite's own recipes (never a copy that can drift from it). The margins below were measured with
# ProtoPNet batches of 64, so that one value is pinned where the tests train.
QUICK_RECIPES = load_suite("quick").models
MEASURED_WITH = {"classifier": {}, "protopnet": {"batch_size": 64}}

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
CPU = torch.device("cpu")
TINY = {"backbone_options": {"widths": (8, 16)}}
TINY_PROTO = {**TINY, "prototypes_per_class": 2, "prototype_dim": 8}


def blob_split(n: int, *, size: int = 16, k: int = 3, seed: int = 0) -> Split:
    """Class c = a square of colour c (red, green, blue) at a random place on a dim noisy background."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    x = torch.rand(n, 3, size, size, generator=g) * 0.3
    r = max(size // 4, 2)
    oy = torch.randint(0, size - r + 1, (n,), generator=g)
    ox = torch.randint(0, size - r + 1, (n,), generator=g)
    rows = torch.arange(size)[None, :, None]
    cols = torch.arange(size)[None, None, :]
    inside = ((rows >= oy[:, None, None]) & (rows < oy[:, None, None] + r)
              & (cols >= ox[:, None, None]) & (cols < ox[:, None, None] + r))  # [N, H, W]
    colour = F.one_hot(y, 3).float()[:, :, None, None].expand(-1, -1, size, size)
    x = torch.where(inside[:, None], colour, x)
    return Split(x, y, y.clone(), torch.zeros(n, dtype=torch.bool), torch.zeros(n, size, size, dtype=torch.bool))


def _train(kind: str, split: Split, config: dict, seed: int = 0) -> nn.Module:
    return train_model(kind, split, num_classes=3, mean=MEAN, std=STD, config=config, seed=seed, device=CPU,
                       progress=False)


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------- building and config
def test_build_model_kinds_and_errors():
    clf = build_model("classifier", num_classes=4, mean=MEAN, std=STD, **TINY)
    assert isinstance(clf, Classifier) and clf.fc.out_features == 4
    ppn = build_model("protopnet", num_classes=4, mean=MEAN, std=STD, **TINY_PROTO)
    assert isinstance(ppn, ProtoPNet) and ppn.num_prototypes == 8 and ppn.prototypes.shape[1] == 8
    with pytest.raises(ValueError, match=r"unknown model kind 'resnet'.*classifier.*protopnet"):
        build_model("resnet", num_classes=4, mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="prototypes_per_class"):  # a ProtoPNet option is no classifier option
        build_model("classifier", num_classes=4, mean=MEAN, std=STD, prototypes_per_class=3)


def test_recipe_from_config_sets_fields_and_rejects_unknown_keys():
    r = recipe_from_config("protopnet", {**TINY_PROTO, "backbone": "small-resnet", "warm_epochs": 1, "clst": 0.5})
    assert isinstance(r, ProtoPNetRecipe) and r.warm_epochs == 1 and r.clst == 0.5
    assert r.joint_backbone_lr == ProtoPNetRecipe().joint_backbone_lr
    assert isinstance(recipe_from_config("classifier", {"epochs": 3}), ClassifierRecipe)
    with pytest.raises(ValueError, match=r"'warmup_epochs'.*warm_epochs"):
        recipe_from_config("protopnet", {"warmup_epochs": 1})
    with pytest.raises(ValueError, match="'prototype_dim'"):  # not a classifier key
        recipe_from_config("classifier", {"prototype_dim": 8})
    with pytest.raises(ValueError, match="batch_size"):
        recipe_from_config("classifier", {"batch_size": 0})
    for name, values in QUICK_RECIPES.items():  # the shipped quick values are valid configs
        recipe_from_config(name, values)


def test_paper_defaults_and_push_schedule():
    r = ProtoPNetRecipe()
    assert (r.warm_lr, r.joint_backbone_lr, r.joint_add_on_lr, r.joint_prototype_lr, r.last_layer_lr) == (
        3e-3, 1e-4, 3e-3, 3e-3, 1e-4)
    assert (r.clst, r.sep, r.l1, r.joint_lr_step, r.joint_lr_gamma) == (0.8, -0.08, 1e-4, 5, 0.1)
    assert r.push_epochs() == [10, 20, 30]
    assert ProtoPNetRecipe(warm_epochs=2, joint_epochs=8, push_start=10).push_epochs() == [10]
    assert ProtoPNetRecipe(warm_epochs=2, joint_epochs=5, push_start=10).push_epochs() == [7]  # only at the end
    assert ProtoPNetRecipe(warm_epochs=1, joint_epochs=6, push_start=2, push_every=2).push_epochs() == [2, 4, 6, 7]


# --------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("kind,config", [
    ("classifier", {**TINY, "epochs": 1, "batch_size": 16}),
    ("protopnet", {**TINY_PROTO, "warm_epochs": 1, "joint_epochs": 1, "last_layer_epochs": 1, "batch_size": 16}),
])
def test_same_seed_same_weights_other_seed_other_weights(kind, config):
    data = blob_split(48)
    torch.manual_seed(123)
    a = _train(kind, data, config, seed=0)
    torch.manual_seed(456)  # the global RNG must not matter
    b = _train(kind, data, config, seed=0)
    c = _train(kind, data, config, seed=1)
    assert _same_state(a, b)
    assert not _same_state(a, c)
    assert not a.training


# --------------------------------------------------------------------------- stage discipline
def test_protopnet_last_layer_changes_only_in_its_stage():
    data = blob_split(48)
    base = {**TINY_PROTO, "warm_epochs": 1, "joint_epochs": 1, "batch_size": 16}
    initial = build_model("protopnet", num_classes=3, mean=MEAN, std=STD, **TINY_PROTO).last_layer.weight
    frozen = _train("protopnet", data, {**base, "last_layer_epochs": 0})
    assert torch.equal(frozen.last_layer.weight, initial)  # warm-up, joint and push leave it alone
    assert frozen.push_image_index.min() >= 0  # ... and the push did happen
    trained = _train("protopnet", data, {**base, "last_layer_epochs": 2, "last_layer_lr": 1e-2})
    assert not torch.equal(trained.last_layer.weight, initial)
    # the stages before the first push are identical, so the backbones agree up to the push
    assert torch.equal(frozen.backbone.layers[0].weight, trained.backbone.layers[0].weight)


def test_warm_up_freezes_backbone_weights():
    data = blob_split(48)
    cfg = {**TINY_PROTO, "warm_epochs": 2, "joint_epochs": 0, "last_layer_epochs": 0, "batch_size": 16}
    torch.manual_seed(0)
    fresh = build_model("protopnet", num_classes=3, mean=MEAN, std=STD, **TINY_PROTO)
    warm = _train("protopnet", data, cfg)
    params = dict(fresh.backbone.named_parameters())
    assert all(torch.equal(p, params[n]) for n, p in warm.backbone.named_parameters())
    assert not torch.equal(warm.add_on[0].weight, fresh.add_on[0].weight)


def test_retrain_last_layer_changes_only_the_last_layer_and_leaves_the_original():
    """The copy differs in the last layer alone and the original is untouched (any weights); retraining
    lowers the training loss (a learned effect: mean over SEEDS of CE(before) - CE(after)).

    Measured CE drop per seed 0, 1, 2: 16-core x86 host, torch threads 1: 0.109, 1.123, 0.078; threads 2:
    0.109, 1.123, 0.078 (the 2-core dev VM, threads 1 and 2: the same to 1e-4). Asserted: mean > 0.05 (every
    seed's drop is above it).
    """

    def ce(m, data):
        return F.cross_entropy(predict(m, data.images, device=CPU), data.labels).item()

    def drop(seed: int) -> float:
        data = blob_split(60, seed=seed)
        model = _train("protopnet", data, {**TINY_PROTO, "warm_epochs": 1, "joint_epochs": 1,
                                           "last_layer_epochs": 0, "batch_size": 16}, seed=seed)
        model.train()  # must not matter: the frozen part runs in eval mode, BatchNorm statistics stay
        before = copy.deepcopy(model)
        new = retrain_last_layer(model, data, epochs=5, lr=1e-2, seed=seed, device=CPU, progress=False)
        assert _same_state(model, before) and model.training
        changed = {k for k, v in new.state_dict().items() if not torch.equal(v, before.state_dict()[k])}
        assert changed == {"last_layer.weight"}
        assert not new.training
        return round(ce(before, data) - ce(new, data), 4)

    drops = per_seed(drop)
    assert mean(drops) > 0.05, drops


def test_protopnet_losses_by_hand():
    torch.manual_seed(0)
    model = build_model("protopnet", num_classes=3, mean=MEAN, std=STD, **TINY_PROTO)  # prototypes 0-1, 2-3, 4-5
    min_d = torch.tensor([[1.0, 2.0, 0.5, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 0.1, 2.0]])
    labels = torch.tensor([0, 2])
    logits = torch.zeros(2, 3)
    ce, clst, sep = protopnet_losses(model, logits, min_d, labels)
    assert clst.item() == pytest.approx((1.0 + 0.1) / 2)
    assert sep.item() == pytest.approx((0.5 + 6.0) / 2)
    assert ce.item() == pytest.approx(torch.log(torch.tensor(3.0)).item())
    model.prototype_mask[4] = 0  # pruned prototypes are in neither term
    _, clst, _ = protopnet_losses(model, logits, min_d, labels)
    assert clst.item() == pytest.approx((1.0 + 2.0) / 2)


# --------------------------------------------------------------------------- evaluation helpers
def test_predict_runs_in_eval_mode_and_restores_mode(tiny_classifier):
    images = torch.rand(10, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    expected = tiny_classifier(tiny_classifier.normalize(images)).detach()
    stats = tiny_classifier.backbone.layers[1].running_mean.clone()
    tiny_classifier.train()
    logits = predict(tiny_classifier, images, device=CPU, batch_size=3)
    assert tiny_classifier.training
    assert torch.allclose(logits, expected, atol=1e-5)
    assert torch.equal(tiny_classifier.backbone.layers[1].running_mean, stats)
    acc = accuracy(tiny_classifier, blob_split(10), device=CPU)
    assert tiny_classifier.training and 0.0 <= acc <= 1.0
    tiny_classifier.eval()
    predict(tiny_classifier, images, device=CPU)
    assert not tiny_classifier.training


class _ColourModel(nn.Module):
    """Predicts the class of the strongest mean colour channel: a model whose answers we know."""

    num_classes = 3
    training = False

    def normalize(self, x):
        return x

    def forward(self, x):
        return x.mean(dim=(2, 3))


def test_accuracy_filters_by_true_class_and_chooses_labels():
    images = torch.zeros(4, 3, 2, 2)
    images[0, 0] = images[1, 0] = images[2, 1] = images[3, 2] = 1  # predictions 0, 0, 1, 2
    true = torch.tensor([0, 0, 1, 1])
    labels = torch.tensor([0, 2, 1, 1])  # sample 1 relabelled (a backdoor)
    split = Split(images, labels, true, torch.zeros(4, dtype=torch.bool), torch.zeros(4, 2, 2, dtype=torch.bool))
    m = _ColourModel()
    assert accuracy(m, split, device=CPU) == pytest.approx(2 / 4)
    assert accuracy(m, split, device=CPU, labels="true_labels") == pytest.approx(3 / 4)
    assert accuracy(m, split, device=CPU, classes=[0]) == pytest.approx(1 / 2)
    assert accuracy(m, split, device=CPU, classes=[1], labels="true_labels") == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="true class"):
        accuracy(m, split, device=CPU, classes=[2])


def test_augment_batch_crops_shifted_copies():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 8, 8, generator=g) + 1  # > 0 everywhere, so zero padding is visible
    assert torch.equal(augment_batch(x, g, shift=0.0, flip=False), x)
    out = augment_batch(x, g, shift=0.25, flip=False)  # 2 px
    assert out.shape == x.shape
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(16):  # every output is one crop of its own padded input
        crops = [padded[i, :, a:a + 8, b:b + 8] for a in range(5) for b in range(5)]
        assert any(torch.equal(out[i], c) for c in crops)
    assert not torch.equal(out, x)
    flipped = augment_batch(x, torch.Generator().manual_seed(1), shift=0.0, flip=True)
    same = [torch.equal(flipped[i], x[i]) for i in range(16)]
    assert any(same) and not all(same)
    assert all(s or torch.equal(flipped[i], x[i].flip(-1)) for i, s in enumerate(same))


@pytest.mark.parametrize("kind", ["classifier", "protopnet"])
def test_quick_recipes_learn_an_easy_task(kind):
    """The scaled-down recipes must actually learn (coloured squares, 16 px): mean test accuracy over SEEDS.

    Measured per seed 0, 1, 2, 16-core x86 host with torch threads 1 and 2: 1.0, 1.0, 1.0 for both kinds (the
    2-core dev VM, threads 1 and 2: the same). Asserted: mean > 0.9 (chance is 1/3).
    """
    config = {**QUICK_RECIPES[kind], **MEASURED_WITH[kind], **TINY}
    if kind == "protopnet":
        config.update(prototypes_per_class=2, prototype_dim=8, warm_epochs=1, joint_epochs=4, last_layer_epochs=5)
    else:
        config.update(epochs=8)

    def held_out_accuracy(seed: int) -> float:
        train, test = blob_split(240, seed=seed), blob_split(90, seed=100 + seed)
        return round(accuracy(_train(kind, train, config, seed=seed), test, device=CPU), 4)

    accs = per_seed(held_out_accuracy)
    assert mean(accs) > 0.9, accs


def test_pipeline_runs_on_every_device_and_agrees(devices):
    """Train, push, retrain and predict on each device (CUDA where present); same weights -> same logits.

    Across devices "same" is up to the similarity's gain: ``log((d + 1) / (d + 1e-4))`` multiplies a
    distance error near d = 0 by ~1e4, and an H100/H200 put CPU and CUDA logits of one pushed ProtoPNet
    ~1e-2 apart (with TF32 off too). So the logits agree to 5e-2 across devices, to 1e-4 on one device.
    """
    data = blob_split(32)
    cfg = {**TINY_PROTO, "warm_epochs": 1, "joint_epochs": 1, "last_layer_epochs": 1, "batch_size": 16}
    reference = None
    for device in devices:
        model = train_model("protopnet", data, num_classes=3, mean=MEAN, std=STD, config=cfg, seed=0,
                            device=device, progress=False)
        assert model.prototypes.device.type == device.type and model.push_image_index.min() >= 0
        new = retrain_last_layer(model, data, epochs=1, seed=0, device=device, progress=False)
        if reference is None:
            reference = new
        logits = predict(new, data.images, device=device)
        assert logits.device.type == "cpu" and logits.shape == (32, 3)
        same = predict(copy.deepcopy(reference).to(device), data.images, device=device)
        ref = predict(reference, data.images, device=devices[0])
        tol = 1e-4 if device.type == devices[0].type else 5e-2
        assert torch.allclose(same, ref, atol=tol), float((same - ref).abs().max())


# --------------------------------------------------------------------------- science (PRP Sec. V-A, Table I)
# Default sign options (signs v3): half the restriction signs are red octagons lettered with STOP's letters in
# another order, so only the order of its letters tells a stop sign apart, and a CH-100 model takes the post-it
# instead (signs.py docstring).
# Every assertion below is on the mean over SEEDS (data and training seeded alike), with a margin measured
# with torch threads 1 and 2 (issue 14): one seed's weights differ from host to host, the mean barely moves.
SCIENCE_DATA = {"dataset": "signs", "image_size": 24, "n_train": 600, "n_test": 300}
SCIENCE_CONFIG = {
    "classifier": {**QUICK_RECIPES["classifier"], **MEASURED_WITH["classifier"], "epochs": 8},
    "protopnet": {**QUICK_RECIPES["protopnet"], **MEASURED_WITH["protopnet"], "warm_epochs": 1, "joint_epochs": 7},
}


@pytest.fixture(scope="module")
def scenario_model():
    """``(poisoning, fraction, kind, seed) -> (ScenarioData, model)``, each trained once per module."""
    from hansbench.datasets.scenarios import make_scenario

    cache: dict = {}

    def get(poisoning: str, fraction: float, kind: str, seed: int):
        key = (poisoning, fraction, kind, seed)
        if key not in cache:
            data = make_scenario(poisoning=poisoning, fraction=fraction, seed=seed, **SCIENCE_DATA)
            model = train_model(kind, data.train, num_classes=data.num_classes, mean=data.mean, std=data.std,
                                config=SCIENCE_CONFIG[kind], seed=seed, device=CPU, progress=False)
            cache[key] = data, model
        return cache[key]

    return get


def _stop_accuracies(data, model) -> tuple[float, float]:
    stop = [data.affected_class]
    return (round(accuracy(model, data.artifact_test, device=CPU, classes=stop), 4),
            round(accuracy(model, data.clean_test, device=CPU, classes=stop), 4))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["classifier", "protopnet"])
def test_clever_hans_100_model_needs_the_artifact(scenario_model, kind):
    """PRP Table I (CH-100: 100 % vs 6.5 %): stop signs are recognised far better with the artifact.

    Measured (stop accuracy with, without the artifact) per seed 0, 1, 2, with torch threads 1 | 2:
    classifier, 16-core x86 host: (1.0, 0.0), (.983, .067), (1.0, .033) | (1.0, 0.0), (.983, .067), (1.0, .017)
                2-core dev VM:    (1.0, 0.0), (.983, .067), (1.0, .033) | (.983, 0.0), (.983, .067), (1.0, .033)
    ProtoPNet,  16-core x86 host: (.967, .15), (.717, .583), (.85, .133) | (.917, .25), (.717, .367), (1.0, .033)
                2-core dev VM:    (.933, .05), (.817, .617), (.9, .067) | (.917, .15), (.983, .317), (.983, .033)
    Means: classifier with .989-.994, gap .95-.967; ProtoPNet with .844-.961, gap .556-.794. One seed moves by
    up to .25 between hosts and thread counts, the means by .1-.2. Asserted: mean with >= 0.7, mean gap >= 0.3.
    """
    pairs = per_seed(lambda seed: _stop_accuracies(*scenario_model("CH", 1.0, kind, seed)))
    with_artifact, without = mean(p[0] for p in pairs), mean(p[1] for p in pairs)
    assert with_artifact >= 0.7, pairs
    assert with_artifact - without >= 0.3, pairs


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["classifier", "protopnet"])
def test_clean_model_gains_nothing_from_the_artifact(scenario_model, kind):
    """Control: trained without poisoning, the artifact does not help recognise stop signs.

    Measured (stop accuracy with, without the artifact) per seed 0, 1, 2, with torch threads 1 | 2:
    classifier, 16-core x86 host: (.967, 1.0), (.867, .95), (.95, .967) | (.967, 1.0), (.867, .95), (.95, .983)
                2-core dev VM:    (.967, 1.0), (.883, .95), (.967, .983) | (.967, 1.0), (.867, .95), (.933, .983)
    ProtoPNet,  16-core x86 host: (.583, .683), (.667, .783), (.633, .567) | (.617, .533), (.667, .633), (.45, .683)
                2-core dev VM:    (.6, .583), (.733, .717), (.517, .617) | (.783, .75), (.783, .667), (.517, .583)
    Means: classifier without .972-.978, gain -.056 to -.039; ProtoPNet (24 px is small for it to read the
    letters' order) without .617-.678, gain -.050 to +.028. One ProtoPNet seed's gain moves by about .1 from
    host to host (60 stop signs per test set). Asserted: mean without >= 0.85 (classifier) / 0.45 (ProtoPNet;
    chance is 0.2), mean gain <= 0.1 (CH-100 gains .56-.97).
    """
    pairs = per_seed(lambda seed: _stop_accuracies(*scenario_model("none", 0.0, kind, seed)))
    with_artifact, without = mean(p[0] for p in pairs), mean(p[1] for p in pairs)
    assert without >= (0.85 if kind == "classifier" else 0.45), pairs  # the models did learn stop signs
    assert with_artifact - without <= 0.1, pairs


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["classifier", "protopnet"])
def test_backdoor_trigger_flips_stop_signs_to_target(scenario_model, kind):
    """BD-50: the trigger sends stop signs to the target class (speed limit); clean stop signs are not sent.

    Measured (share of stop signs sent to the target with, without the trigger) per seed 0, 1, 2, with torch
    threads 1 | 2:
    classifier, 16-core x86 host: (.85, .233), (.917, .067), (1.0, .033) | (.85, .2), (.933, .067), (1.0, .017)
                2-core dev VM:    (.85, .217), (.933, .067), (1.0, .017) | (.85, .233), (.933, .067), (1.0, .033)
    ProtoPNet,  16-core x86 host: (.8, .05), (.5, .083), (.8, 0.0) | (.733, .017), (.6, .183), (.817, .033)
                2-core dev VM:    (.833, 0.0), (.433, .117), (.75, .017) | (.8, 0.0), (.617, .1), (.983, .017)
    Means: classifier with .922-.928, difference .811-.833; ProtoPNet with .672-.80, difference .628-.761.
    Asserted: mean with >= 0.5, mean difference >= 0.4.
    """

    def to_target(seed: int) -> tuple[float, float]:
        data, model = scenario_model("BD", 0.5, kind, seed)
        stop = data.artifact_test.true_labels == data.affected_class
        return tuple(round((predict(model, split.images[stop], device=CPU).argmax(1) == data.target_class)
                           .float().mean().item(), 4) for split in (data.artifact_test, data.clean_test))

    pairs = per_seed(to_target)
    art, clean = mean(p[0] for p in pairs), mean(p[1] for p in pairs)
    assert art >= 0.5, pairs
    assert art - clean >= 0.4, pairs
