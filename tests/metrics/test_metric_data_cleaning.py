"""data-cleaning / data-cleaning-baselines on tiny linear scenarios where a 2x2 patch is the artifact: a rule's
flags against a random filter of the same size and the perfect filter.

The model is a linear classifier on normalised pixels trained full-batch (milliseconds), so the
retraining these metrics do is real but cheap. In the backdoor scenario the trigger is learnt as
"class 1"; removing exactly the poisoned images must take that away.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hansbench.datasets.base import ScenarioData, Split
from hansbench.methods.base import ClusteringResult
from hansbench.methods.flagging.base import Flagging
from hansbench.metrics._retraining import indices_tag
from hansbench.metrics.base import EvalContext
from hansbench.metrics.data_cleaning import random_filter, restores
from hansbench.registry import metrics
from tests._seeds import mean, per_seed

H = W = 6
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


class Linear(nn.Module):
    kind = "classifier"

    def __init__(self, num_classes: int = 2):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        self.fc = nn.Linear(3 * H * W, num_classes)
        self.num_classes = num_classes

    def normalize(self, x01):
        return (x01 - self.mean) / self.std

    def forward(self, x):
        return self.fc(x.flatten(1))


def train_linear(train: Split, seed: int = 0, steps: int = 150) -> Linear:
    torch.manual_seed(seed)
    model = Linear()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    x = model.normalize(train.images)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), train.labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def make_split(true: torch.Tensor, stamped: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> Split:
    n = len(true)
    x = 0.5 + 0.2 * torch.randn(n, 3, H, W, generator=g)
    x[:, 0] += 0.12 * (true == 0).float()[:, None, None]  # weak class signal spread over the image
    x[:, 2] += 0.12 * (true == 1).float()[:, None, None]
    x[stamped, :, 4:6, 4:6] = torch.tensor([1.0, 1.0, 0.0]).view(1, 3, 1, 1)
    masks = torch.zeros(n, H, W, dtype=torch.bool)
    masks[stamped, 4:6, 4:6] = True
    return Split(x.clamp(0, 1), labels, true, stamped.clone(), masks)


def scenario(kind: str, n: int = 120, fraction: float = 0.4, seed: int = 0) -> ScenarioData:
    """``kind="bd"``: stamped stop images relabelled to 1; ``"ch"``: stamped, labels kept."""
    g = torch.Generator().manual_seed(7 + seed)
    true = torch.tensor([0] * n + [1] * n)
    stamped = torch.zeros(2 * n, dtype=torch.bool)
    stamped[: int(fraction * n)] = True
    labels = true.clone()
    if kind == "bd":
        labels[stamped] = 1
    test_true = torch.tensor([0] * 100 + [1] * 100)
    art = test_true == 0
    return ScenarioData(
        name=kind, train=make_split(true, stamped, labels, g),
        artifact_test=make_split(test_true, art, test_true.clone(), g),
        clean_test=make_split(test_true, torch.zeros(200, dtype=torch.bool), test_true.clone(), g),
        class_names=["stop", "other"], affected_class=0, target_class=1 if kind == "bd" else None,
        mean=MEAN, std=STD)


class Trainer:
    """A ctx.train_model that counts its calls (training seeded with ``seed``)."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.tags: list[str] = []

    def __call__(self, train: Split, tag: str) -> nn.Module:
        self.tags.append(tag)
        return train_linear(train, seed=self.seed)


def ctx_for(data, clustering=None, cluster_index=None, explainer="lrp", clusterer="spray", seed: int = 0,
            flagging=None, rule: str = ""):
    if clustering is not None and flagging is None:  # the rule flags what the clusterer flagged
        flagging = Flagging.of(np.asarray(clustering.flagged_mask, dtype=bool), "the smaller cluster")
        rule = rule or "smaller-cluster"
    return EvalContext(data=data, model=train_linear(data.train, seed=seed), seed=seed, device=torch.device("cpu"),
                       explainer=explainer, clusterer=clusterer, clustering=clustering,
                       cluster_index=cluster_index, train_model=Trainer(seed), flagging=flagging, rule=rule)


