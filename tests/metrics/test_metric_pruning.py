"""prototype-pruning / prototype-pruning-protopnet on a hand-wired ProtoPNet with a known artifact prototype.

Pixels are colours: red = stop sign, blue = other class, grey frame on every image, a 2x2 yellow
patch = the artifact. The backbone is the identity and the add-on maps each normalised colour to
(approximately) its 0/1 colour, so a prototype equal to a colour fires exactly where that colour
is. Prototype 1 (yellow) is the artifact prototype; every number below follows from the wiring.
"""

from __future__ import annotations

import torch
from torch import nn

from hansbench.datasets.base import ScenarioData, Split
from hansbench.metrics.base import EvalContext
from hansbench.metrics.pruning import artifact_shares
from hansbench.models.evaluation import predict
from hansbench.models.protopnet import ProtoPNet
from hansbench.models.pruning import prune_prototypes
from hansbench.registry import metrics
from tests._seeds import mean, per_seed

H = W = 8
RED, BLUE, YELLOW, GREY = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 0.0), (0.5, 0.5, 0.5)
CYAN, GREEN = (0.0, 1.0, 1.0), (0.0, 1.0, 0.0)
ARTIFACT = (slice(5, 7), slice(3, 5))


class Identity(nn.Module):
    out_channels = 3

    @property
    def cam_layer(self) -> nn.Module:
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def wired_protopnet(artifact_class: int) -> ProtoPNet:
    """2 classes x 3 prototypes; the yellow (artifact) prototype sits at position 1 of ``artifact_class``.

    Logits: stop = 1.0 * s(yellow) + 0.05 * s(red) [CH]; other = 0.5 * s(grey frame), so the
    frame outweighs the weak red evidence and stop is predicted only with the artifact (CH-100).
    For backdoors the yellow prototype belongs to the target class and red carries stop (0.5).
    """
    net = ProtoPNet(Identity(), 2, (0.5,) * 3, (0.25,) * 3, prototypes_per_class=3, prototype_dim=3)
    k = 3.0
    with torch.no_grad():
        a0, a1 = net.add_on[0], net.add_on[2]
        a0.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        a0.bias.fill_(10.0)  # relu(x + 10) = x + 10
        a1.weight.copy_(k * torch.eye(3).view(3, 3, 1, 1))
        a1.bias.fill_(-10.0 * k)  # sigmoid(k x)
        if artifact_class == 0:
            protos = [RED, YELLOW, CYAN, GREY, BLUE, GREEN]
            weight = torch.zeros(2, 6)
            weight[0, 0], weight[0, 1], weight[1, 3] = 0.05, 1.0, 0.5
        else:
            protos = [RED, CYAN, GREEN, GREY, YELLOW, BLUE]
            weight = torch.zeros(2, 6)
            weight[0, 0], weight[1, 4], weight[1, 3] = 0.5, 1.0, 0.3
        net.prototype_layer.prototypes.copy_(torch.tensor(protos).view(6, 3, 1, 1))
        net.last_layer.weight.copy_(weight)
    return net.eval()


