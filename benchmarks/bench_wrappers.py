"""Wrapper overhead: each hansbench explainer vs the library it wraps, called directly with the same settings.

- ``gradcam`` vs captum's ``LayerGradCam(model, model.cam_layer)`` + ``LayerAttribution.interpolate``
  (ReLU, bilinear);
- ``integrated-gradients`` vs captum's ``IntegratedGradients`` (zero baseline, 16 Gauss-Legendre
  steps, ``internal_batch_size`` 256), channels summed;
- ``lrp`` / ``lrp-epsilon-plus-flat`` / ``lrp-epsilon-gamma-box`` vs zennit's ``Gradient``
  attributor with the same composite and canonizers (LRP-CMP; ``EpsilonPlusFlat`` and
  ``EpsilonGammaBox`` with the ResNet canonizer), started at the target logit;
- ``crp`` vs zennit-crp's ``CondAttribution`` with the same conditions (``{"y": [target],
  <cam layer>: [channel]}`` per image and concept, ``EpsilonPlusFlat`` + ResNet canonizer, on a
  copy of the model: CondAttribution switches off the parameters' ``requires_grad``).

The outputs are checked equal before timing. Target: ours / direct <= 1.1x. Small ResNet,
batch 16 (the quick suite's), at 32 px (where a per-call Python cost weighs most) and 64 px.

    pytest benchmarks/bench_wrappers.py -o python_files=bench_*.py   # 32 px, pytest-benchmark
    python benchmarks/bench_wrappers.py                              # interleaved ratios
"""

from __future__ import annotations

import argparse
import copy
import statistics

import pytest
import torch
from _common import batch, classifier, interleaved, load, machine, ratio
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam
from zennit.attribution import Gradient
from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat
from zennit.torchvision import ResNetCanonizer

from hansbench.methods.explainers import _zennit
from hansbench.methods.explainers.crp import module_name
from hansbench.registry import explainers

BATCH, CLASSES, K, IG_STEPS = 16, 5, 6, 16
SIZES = (32, 64)
ROUNDS = 5
TARGET = 1.1
NAMES = ("gradcam", "integrated-gradients", "lrp", "lrp-epsilon-plus-flat", "lrp-epsilon-gamma-box", "crp")


def _zennit_direct(model, composite_fn, x, t):
    def run():
        onehot = torch.nn.functional.one_hot(t, CLASSES).to(x.dtype)
        with Gradient(model=model, composite=composite_fn()) as attributor:
            _, rel = attributor(x, lambda out: out * onehot)
        return rel.sum(1, keepdim=True)
    return run


def pairs(size: int) -> dict[str, tuple]:
    """{name: (ours, direct)} zero-argument callables on one model and batch."""
    model = classifier("small-resnet", size, CLASSES)
    x, t = batch(BATCH, size, CLASSES)
    n_ch = model.cam_layer.conv2.out_channels
    g = torch.Generator().manual_seed(2)
    table = torch.stack([torch.randperm(n_ch, generator=g)[:K] for _ in range(CLASSES)])  # [classes, K]
    out = {}

    cam = explainers.get("gradcam")()

    def gradcam_direct():
        a = LayerGradCam(model, model.cam_layer).attribute(x, target=t, relu_attributions=True)
        return LayerAttribution.interpolate(a.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear")
    out["gradcam"] = (lambda: cam.explain(model, x, t), gradcam_direct)

    ig = explainers.get("integrated-gradients")(n_steps=IG_STEPS)

    def ig_direct():
        a = IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=t, n_steps=IG_STEPS,
                                                 method="gausslegendre", internal_batch_size=256)
        return a.detach().sum(1, keepdim=True)
    out["integrated-gradients"] = (lambda: ig.explain(model, x, t), ig_direct)

    low, high = _zennit.zbox_bounds(model)
    composites = {"lrp": lambda: _zennit.lrp_cmp_composite(model),
                  "lrp-epsilon-plus-flat": lambda: EpsilonPlusFlat(canonizers=[ResNetCanonizer()]),
                  "lrp-epsilon-gamma-box": lambda: EpsilonGammaBox(low=low, high=high,
                                                                   canonizers=[ResNetCanonizer()])}
    for name, comp in composites.items():
        exp = explainers.get(name)()
        out[name] = (lambda exp=exp: exp.explain(model, x, t), _zennit_direct(model, comp, x, t))

    crp = explainers.get("crp")(k=K)
    crp._concepts = table
    from crp.attribution import CondAttribution

    ref_model = copy.deepcopy(model)
    attribution = CondAttribution(ref_model)
    layer = module_name(ref_model, ref_model.cam_layer)
    conditions = [{"y": [int(ti)], layer: [int(c)]} for ti in t for c in table[ti]]

    def crp_direct():
        data = x.repeat_interleave(K, 0).requires_grad_(True)
        res = attribution(data, conditions, EpsilonPlusFlat(canonizers=[ResNetCanonizer()]))
        return res.heatmap.view(BATCH, K, *x.shape[-2:])
    out["crp"] = (lambda: crp.explain(model, x, t), crp_direct)
    return out


def check_equal(p: dict) -> None:
    for name, (ours, direct) in p.items():
        torch.testing.assert_close(ours().float(), direct().float(), rtol=1e-4, atol=1e-6,
                                   msg=lambda m, name=name: f"{name}: ours != direct: {m}")


def measure(rounds: int = ROUNDS, sizes=SIZES) -> dict:
    """{(name, size): (ours/direct, lo, hi)} interleaved; outputs checked equal first."""
    res = {}
    for size in sizes:
        p = pairs(size)
        check_equal(p)
        for name, (ours, direct) in p.items():
            times = interleaved({"ours": ours, "direct": direct}, torch.device("cpu"), rounds=rounds)
            res[(name, size)] = (*ratio(times, "ours", "direct"), statistics.median(times["direct"]))
        res[("load", size)] = load()
    return res


# -- pytest-benchmark: 32 px -----------------------------------------------------------------
@pytest.fixture(scope="module")
def pairs32():
    p = pairs(32)
    check_equal(p)
    return p


@pytest.mark.parametrize("side", ["ours", "direct"])
@pytest.mark.parametrize("name", NAMES)
def test_wrapper(benchmark, pairs32, name, side):
    benchmark.pedantic(pairs32[name][0 if side == "ours" else 1], rounds=5, warmup_rounds=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=ROUNDS)
    args = p.parse_args()
    print(f"{machine()}; small-resnet, batch {BATCH}; {args.rounds} interleaved rounds; outputs checked equal")
    for (name, size), r in measure(args.rounds).items():
        if name == "load":
            print(f"load at the end of {size} px: {r:.1f}")
            continue
        print(f"{name:24s} {size} px: ours / direct {r[0]:.3f}x ({r[1]:.3f}-{r[2]:.3f}), direct {r[3] * 1e3:.1f} ms "
              f"({'met' if r[0] <= TARGET else 'NOT met'}, <= {TARGET}x)")


if __name__ == "__main__":
    main()
