"""Relevance ordering: hansbench's batched pixel flipping vs its forward floor and vs Quantus' PixelFlipping.

Work: 50 images on a small-resnet classifier at 32 px (the quick suite's size), deletion
towards a black baseline, **25 curve points = 24 perturbation steps + the unperturbed start**,
i.e. 25 forwards of 50 images. Quantus 0.6.0 perturbs C*H*W features and requires
``features_in_step`` to divide H*W, so it runs 24 steps of 128 features (24 forwards, it does
not score the start); the Quantus ratio is reported, not a target. The *forward floor* is the
same 25 plain forwards of the 50 images and nothing else: no implementation can beat it; the
target is ours <= 1.2x the floor.

    pytest benchmarks/bench_relevance_ordering.py -o python_files=bench_*.py   # pytest-benchmark
    python benchmarks/bench_relevance_ordering.py                              # interleaved ratios
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
from _common import interleaved, machine, quantus, ratio

from hansbench.metrics._perturbation import ordering_curves
from hansbench.models.backbones import build_backbone
from hansbench.models.classifier import Classifier

N, SIZE, STEPS = 50, 32, 24
POINTS = STEPS + 1  # curve points our code computes (one forward of N images each)
ROUNDS = 5


def setup(device: str = "cpu"):
    torch.manual_seed(0)
    model = Classifier(build_backbone("small-resnet"), 5, (0.5,) * 3, (0.25,) * 3).to(device).eval()
    g = torch.Generator().manual_seed(0)
    images = ((torch.rand(N, 3, SIZE, SIZE, generator=g) - 0.5) / 0.25).to(device)
    maps = torch.randn(N, 1, SIZE, SIZE, generator=g).to(device)
    targets = torch.randint(0, 5, (N,), generator=g)
    return model, images, maps, targets


def run_ours(model, images, maps, targets) -> np.ndarray:
    with torch.no_grad():
        curves = ordering_curves(model, images, torch.zeros_like(images), maps, n_steps=POINTS, mode="deletion")
    return curves.cpu()[torch.arange(N), 0, :, targets].numpy()


def run_quantus(model, images, maps, targets) -> np.ndarray:
    metric = quantus().PixelFlipping(features_in_step=3 * SIZE * SIZE // STEPS, normalise=False,
                                     perturb_baseline="black", disable_warnings=True)
    return np.asarray(metric(model=model, x_batch=images.cpu().numpy(), y_batch=targets.numpy(),
                             a_batch=maps.cpu().numpy(), softmax=False, channel_first=True,
                             device=str(images.device), batch_size=64))


def forward_floor(model, images, maps, targets) -> None:
    """The same forwards (25 x 50 images, in ordering_curves' batches: 64 on CPU, 1024 on GPU), nothing else."""
    batch = 1024 if images.is_cuda else 64
    stacked = images.repeat(POINTS, 1, 1, 1)
    with torch.no_grad():
        for lo in range(0, stacked.shape[0], batch):
            model(stacked[lo:lo + batch])


def test_bench_ours(benchmark):
    out = benchmark.pedantic(run_ours, args=setup(), rounds=ROUNDS, warmup_rounds=1)
    assert out.shape == (N, POINTS)


def test_bench_forward_floor(benchmark):
    benchmark.pedantic(forward_floor, args=setup(), rounds=ROUNDS, warmup_rounds=1)


def test_bench_quantus(benchmark):
    pytest.importorskip("quantus")
    out = benchmark.pedantic(run_quantus, args=setup(), rounds=3, warmup_rounds=0)
    assert out.shape == (N, STEPS)


def measure(rounds: int = ROUNDS, with_quantus: bool = True) -> dict:
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args = setup(str(dev))
    fns = {"ours": lambda: run_ours(*args), "floor": lambda: forward_floor(*args)}
    if with_quantus:
        try:
            quantus()
            fns["quantus"] = lambda: run_quantus(*args)
        except ImportError:
            pass
    times = interleaved(fns, dev, rounds=rounds)
    out = {"times": times, "floor": ratio(times, "ours", "floor")}
    if "quantus" in times:
        out["quantus"] = ratio(times, "quantus", "ours")
    return out


if __name__ == "__main__":
    print(f"{machine()}; {N} images x {POINTS} points ({STEPS} steps), {SIZE} px; {ROUNDS} interleaved rounds")
    r = measure()
    for k, v in r["times"].items():
        print(f"{k:8s} median {statistics.median(v) * 1e3:8.1f} ms")
    print(f"ours / forward floor: {r['floor'][0]:.2f}x (target <= 1.2x); rounds {r['floor'][1]:.2f}-{r['floor'][2]:.2f}")
    if "quantus" in r:
        print(f"quantus / ours: {r['quantus'][0]:.2f}x (reported); rounds {r['quantus'][1]:.2f}-{r['quantus'][2]:.2f}")