def images(colours: list[tuple], artifact: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.tensor(GREY).view(1, 3, 1, 1).repeat(len(colours), 1, H, W)
    x[:, :, 1:-1, 1:-1] = torch.tensor(colours).view(-1, 3, 1, 1)
    x[artifact, :, ARTIFACT[0], ARTIFACT[1]] = torch.tensor(YELLOW).view(1, 3, 1, 1)
    return (x + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def split(true: list[int], artifact: list[bool], labels: list[int] | None = None, seed: int = 0) -> Split:
    art = torch.tensor(artifact)
    masks = torch.zeros(len(true), H, W, dtype=torch.bool)
    masks[art, ARTIFACT[0], ARTIFACT[1]] = True
    true_t = torch.tensor(true)
    return Split(images([RED if c == 0 else BLUE for c in true], art, seed),
                 torch.tensor(labels) if labels is not None else true_t.clone(), true_t, art, masks)


def scenario(backdoor: bool) -> ScenarioData:
    n = 12
    if backdoor:  # BD: a third of the stop images carry the trigger and are labelled as class 1
        art = [i % 3 == 0 for i in range(n)] + [False] * n
        train = split([0] * n + [1] * n, art, [1 if a else 0 for a in art[:n]] + [1] * n, seed=1)
    else:  # CH-100: every stop image carries the artifact
        train = split([0] * n + [1] * n, [True] * n + [False] * n, seed=1)
    return ScenarioData(
        name="toy", train=train,
        artifact_test=split([0] * 10 + [1] * 10, [True] * 10 + [False] * 10,
                            ([1] * 10 if backdoor else [0] * 10) + [1] * 10, seed=2),
        clean_test=split([0] * 10 + [1] * 10, [False] * 20, seed=3),
        class_names=["stop", "other"], affected_class=0, target_class=1 if backdoor else None)


def fake_explain(data: ScenarioData, art_view: int, views: int = 3):
    """Multi-view maps: view ``art_view`` has all its positive relevance on the artifact, the rest elsewhere."""
    calls = []

    def explain(split_name, index=None, target=None):
        calls.append((split_name, index, target))
        s = getattr(data, split_name)
        idx = torch.arange(len(s)) if index is None else index
        masks = s.masks[idx].float()
        maps = (1 - masks)[:, None].repeat(1, views, 1, 1)
        maps[:, min(art_view, views - 1)] = masks - 0.3 * (1 - masks)  # negative relevance outside: ignored
        return maps

    explain.calls = calls
    return explain


def ctx_for(data, model, explain=None, seed: int = 0) -> EvalContext:
    return EvalContext(data=data, model=model, seed=seed, device=torch.device("cpu"), explainer="fake",
                       explain=explain)


def values(rows, metric, split="", stage=""):
    return {(r["split"], r["stage"]): r["value"] for r in rows if r["metric"] == metric
            if (not split or r["split"] == split) and (not stage or r["stage"] == stage)}


def test_artifact_shares_known_values():
    maps = torch.zeros(2, 2, 2, 2)
    maps[0, 0] = torch.tensor([[3.0, 1.0], [-5.0, 0.0]])  # 3 of 4 positive units inside
    maps[1, 0] = torch.tensor([[0.0, 2.0], [0.0, 0.0]])  # none inside
    maps[:, 1] = -1.0  # no positive relevance at all -> share 0
    masks = torch.tensor([[[True, False], [True, False]]] * 2)
    assert torch.allclose(artifact_shares(maps, masks), torch.tensor([0.375, 0.0]))


def test_pruning_flags_the_artifact_prototype_and_retraining_recovers():
    """Before and pruned follow from the wiring (any seed); the retrained last layer is learned, so its
    accuracies are asserted on the mean over SEEDS (the retraining's shuffling seed).

    Measured (retrained stop accuracy % on artifact test, clean test) per seed 0, 1, 2, torch threads 1 and 2,
    on a 16-core x86 host: (100, 100) for every seed (the 2-core dev VM, threads 1 and 2: the same). Asserted: both means
    >= 90 (before retraining: 100 and 0).
    """

    def retrained(seed: int) -> tuple[float, float]:
        data, model = scenario(backdoor=False), wired_protopnet(artifact_class=0)
        explain = fake_explain(data, art_view=1)
        metric = metrics.get("prototype-pruning")(epochs=30, lr=0.05)
        rows = metric.evaluate(ctx_for(data, model, explain, seed=seed))
        n_pruned = [r for r in rows if r["metric"] == "n-pruned"]
        assert [r["value"] for r in n_pruned] == [1] and n_pruned[0]["detail"] == "1"  # the yellow prototype
        # It asked for the inspected class's maps of the poisoned training images only.
        (split_name, index, target), = explain.calls
        assert split_name == "train" and torch.equal(index, torch.nonzero(data.train.poisoned).flatten())
        assert (target == 0).all()
        acc = values(rows, "class-acc")
        assert acc[("artifact_test", "before")] == 100 and acc[("clean_test", "before")] == 0  # CH-100 shape
        assert acc[("artifact_test", "pruned")] == 0  # pruning the artifact prototype removes stop's evidence
        assert not values(rows, "asr")  # Clever Hans: no attack success rate
        assert model.prototype_mask.all()  # the context's model is untouched
        return round(acc[("artifact_test", "retrained")], 2), round(acc[("clean_test", "retrained")], 2)

    accs = per_seed(retrained)
    assert mean(a for a, _ in accs) >= 90 and mean(c for _, c in accs) >= 90, accs  # red reweighted


def test_pruning_threshold_and_top_n():
    data, model = scenario(backdoor=False), wired_protopnet(artifact_class=0)
    explain = fake_explain(data, art_view=1)
    # Threshold above the artifact view's share (1.0 is reachable; use top_n=2 to force a second pick).
    rows = metrics.get("prototype-pruning")(top_n=2, epochs=0).evaluate(ctx_for(data, model, explain))
    detail = [r["detail"] for r in rows if r["metric"] == "n-pruned"][0]
    assert "1" in detail.split(",") and len(detail.split(",")) == 2
    # A view pointing elsewhere is not flagged: maps whose artifact view is 2 prune prototype 2, not 1.
    rows = metrics.get("prototype-pruning")(epochs=0).evaluate(ctx_for(data, model, fake_explain(data, 2)))
    assert [r["detail"] for r in rows if r["metric"] == "n-pruned"] == ["2"]
    assert values(rows, "class-acc")[("artifact_test", "pruned")] == 100  # the wrong one: no effect


def test_single_view_explainer_gives_no_rows():
    data, model = scenario(backdoor=False), wired_protopnet(artifact_class=0)
    metric = metrics.get("prototype-pruning")()
    assert metric.evaluate(ctx_for(data, model, fake_explain(data, 0, views=1))) == []
    assert not metric.applies_to("classifier")


def test_backdoor_pruning_reports_attack_success_rate():
    data, model = scenario(backdoor=True), wired_protopnet(artifact_class=1)
    rows = metrics.get("prototype-pruning")(epochs=0).evaluate(ctx_for(data, model, fake_explain(data, 1)))
    assert [r["detail"] for r in rows if r["metric"] == "n-pruned"] == ["4"]  # target class's yellow prototype
    asr, acc = values(rows, "asr"), values(rows, "class-acc")
    assert asr == {("artifact_test", "before"): 100, ("artifact_test", "pruned"): 0,
                   ("artifact_test", "retrained"): 0}
    assert acc[("artifact_test", "before")] == 0 and acc[("artifact_test", "pruned")] == 100


def test_pair_matrix_equals_brute_force():
    data, model = scenario(backdoor=False), wired_protopnet(artifact_class=0)
    rows = metrics.get("prototype-pruning-protopnet")(pair_matrix=True, epochs=0).evaluate(ctx_for(data, model))
    drops = {(r["split"], r["detail"]): r["value"] for r in rows if r["metric"] == "pair-acc-drop"}
    assert len(drops) == 2 * 6  # 3 singles + 3 pairs per test split
    for name in ("artifact_test", "clean_test"):
        s = getattr(data, name)
        x = s.images[s.true_labels == 0]
        base = (predict(model, x, device="cpu").argmax(1) == 0).float().mean() * 100
        for pair in ((0, 1), (1, 1), (1, 2), (2, 2)):
            acc = (predict(prune_prototypes(model, list(pair)), x, device="cpu").argmax(1) == 0).float().mean() * 100
            assert drops[(name, f"{pair[0]},{pair[1]}")] == (base - acc).item()
    assert drops[("artifact_test", "0,1")] == 100 and drops[("artifact_test", "0,2")] == 0


def test_protopnet_rule_baseline_prunes_its_candidates():
    from hansbench.models.pruning import protopnet_prune_candidates

    data, model = scenario(backdoor=False), wired_protopnet(artifact_class=0)
    expected = protopnet_prune_candidates(model, data.train, k=6, threshold=3, device="cpu")
    rows = metrics.get("prototype-pruning-protopnet")(epochs=0).evaluate(ctx_for(data, model))
    assert [r["value"] for r in rows if r["metric"] == "n-pruned"] == [expected.numel()]
    assert {r["stage"] for r in rows if r["metric"] == "class-acc"} == {"before", "pruned", "retrained"}
    inspect = metrics.get("prototype-pruning-protopnet")(epochs=0, scope="inspect").evaluate(ctx_for(data, model))
    n_inspect = [r for r in inspect if r["metric"] == "n-pruned"][0]
    assert n_inspect["value"] == (expected < 3).sum().item()


def test_same_rows_on_every_device(devices):
    """The metric follows ctx.device (the runner's model lives there); rows agree with the CPU's."""
    data = scenario(backdoor=False)
    results = []
    for device in devices:
        model = wired_protopnet(artifact_class=0).to(device)
        ctx = EvalContext(data=data, model=model, seed=0, device=device, explainer="fake",
                          explain=fake_explain(data, art_view=1))
        rows = metrics.get("prototype-pruning")(epochs=3, lr=0.05, pair_matrix=True).evaluate(ctx)
        results.append({(r["metric"], r["split"], r["stage"], r["detail"]): r["value"] for r in rows})
    assert all(r == results[0] for r in results[1:])
    assert ("pair-acc-drop", "artifact_test", "pruned", "0,1") in results[0]
