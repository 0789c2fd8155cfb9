"""PRP over all prototypes of a class: one batched backward vs the reference code's loop.

The reference implementation runs one forward+backward per (image, prototype); ``prp``
replicates the batch ``B x V`` and runs one. Both use the same zennit composite, registered
once, so the ratio measures batching alone. ``pytest benchmarks/bench_prp.py`` times both
with pytest-benchmark; ``python benchmarks/bench_prp.py`` prints the ratio and ms/image of
every explainer of this family with the gradient units (explainer time / one plain
forward+backward of the same model and batch).
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch

from hansbench.methods.explainers.prp import PRP, prp_reference_loop
from hansbench.models.backbones import build_backbone
from hansbench.models.classifier import Classifier
from hansbench.models.protopnet import ProtoPNet
from hansbench.registry import explainers

BATCH, SIZE, CLASSES, PER_CLASS, DIM = 32, 32, 5, 10, 64
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _eval(model: torch.nn.Module) -> torch.nn.Module:
    model.train()
    with torch.no_grad():
        model(torch.randn(16, 3, SIZE, SIZE))
    return model.eval()


def make_protopnet() -> ProtoPNet:
    torch.manual_seed(0)
    return _eval(ProtoPNet(build_backbone("small-resnet"), CLASSES, MEAN, STD, PER_CLASS, DIM))


def make_classifier() -> Classifier:
    torch.manual_seed(0)
    return _eval(Classifier(build_backbone("small-resnet"), CLASSES, MEAN, STD))


def make_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(BATCH, 3, SIZE, SIZE, generator=g) - 0.5) / 0.25
    return x, torch.arange(BATCH) % CLASSES


def plain_backward(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """One plain forward+backward (input gradient of the target logit): the gradient unit."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(model(xg).gather(1, target.view(-1, 1)).sum(), xg)
    return g


@pytest.fixture(scope="module")
def setup():
    return make_protopnet(), *make_batch()


def test_prp_batched(benchmark, setup):
    model, x, t = setup
    benchmark.pedantic(PRP().explain, args=(model, x, t), rounds=3, warmup_rounds=1)


def test_prp_reference_loop(benchmark, setup):
    model, x, t = setup
    benchmark.pedantic(prp_reference_loop, args=(model, x, t), rounds=1, warmup_rounds=0)


def _time(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    proto, clf = make_protopnet(), make_classifier()
    x, t = make_batch()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {BATCH}, {SIZE} px, "
        f"small-resnet, ProtoPNet {CLASSES} classes x {PER_CLASS} prototypes, D={DIM}"
    )
    batched = _time(lambda: PRP().explain(proto, x, t))
    loop = _time(lambda: prp_reference_loop(proto, x, t), repeats=1)
    assert torch.allclose(PRP().explain(proto, x, t), prp_reference_loop(proto, x, t), atol=1e-5, rtol=1e-4)
    print(f"PRP batched {batched * 1e3:.1f} ms, reference loop {loop * 1e3:.1f} ms: {loop / batched:.1f}x faster")
    units = {
        "protopnet": _time(lambda: plain_backward(proto, x, t)),
        "classifier": _time(lambda: plain_backward(clf, x, t)),
    }
    for kind, unit in units.items():
        print(f"plain forward+backward ({kind}): {unit * 1e3:.1f} ms per batch, {unit * 1e3 / BATCH:.2f} ms/image")
    for name in (
        "prp",
        "protopnet-lrp",
        "protopnet-upsampling",
        "lrp",
        "lrp-epsilon-plus-flat",
        "lrp-epsilon-gamma-box",
    ):
        exp = explainers.get(name)()
        model = proto if "protopnet" in exp.model_kinds else clf
        sec = _time(lambda exp=exp, model=model: exp.explain(model, x, t))
        print(f"{name:24s} {sec * 1e3 / BATCH:7.2f} ms/image  {sec / units[model.kind]:6.1f} gradient units")


if __name__ == "__main__":
    main()
