"""SpRAy: Wasserstein kNN with lower-bound pruning vs all pairs; peak memory of SpRAy vs its input.

Maps: heatmap-like noisy Gaussian blobs (one group's blob in a fixed corner), 8x8 after
downsampling, as the quick suite's ``spray-wasserstein`` (``downsample = 8``) sees them.

    pytest benchmarks/bench_spray.py -o python_files=bench_*.py
    python benchmarks/bench_spray.py
"""

from __future__ import annotations

import statistics
import tracemalloc

import numpy as np
import pytest
import torch
from _common import interleaved, machine, ratio

from hansbench.registry import clusterers
from hansbench.testing import blob_maps

N, VIEWS, SIDE, K = 60, 2, 8, 10
ROUNDS = 3


def blobs(n: int = N, views: int = VIEWS, side: int = SIDE, seed: int = 0) -> np.ndarray:
    return blob_maps(n, views, side, seed)


def wasserstein(x: np.ndarray, prune: bool) -> np.ndarray:
    est = clusterers.get("spray-wasserstein")(distance="wasserstein", downsample=None, n_neighbors=K,
                                             time_budget_s=1e9)
    est._prune = prune
    return est.fit_predict(x), est.result_.info


@pytest.mark.parametrize("prune", [True, False], ids=["pruned", "all_pairs"])
def test_spray_wasserstein(benchmark, prune):
    x = blobs()
    benchmark.pedantic(wasserstein, args=(x, prune), rounds=ROUNDS, warmup_rounds=0)


def spray_peak_over_input(n: int = 400, views: int = 4, d: int = 2048) -> float:
    """tracemalloc peak of ``spray.fit_predict`` over the input's size (float64 C-contiguous [N, V, D])."""
    x = np.random.default_rng(0).standard_normal((n, views, d))
    est = clusterers.get("spray")()
    est.fit_predict(x[:20])
    tracemalloc.start()
    est.fit_predict(x)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / x.nbytes


def measure(rounds: int = ROUNDS) -> dict:
    x = blobs()
    (a, _), (b, info) = wasserstein(x, False), wasserstein(x, True)
    assert (a == b).all()
    times = interleaved({"all_pairs": lambda: wasserstein(x, False), "pruned": lambda: wasserstein(x, True)},
                        torch.device("cpu"), rounds=rounds)
    return {"times": times, "wasserstein": ratio(times, "all_pairs", "pruned"),
            "solved": info["ot_pairs_solved"] / info["ot_pairs"], "peak_over_input": spray_peak_over_input()}


if __name__ == "__main__":
    print(f"{machine()}; {N} samples x {VIEWS} views of {SIDE}x{SIDE}, k = {K}; {ROUNDS} interleaved rounds")
    r = measure()
    for k, v in r["times"].items():
        print(f"{k:10s} median {statistics.median(v):.2f} s")
    print(f"all pairs / pruned: {r['wasserstein'][0]:.2f}x (rounds {r['wasserstein'][1]:.2f}-{r['wasserstein'][2]:.2f}); "
          f"{r['solved']:.0%} of the pairs solved")
    print(f"spray peak traced memory / input size: {r['peak_over_input']:.3f}")
