"""PRP over all prototypes of a class: one view-batched backward vs two baselines, and the gradient units.

- **per-prototype backward** (the fair baseline): one forward+backward over the whole batch for
  each prototype view, V passes (``prp_per_view_loop``);
- **reference loop** (the authors' code): one forward+backward per (image, prototype), batch 1,
  B x V passes (``prp_reference_loop``).

All use the same zennit composite, so the ratios measure batching alone. ``pytest
benchmarks/bench_prp.py`` times them with pytest-benchmark; ``python benchmarks/bench_prp.py``
prints interleaved ratios and every explainer of this family in gradient units (explainer time
/ the harness's unit: the input gradient of the target logits, ``hansbench.bench.engine.kernel_timer``).
"""

from __future__ import annotations

import statistics

import pytest
import torch
from _common import eval_model, interleaved, machine, ratio

from hansbench.bench.engine.kernel_timer import gradient_pass, time_call
from hansbench.methods.explainers import _zennit
from hansbench.methods.explainers.prp import PRP, class_prototype_views, prp_composite
from hansbench.models.backbones import build_backbone
from hansbench.models.classifier import Classifier
from hansbench.models.protopnet import ProtoPNet
from hansbench.registry import explainers
from hansbench.testing import prp_reference_loop

BATCH, SIZE, CLASSES, PER_CLASS, DIM = 16, 32, 5, 5, 32  # the quick suite's ProtoPNet shape
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
ROUNDS = 5


def make_protopnet() -> ProtoPNet:
    torch.manual_seed(0)
    return eval_model(ProtoPNet(build_backbone("small-resnet"), CLASSES, MEAN, STD, PER_CLASS, DIM), SIZE)


def make_classifier() -> Classifier:
    torch.manual_seed(0)
    return eval_model(Classifier(build_backbone("small-resnet"), CLASSES, MEAN, STD), SIZE)


def make_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(BATCH, 3, SIZE, SIZE, generator=g) - 0.5) / 0.25
    return x, torch.arange(BATCH) % CLASSES


def prp_per_view_loop(model: ProtoPNet, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PRP with one forward+backward over the whole batch per prototype view (V passes)."""
    views = class_prototype_views(model, target)  # [B, V]
    maps = torch.zeros(*views.shape, *x.shape[-2:])
    with _zennit.explaining(model, prp_composite(model)) as hooked:
        for v in range(views.shape[1]):
            idx, ok = views[:, v:v + 1].clamp(min=0), (views[:, v:v + 1] >= 0)
            xg = x.detach().requires_grad_(True)
            s = hooked.scores(xg)
            start = torch.zeros_like(s).scatter(1, idx, s.detach().gather(1, idx) * ok)
            (r,) = torch.autograd.grad(s, xg, start)
            maps[:, v] = r.sum(1)
    return maps


@pytest.fixture(scope="module")
def setup():
    return make_protopnet(), *make_batch()


def test_prp_batched(benchmark, setup):
    model, x, t = setup
    benchmark.pedantic(PRP().explain, args=(model, x, t), rounds=ROUNDS, warmup_rounds=1)


def test_prp_per_view_loop(benchmark, setup):
    model, x, t = setup
    benchmark.pedantic(prp_per_view_loop, args=(model, x, t), rounds=ROUNDS, warmup_rounds=1)


def test_prp_reference_loop(benchmark, setup):
    model, x, t = setup
    benchmark.pedantic(prp_reference_loop, args=(model, x, t), rounds=3, warmup_rounds=0)


def measure(rounds: int = ROUNDS) -> dict:
    """Interleaved ratios (CPU here; the device is the timer's) and the gradient units of the family."""
    proto, clf = make_protopnet(), make_classifier()
    x, t = make_batch()
    dev = torch.device("cpu")
    batched = PRP().explain(proto, x, t)
    torch.testing.assert_close(prp_per_view_loop(proto, x, t), batched, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(prp_reference_loop(proto, x, t), batched, rtol=1e-4, atol=1e-5)
    times = interleaved({"batched": lambda: PRP().explain(proto, x, t),
                         "per_view": lambda: prp_per_view_loop(proto, x, t),
                         "reference": lambda: prp_reference_loop(proto, x, t)}, dev, rounds=rounds)
    units = {kind: time_call(gradient_pass(m, x, t), dev, repeats=5).median_s
             for kind, m in (("protopnet", proto), ("classifier", clf))}
    family = {}
    for name in ("prp", "protopnet-lrp", "protopnet-upsampling", "lrp", "lrp-epsilon-plus-flat",
                 "lrp-epsilon-gamma-box"):
        exp = explainers.get(name)()
        model = proto if "protopnet" in exp.model_kinds else clf
        sec = time_call(lambda exp=exp, model=model: exp.explain(model, x, t), dev, repeats=3).median_s
        family[name] = (sec * 1e3 / BATCH, sec / units[model.kind])
    return {"times": times, "per_view": ratio(times, "per_view", "batched"),
            "reference": ratio(times, "reference", "batched"), "units": units, "family": family}


def main() -> None:
    print(f"{machine()}; batch {BATCH}, {SIZE} px, small-resnet, ProtoPNet {CLASSES} classes x {PER_CLASS} "
          f"prototypes, D={DIM}; {ROUNDS} interleaved rounds")
    r = measure()
    med = {k: statistics.median(v) * 1e3 for k, v in r["times"].items()}
    print(f"PRP batched {med['batched']:.1f} ms; one backward per prototype over the batch {med['per_view']:.1f} ms "
          f"({r['per_view'][0]:.2f}x, rounds {r['per_view'][1]:.2f}-{r['per_view'][2]:.2f}); reference loop "
          f"(batch 1) {med['reference']:.1f} ms ({r['reference'][0]:.2f}x, rounds "
          f"{r['reference'][1]:.2f}-{r['reference'][2]:.2f})")
    for kind, unit in r["units"].items():
        print(f"gradient unit ({kind}): {unit * 1e3:.1f} ms per batch, {unit * 1e3 / BATCH:.2f} ms/image")
    for name, (ms, units) in r["family"].items():
        print(f"{name:24s} {ms:7.2f} ms/image  {units:6.1f} gradient units")


if __name__ == "__main__":
    main()