def by_key(rows):
    return {(r["metric"], r["split"], r["stage"]): r["value"] for r in rows}


def perfect_clustering(data):
    index = data.train.of_class(data.inspect_class)
    truth = data.train.poisoned[index].numpy()
    return ClusteringResult(labels=truth.astype(int), flagged=1), index


def test_oracle_cleaning_removes_the_backdoor():
    """The counts hold for any weights; the learned effects are asserted on the mean over SEEDS (data and
    training seeded alike).

    Measured (ASR % of the poisoned model, ASR % after oracle cleaning, stop accuracy gain in %-points) per
    seed 0, 1, 2, the same with torch threads 1 and 2 on a 16-core x86 host: (98, 0, 98), (97, 0, 97),
    (93, 0, 93) (the 2-core dev VM, threads 1 and 2: the same). Asserted: mean ASR none > 80, mean ASR oracle < 20, mean gain > 50.
    """

    def effects(seed: int) -> tuple[float, float, float]:
        data = scenario("bd", seed=seed)
        ctx = ctx_for(data, seed=seed)
        v = by_key(metrics.get("data-cleaning-baselines")().evaluate(ctx))
        assert len(ctx.train_model.tags) == 1  # only the oracle retrains; "none" is the model as is
        assert v[("n-removed", "", "oracle")] == data.train.poisoned.sum().item()
        assert v[("precision-removed", "", "oracle")] == 100 and v[("recall-removed", "", "oracle")] == 100
        assert v[("n-removed", "", "none")] == 0 and v[("recall-removed", "", "none")] == 0
        assert ("asr", "clean_test", "none") not in v  # no trigger in the clean test
        gain = v[("class-acc", "artifact_test", "oracle")] - v[("class-acc", "artifact_test", "none")]
        return (round(v[("asr", "artifact_test", "none")], 2), round(v[("asr", "artifact_test", "oracle")], 2),
                round(gain, 2))

    values = per_seed(effects)
    assert mean(v[0] for v in values) > 80, values  # the trigger was learnt
    assert mean(v[1] for v in values) < 20, values  # ... and is gone after oracle cleaning
    assert mean(v[2] for v in values) > 50, values


def test_perfect_clustering_equals_oracle_cleaning():
    for kind in ("ch", "bd"):
        data = scenario(kind)
        clustering, index = perfect_clustering(data)
        ctx = ctx_for(data, clustering, index)
        cleaned = {(m, s): x for (m, s, st), x in by_key(metrics.get("data-cleaning")().evaluate(ctx)).items()
                   if st == "cleaned"}
        oracle = {(m, s): x for (m, s, st), x in by_key(metrics.get("data-cleaning-baselines")().evaluate(ctx)).items()
                  if st == "oracle" and m != "oracle-restores"}
        assert cleaned == oracle and len(cleaned) >= 7
        tags = ctx.train_model.tags  # cleaned, random, oracle
        assert tags[0] == tags[2]  # same removed set -> same (cached) retraining
        assert tags[0] == indices_tag("data-cleaning", torch.nonzero(data.train.poisoned).flatten())  # = poisoned


def test_the_random_filter_draws_as_many_seeded_by_the_seed_and_the_count():
    data = scenario("ch")
    clustering, index = perfect_clustering(data)
    ctx = ctx_for(data, clustering, index)
    k = int(data.train.poisoned.sum())
    drawn = random_filter(ctx, index, k)
    assert drawn.numel() == k == drawn.unique().numel() and bool(torch.isin(drawn, index).all())
    assert torch.equal(drawn, random_filter(ctx, index, k))  # same seed, same count: the same set
    other = ctx_for(data, clustering, index, seed=1)
    assert not torch.equal(drawn.sort().values, random_filter(other, index, k).sort().values)  # another seed
    assert not torch.equal(drawn[: k - 1].sort().values, random_filter(ctx, index, k - 1).sort().values)
    v = by_key(metrics.get("data-cleaning")().evaluate(ctx))
    assert v[("n-removed", "", "random")] == v[("n-removed", "", "cleaned")] == k
    assert ctx.train_model.tags == [indices_tag("data-cleaning", index[torch.as_tensor(clustering.flagged_mask)]),
                                    indices_tag("data-cleaning", drawn)]  # what was retrained on: these two sets
    share = 100 * k / index.numel()  # a random filter's expected precision is the poisoned share
    assert abs(v[("precision-removed", "", "random")] - share) < 25 and v[("precision-removed", "", "cleaned")] == 100


