"""Work shared instead of repeated (issue 21): the metric memos, the map bank's accounting, memory_format.

A memo may only serve what recomputing would give: these tests change a model in place, free it,
pass another split, and check that the memo recomputes; and that two pruning nodes blaming the
same prototype give the rows of two independent computations while retraining once.
"""

from __future__ import annotations

import gc

import pytest
import torch

from hansbench.datasets.base import Split
from hansbench.metrics import _memo
from hansbench.metrics._memo import LOGITS, RETRAINED, IdentityMemo
from hansbench.metrics._retraining import predict_logits
from hansbench.models.evaluation import predict
from hansbench.models.kinds import build_model, train_model
from hansbench.registry import metrics
from hansbench.testing import tiny_model
from tests.metrics.test_metric_pruning import ctx_for, fake_explain, scenario, wired_protopnet


@pytest.fixture(autouse=True)
def fresh_memos():
    LOGITS.clear()
    RETRAINED.clear()
    yield
    LOGITS.clear()
    RETRAINED.clear()


def toy_split(n: int = 6, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    return Split(torch.rand(n, 3, 16, 16, generator=g), labels, labels.clone(), torch.zeros(n, dtype=torch.bool),
                 torch.zeros(n, 16, 16, dtype=torch.bool))


def test_logits_are_computed_once_per_unchanged_model_and_split():
    model, split = tiny_model(), toy_split()
    first = predict_logits(model, split, torch.device("cpu"))
    second = predict_logits(model, split, torch.device("cpu"))
    assert torch.equal(first, predict(model, split.images, device="cpu"))
    assert torch.equal(first, second) and (LOGITS.misses, LOGITS.hits) == (1, 1)
    second.add_(1.0)  # each call gets its own copy: a caller's edit never reaches the memo
    assert torch.equal(predict_logits(model, split, torch.device("cpu")), first)


def test_logits_memo_recomputes_after_any_change():
    model, split = tiny_model(), toy_split()
    before = predict_logits(model, split, torch.device("cpu"))
    with torch.no_grad():
        next(model.parameters()).mul_(3.0)  # an in-place edit (last-layer retraining, pruning do this)
    changed = predict_logits(model, split, torch.device("cpu"))
    assert torch.equal(changed, predict(model, split.images, device="cpu")) and not torch.equal(changed, before)
    fc = model.fc
    fc.weight.data = torch.zeros_like(fc.weight)  # replaced storage, version counter untouched
    assert torch.equal(predict_logits(model, split, torch.device("cpu")), predict(model, split.images, device="cpu"))
    other = toy_split(seed=1)  # another split of the same size
    assert torch.equal(predict_logits(model, other, torch.device("cpu")), predict(model, other.images, device="cpu"))
    with torch.no_grad():
        split.images.mul_(0.5)  # images edited in place
    assert torch.equal(predict_logits(model, split, torch.device("cpu")), predict(model, split.images, device="cpu"))
    assert LOGITS.hits == 0


def test_replaced_storage_never_passes_for_the_old_state():
    """``p.data = new`` keeps the version counter; the freed storage's address could come back for ``new``:
    the memo keeps the old storage alive, so it cannot (seen stale before: a reviewer's reproduction)."""
    x = torch.rand(4, 256)
    for replacements in range(1, 7):  # outside pytest the allocator handed the first address back after 2-3
        model = torch.nn.Linear(256, 256, bias=False)
        LOGITS.get((model, x), "k", lambda m=model: m(x).detach())
        for _ in range(replacements):
            model.weight.data = model.weight.data * 1.5
        got = LOGITS.get((model, x), "k", lambda m=model: m(x).detach())
        torch.testing.assert_close(got, model(x).detach(), rtol=0, atol=0)
    assert LOGITS.hits == 0
    # whether the allocator hands an address back varies; what makes it impossible must hold every time:
    model = torch.nn.Linear(256, 256, bias=False)
    old = model.weight.data_ptr()
    LOGITS.get((model, x), "k", lambda: model(x).detach())
    model.weight.data = model.weight.data * 1.5
    held = [a for entry in LOGITS._entries.values() for a in entry[2]]
    assert any(a.data_ptr() == old for a in held)  # the old storage stays taken while its entry lives


def test_memo_holds_its_objects_weakly_and_a_reused_id_never_hits():
    memo = IdentityMemo(4)
    model = tiny_model()
    memo.get((model,), "k", lambda: 1)
    del model
    gc.collect()
    assert not memo._entries  # not kept alive, and its entry went with it
    # a parameter-free module has the same (empty) state version as any other: only identity tells them apart
    memo = IdentityMemo(4)
    first = torch.nn.ReLU()
    freed_id = id(first)
    memo.get((first,), "k", lambda: "first")
    del first
    reused = 0
    for _ in range(50):  # CPython hands a freed id to the next object of that size: it must not be served
        fresh = torch.nn.ReLU()
        reused += id(fresh) == freed_id
        assert memo.get((fresh,), "k", lambda: "fresh") == "fresh"
        del fresh
    assert memo.hits == 0
    if not reused:  # (the allocator's choice, not the memo's: seen reused at once on CPython 3.11)
        pytest.skip("CPython never handed out the freed id again in this process")
    memo = IdentityMemo(2)
    objs = [torch.zeros(1) for _ in range(3)]
    for i, o in enumerate(objs):
        memo.get((o,), "k", lambda i=i: i)
    assert len(memo._entries) == 2 and memo.get((objs[0],), "k", lambda: "again") == "again"  # least recent dropped


def test_two_pruning_nodes_that_blame_one_prototype_retrain_once_with_the_same_rows():
    data, model = scenario(backdoor=False), wired_protopnet(artifact_class=0)
    metric = metrics.get("prototype-pruning")(epochs=3, lr=0.05)
    first = metric.evaluate(ctx_for(data, model, fake_explain(data, 1)))
    assert RETRAINED.hits == 0
    second = metric.evaluate(ctx_for(data, model, fake_explain(data, 1)))  # another method, same prototype
    assert RETRAINED.hits == 2  # the pruned and the retrained copy served again
    RETRAINED.clear()
    LOGITS.clear()
    fresh = metric.evaluate(ctx_for(data, model, fake_explain(data, 1)))
    assert first == second == fresh
    other = metrics.get("prototype-pruning")(epochs=3, lr=0.05, top_n=2).evaluate(
        ctx_for(data, model, fake_explain(data, 1)))
    assert RETRAINED.hits == 0 and other != first  # another blamed set is another intervention


def test_memo_counts_are_reported():
    model, split = tiny_model(), toy_split()
    predict_logits(model, split, torch.device("cpu"))
    predict_logits(model, split, torch.device("cpu"))
    assert _memo.memo_counts()["logits served again"] == 1


# -- memory_format (the opt-in channels_last layout) ---------------------------------------------------------
def test_channels_last_model_computes_the_same_function():
    torch.manual_seed(0)
    dense = build_model("classifier", num_classes=3, mean=(0.5,) * 3, std=(0.25,) * 3,
                        backbone_options={"widths": [8, 16]})
    torch.manual_seed(0)
    nhwc = build_model("classifier", num_classes=3, mean=(0.5,) * 3, std=(0.25,) * 3,
                       backbone_options={"widths": [8, 16]}, memory_format="channels_last")
    convs = [m.weight for m in nhwc.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in convs)
    x = torch.rand(4, 3, 16, 16)
    torch.testing.assert_close(nhwc.eval()(x), dense.eval()(x), rtol=1e-5, atol=1e-5)
    assert torch.equal(nhwc.state_dict()["fc.weight"], dense.state_dict()["fc.weight"])


def test_channels_last_survives_training_and_the_cache_round_trip():
    from hansbench.bench.engine.nodes.model import model_from_state

    split = toy_split(12)
    config = {"backbone_options": {"widths": [8, 16]}, "epochs": 1, "memory_format": "channels_last"}
    model = train_model("classifier", split, num_classes=3, mean=(0.5,) * 3, std=(0.25,) * 3, config=config,
                        seed=0, device="cpu", progress=False)

    class Data:  # what model_from_state reads
        num_classes, mean, std = 3, (0.5,) * 3, (0.25,) * 3

    loaded = model_from_state("classifier", config, Data(), model.state_dict(), torch.device("cpu"))
    conv = next(m for m in loaded.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(loaded(split.images), model(split.images))


def test_memory_format_is_checked():  # (that it keys the model: tests/bench/engine/test_graph.py)
    with pytest.raises(ValueError, match="memory_format must be one of 'contiguous', 'channels_last'"):
        build_model("classifier", num_classes=3, mean=(0.5,) * 3, std=(0.25,) * 3, memory_format="nhwc")


def test_a_run_reports_the_work_it_shared(tmp_path):
    from hansbench.bench.engine.runner import Runner
    from hansbench.bench.suite.config import load_suite
    from tests.bench.engine.test_graph import TINY

    (tmp_path / "tiny.toml").write_text(TINY)
    suite = load_suite(tmp_path / "tiny.toml", jobs=1)  # the counts of one process (workers keep their own)
    summary = Runner(suite, tmp_path / "out", progress=False).run()
    c = summary.counts
    assert c["maps asked"] >= c["maps computed"] > 0
    line = summary.shared_work()
    assert line.startswith("shared work: maps: ") and f"{c['maps computed']:,} computed" in line
    again = Runner(suite, tmp_path / "out", progress=False).run()  # warm: nothing asked, nothing computed
    assert again.counts.get("maps computed", 0) == 0
