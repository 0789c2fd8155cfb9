"""One timer for every kernel: warm-up, repeats, median.

CUDA events with synchronisation on a GPU, ``perf_counter`` on the CPU; peak memory
from the CUDA allocator, or the process's peak RSS growth on the CPU.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Timing:
    median_s: float
    repeats: int
    peak_memory_bytes: int

    def per_item_ms(self, n: int) -> float:
        return 1000 * self.median_s / max(n, 1)


def _rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def time_call(fn: Callable[[], object], device: torch.device, *, warmup: int = 1, repeats: int = 3) -> Timing:
    """Median wall time of ``fn()`` on ``device`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    rss0 = _rss_bytes()
    times = []
    for _ in range(max(repeats, 1)):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) if cuda else max(_rss_bytes() - rss0, 0)
    return Timing(statistics.median(times), len(times), int(peak))


def gradient_pass(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> Callable[[], None]:
    """One plain forward+backward of the target logits: the unit every backprop method pays."""

    def run() -> None:
        xi = x.detach().requires_grad_(True)
        out = model(xi)
        out.gather(1, target.view(-1, 1)).sum().backward()
        model.zero_grad(set_to_none=True)

    return run