def test_an_abstaining_rule_removes_nothing_and_retrains_nothing():
    """The clusterer flagged a cluster, the rule abstained: no intervention, the model as is at both stages."""
    import json

    data = scenario("bd")
    clustering, index = perfect_clustering(data)
    abstained = Flagging.abstain(index.numel(), "no cluster holds less than 35 % of the class")
    ctx = ctx_for(data, clustering, index, flagging=abstained, rule="relative-size")
    rows = metrics.get("data-cleaning")().evaluate(ctx)
    assert ctx.train_model.tags == []
    v = by_key(rows)
    none = by_key(metrics.get("data-cleaning-baselines")().evaluate(ctx))
    for stage in ("cleaned", "random"):
        assert v[("n-removed", "", stage)] == 0
        assert v[("asr", "artifact_test", stage)] == none[("asr", "artifact_test", "none")]
    detail = json.loads(rows[0]["detail"])
    assert detail["abstained"] is True and detail["rule"] == "relative-size"
    assert "abstained" in detail["intervention"] and "35 %" in detail["reason"]


def test_imperfect_clustering_precision_and_recall():
    data = scenario("ch")
    index = data.train.of_class(0)
    labels = data.train.poisoned[index].numpy().astype(int)
    n_poisoned = int(labels.sum())
    labels[n_poisoned: n_poisoned + 6] = 1  # six clean stop images flagged too
    labels[:4] = 0  # four poisoned ones missed
    ctx = ctx_for(data, ClusteringResult(labels=labels, flagged=1), index)
    v = by_key(metrics.get("data-cleaning")().evaluate(ctx))
    assert v[("n-removed", "", "cleaned")] == n_poisoned + 2
    assert ("acc-gap", "", "cleaned") in v and ("acc-gap", "", "random") in v  # Clever Hans: the reliance gap
    assert v[("precision-removed", "", "cleaned")] == pytest.approx(100 * (n_poisoned - 4) / (n_poisoned + 2))
    assert v[("recall-removed", "", "cleaned")] == pytest.approx(100 * (n_poisoned - 4) / n_poisoned)
    assert not any(k[0] == "asr" for k in v)  # Clever Hans: no attack success rate


def test_which_pairs_are_retrained_is_the_suites_filters(tmp_path):
    """One way to restrict a costly metric: the suite's filter keys, applied by the planner (no `pairs` option)."""
    from hansbench.bench.engine.planner import Planner
    from hansbench.bench.suite.config import SuiteError, load_suite

    with pytest.raises(TypeError, match="takes no options"):
        metrics.get("data-cleaning")(pairs="all")
    p = tmp_path / "s.toml"
    p.write_text('[suite]\nextends = "quick"\n[metrics]\ndata-cleaning = { pairs = "all" }\n')
    with pytest.raises(SuiteError, match=r"metrics.data-cleaning: .*takes no options, got \[.pairs.\]"):
        load_suite(p)
    p.write_text('[suite]\nextends = "quick"\n[metrics]\ndata-cleaning = { models = ["classifier"], '
                 'explainers = ["gradcam", "activations"], clusterers = ["spray", "activation-clustering"] }\n')
    planned = {(n.ids["model"], n.ids["explainer"], n.ids["clusterer"])
               for n in Planner(load_suite(p)).plan().nodes if n.ids.get("family") == "data-cleaning"}
    assert planned == {("classifier", "gradcam", "spray"), ("classifier", "activations", "activation-clustering")}


def test_clear_errors():
    data = scenario("ch")
    with pytest.raises(ValueError, match="needs ctx.flagging"):
        metrics.get("data-cleaning")().evaluate(ctx_for(data))
    index = data.train.of_class(0)
    bad = ClusteringResult(labels=np.zeros(len(index) - 1, dtype=int), flagged=0)
    with pytest.raises(ValueError, match="clustered samples"):
        metrics.get("data-cleaning")().evaluate(ctx_for(data, bad, index))
    with pytest.raises(ValueError, match="draws 0..3"):
        random_filter(ctx_for(data), torch.arange(3), 4)


