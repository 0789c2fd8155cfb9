"""CRP batched over concepts vs one masked backward over B*k repeated images; the gradient unit's cost.

    pytest benchmarks/bench_explainers.py -o python_files=bench_*.py
    python benchmarks/bench_explainers.py
"""

from __future__ import annotations

import statistics

import pytest
import torch
from _common import MEAN, STD, eval_model, interleaved, machine, ratio

from hansbench.bench.engine.kernel_timer import gradient_pass
from hansbench.models.backbones import build_backbone
from hansbench.models.classifier import Classifier
from hansbench.registry import explainers

BATCH, SIZE, CLASSES, K = 16, 32, 5, 6  # the quick suite's CRP (k = 6) and timing batch (16)
ROUNDS = 5


def setup():
    torch.manual_seed(0)
    model = eval_model(Classifier(build_backbone("small-resnet"), CLASSES, MEAN, STD), SIZE)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(BATCH, 3, SIZE, SIZE, generator=g) - 0.5) / 0.25
    t = torch.arange(BATCH) % CLASSES
    n_ch = model.cam_layer.conv2.out_channels
    channels = torch.stack([torch.randperm(n_ch, generator=g)[:K] for _ in range(BATCH)])
    return model, x, t, channels


def backward_with_weight_grads(model, x, t):
    """The gradient unit before: ``.backward()`` (weight gradients too), then zero_grad."""
    def run():
        xi = x.detach().requires_grad_(True)
        model(xi).gather(1, t.view(-1, 1)).sum().backward()
        model.zero_grad(set_to_none=True)
    return run


@pytest.mark.parametrize("path", ["batched", "reference"])
def test_crp(benchmark, path):
    model, x, t, ch = setup()
    crp = explainers.get("crp")(k=K)
    fn = crp.conditional_maps if path == "batched" else crp.conditional_maps_reference
    benchmark.pedantic(fn, args=(model, x, t, ch), rounds=ROUNDS, warmup_rounds=1)


@pytest.mark.parametrize("unit", ["input_gradient", "with_weight_grads"])
def test_gradient_unit(benchmark, unit):
    model, x, t, _ = setup()
    fn = gradient_pass(model, x, t) if unit == "input_gradient" else backward_with_weight_grads(model, x, t)
    benchmark.pedantic(fn, rounds=ROUNDS * 2, warmup_rounds=1)


def measure(rounds: int = ROUNDS) -> dict:
    model, x, t, ch = setup()
    crp = explainers.get("crp")(k=K)
    torch.testing.assert_close(crp.conditional_maps(model, x, t, ch), crp.conditional_maps_reference(model, x, t, ch),
                               rtol=1e-5, atol=1e-7)
    dev = torch.device("cpu")
    times = interleaved({"crp_reference": lambda: crp.conditional_maps_reference(model, x, t, ch),
                         "crp_batched": lambda: crp.conditional_maps(model, x, t, ch),
                         "unit_old": backward_with_weight_grads(model, x, t),
                         "unit_input": gradient_pass(model, x, t)}, dev, rounds=rounds, repeats=3)
    return {"times": times, "crp": ratio(times, "crp_reference", "crp_batched"),
            "unit": ratio(times, "unit_old", "unit_input")}


if __name__ == "__main__":
    print(f"{machine()}; batch {BATCH}, {SIZE} px, small-resnet, CRP k = {K}; {ROUNDS} interleaved rounds")
    r = measure()
    for k, v in r["times"].items():
        print(f"{k:14s} median {statistics.median(v) * 1e3:8.1f} ms")
    print(f"CRP reference / batched: {r['crp'][0]:.2f}x (rounds {r['crp'][1]:.2f}-{r['crp'][2]:.2f})")
    print(f"unit with weight grads / input gradient: {r['unit'][0]:.2f}x (rounds {r['unit'][1]:.2f}-{r['unit'][2]:.2f})")
