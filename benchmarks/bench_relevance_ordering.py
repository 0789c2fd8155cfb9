"""Relevance ordering: hansbench's batched pixel flipping vs Quantus' PixelFlipping on the same work.

Work: 50 images x 24 perturbation steps on a small-resnet classifier at 32 px (the quick
suite's size), deletion towards a black baseline. Quantus 0.6.0 perturbs C*H*W features
and requires ``features_in_step`` to divide H*W, so 24 steps of 128 features is the closest
to our 20 steps of 5 %; we run 25 points (24 steps + the start), i.e. one forward more.

    pytest benchmarks/bench_relevance_ordering.py          # pytest-benchmark
    python benchmarks/bench_relevance_ordering.py          # prints both times and the ratio
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from hansbench.metrics._perturbation import ordering_curves
from hansbench.models.backbones import build_backbone
from hansbench.models.classifier import Classifier

N, SIZE, STEPS = 50, 32, 24


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
        curves = ordering_curves(model, images, torch.zeros_like(images), maps, n_steps=STEPS + 1, mode="deletion")
    return curves.cpu()[torch.arange(N), 0, :, targets].numpy()


def run_quantus(model, images, maps, targets) -> np.ndarray:
    import quantus

    if not hasattr(np, "trapz"):  # Quantus 0.6.0 calls np.trapz, removed in NumPy 2.4
        np.trapz = np.trapezoid
    metric = quantus.PixelFlipping(features_in_step=3 * SIZE * SIZE // STEPS, normalise=False,
                                   perturb_baseline="black", disable_warnings=True)
    device = str(images.device)
    return np.asarray(metric(model=model, x_batch=images.cpu().numpy(), y_batch=targets.numpy(),
                             a_batch=maps.cpu().numpy(), softmax=False, channel_first=True, device=device,
                             batch_size=64))


def test_bench_ours(benchmark):
    args = setup()
    out = benchmark(run_ours, *args)
    assert out.shape == (N, STEPS + 1)


def test_bench_quantus(benchmark):
    pytest.importorskip("quantus")
    args = setup()
    out = benchmark.pedantic(run_quantus, args=args, rounds=3, iterations=1)
    assert out.shape == (N, STEPS)


def _times(fn, args, repeats: int) -> list[float]:
    fn(*args)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return times


def _forward_floor(model, images, maps, targets) -> None:
    """The same number of plain forwards (25 x 50 images), nothing else: no method can beat it."""
    with torch.no_grad():
        for _ in range(STEPS + 1):
            model(images)
    if images.is_cuda:
        torch.cuda.synchronize()


if __name__ == "__main__":
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args = setup(device)
    print(f"device={device} threads={torch.get_num_threads()} images={N} steps={STEPS} size={SIZE}")
    results = {}
    for label, fn in (("forward floor", _forward_floor), ("hansbench", run_ours), ("quantus", run_quantus)):
        t = _times(fn, args, 5)
        results[label] = t
        print(f"{label:14s} median {np.median(t) * 1e3:8.1f} ms   min {min(t) * 1e3:8.1f} ms")
    q, o = results["quantus"], results["hansbench"]
    print(f"speed-up (quantus / hansbench): median {np.median(q) / np.median(o):.2f}x, min {min(q) / min(o):.2f}x")