def test_model_accuracy_reports_the_poisoned_models_accuracies():
    """A model that answers 'target' whenever the artifact pixel is set: ASR 100 %, clean accuracy 100 %."""
    import torch

    from hansbench.datasets.base import ScenarioData, Split
    from hansbench.metrics.base import EvalContext
    from hansbench.registry import metrics

    class Rule(torch.nn.Module):
        kind = "classifier"

        def normalize(self, x):
            return x

        def forward(self, x):  # class = round(mean of channel 0) unless pixel (0,0) is lit -> class 1
            logits = torch.nn.functional.one_hot(x[:, 0, 1, 1].round().long(), 3).float()
            lit = x[:, 1, 0, 0] > 0.5
            logits[lit] = torch.tensor([0.0, 1.0, 0.0])
            return logits

    def split(artifact: bool) -> Split:
        labels = torch.tensor([0, 1, 2, 2])
        images = torch.zeros(4, 3, 4, 4)
        images[:, 0, 1, 1] = labels.float()
        poisoned = (labels == 2) & artifact
        images[poisoned, 1, 0, 0] = 1.0
        masks = torch.zeros(4, 4, 4, dtype=torch.bool)
        masks[poisoned, 0, 0] = True
        return Split(images, labels, labels, poisoned, masks)

    data = ScenarioData("BD", split(True), split(True), split(False), ["a", "b", "c"], affected_class=2,
                        target_class=1)
    ctx = EvalContext(data=data, model=Rule(), seed=0, device=torch.device("cpu"))
    rows = {(r["metric"], r["split"]): r["value"] for r in metrics.get("model-accuracy")().evaluate(ctx)}
    assert rows[("asr", "artifact_test")] == 100.0
    assert rows[("class-acc", "artifact_test")] == 0.0 and rows[("class-acc", "clean_test")] == 100.0
    assert rows[("acc", "clean_test")] == 100.0 and rows[("acc", "artifact_test")] == 50.0
    assert ("asr", "clean_test") not in rows


def test_clean_control_reports_what_cleaning_costs_in_clean_accuracy():
    """fraction 0 (nothing poisoned): the flagged cluster is all clean; no precision/recall, the cost is the story."""
    from hansbench.metrics._retraining import predict_logits, stage_values

    data = scenario("ch", fraction=0.0)
    index = data.train.of_class(0)
    k = len(index) - 3  # all but three stop images flagged: the retrained model hardly knows stop signs
    labels = np.zeros(len(index), dtype=int)
    labels[:k] = 1
    ctx = ctx_for(data, ClusteringResult(labels=labels, flagged=1), index)
    v = by_key(metrics.get("data-cleaning")().evaluate(ctx))
    assert v[("n-removed", "", "cleaned")] == k
    assert not any(key[0] in ("precision-removed", "recall-removed") for key in v)
    keep = torch.ones(len(data.train), dtype=torch.bool)
    keep[index[:k]] = False
    retrained = train_linear(data.train.subset(keep), seed=0)  # what Trainer(0) trains: independent recomputation
    acc = lambda m: stage_values(predict_logits(m, data.clean_test, torch.device("cpu")), data.clean_test,  # noqa
                                 data)["acc"]
    cost = acc(ctx.model) - acc(retrained)
    assert cost > 0 and v[("clean-acc-cost", "clean_test", "cleaned")] == pytest.approx(cost)


def test_cleaning_runs_on_a_clean_control_but_not_without_clean_images():
    m = metrics.get("data-cleaning")()
    assert m.not_applicable(model_kind="classifier", scenario={"poisoning": "none", "fraction": 0.0}) is None
    assert "needs clean images" in m.not_applicable(model_kind="classifier", scenario={"poisoning": "CH",
                                                                                       "fraction": 1.0})
    assert m.not_applicable(model_kind="classifier", scenario={"poisoning": "CH", "fraction": 0.5}) is None
    shows = m.presentation
    assert "n-removed" in shows.undirected
    assert {"precision-removed", "recall-removed", "clean-acc-cost"} <= set(shows.headline)


def test_whether_the_perfect_filter_restores_the_model():
    ok, why = restores(1.7, 95.0, "stop")
    assert not ok and why.startswith("the perfect filter leaves 1.7 % clean stop accuracy") and "cannot be judged" in why
    assert restores(93.0, 95.0)[0]  # within 5 points
    assert not restores(89.0, 95.0)[0]  # more than 5 points lost
    assert not restores(45.0, 46.0)[0]  # under 50 %
    assert restores(60.0, 40.0)[0]  # a gain


def test_the_baselines_say_whether_the_oracle_restores_the_model():
    """A backdoor relabelling 40 % of the stop images: the oracle restores stop accuracy (the linear model really
    retrained). A retraining that loses the stop class (a model that answers "other" to everything, as a
    backdoor relabelling most stop images leaves behind: issue 28's 1.7 %): the row says the oracle does not restore."""
    import json

    class Answers(nn.Module):  # predicts class 1 for every image
        def normalize(self, x):
            return x

        def forward(self, x):
            return torch.tensor([0.0, 1.0]).expand(len(x), 2)

    data = scenario("bd", fraction=0.4)
    lost = ctx_for(data)
    lost.train_model = lambda train, tag: Answers()
    for ctx, expected in ((ctx_for(data), 1.0), (lost, 0.0)):
        rows = metrics.get("data-cleaning-baselines")().evaluate(ctx)
        v = by_key(rows)
        oracle, none = v[("class-acc", "clean_test", "oracle")], v[("class-acc", "clean_test", "none")]
        assert v[("oracle-restores", "clean_test", "oracle")] == float(restores(oracle, none)[0]) == expected, (
            oracle, none)
        why = json.loads(next(r["detail"] for r in rows if r["metric"] == "oracle-restores"))["restores"]
        assert f"{oracle:.1f} % clean stop accuracy" in why
    assert "leaves 0.0 % clean stop accuracy" in why and "cannot be judged" in why


def test_attack_success_has_one_definition():
    """All-to-one: every class but the target is a source; an unstamped source image does not count. model-accuracy
    (the intervention metrics' stage rows) and reliance give the same attack success."""
    from hansbench.metrics._retraining import attack_success

    class Rule(torch.nn.Module):
        kind = "classifier"

        def normalize(self, x):
            return x

        def forward(self, x):  # the true class (channel 0) unless the trigger pixel is lit: then the target 1
            logits = torch.nn.functional.one_hot(x[:, 0, 1, 1].round().long(), 3).float()
            logits[x[:, 1, 0, 0] > 0.5] = torch.tensor([0.0, 1.0, 0.0])
            return logits

    def split(stamp: bool) -> Split:
        labels = torch.tensor([0, 0, 1, 2, 2, 2])
        images = torch.zeros(6, 3, 4, 4)
        images[:, 0, 1, 1] = labels.float()
        poisoned = torch.tensor([True, True, False, True, True, False]) & stamp  # the last stop image unstamped
        images[poisoned, 1, 0, 0] = 1.0
        masks = torch.zeros(6, 4, 4, dtype=torch.bool)
        masks[poisoned, 0, 0] = True
        return Split(images, labels, labels, poisoned, masks)

    data = ScenarioData("BD-A2O", split(True), split(True), split(False), ["a", "b", "c"], affected_class=2,
                        target_class=1, poisoning="BD-A2O")
    ctx = EvalContext(data=data, model=Rule(), seed=0, device=torch.device("cpu"))
    acc = {(r["metric"], r["split"]): r["value"] for r in metrics.get("model-accuracy")().evaluate(ctx)}
    rel = {r["metric"]: r["value"] for r in metrics.get("reliance")().evaluate(ctx)}
    assert acc[("asr", "artifact_test")] == rel["asr"] == 100.0  # 4 of the 4 stamped source images
    assert attack_success(Rule()(data.artifact_test.images).argmax(1), data.artifact_test, data) == 100.0
