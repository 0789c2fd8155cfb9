"""One timer for every kernel: warm-up, repeats, median.

CUDA events with synchronisation on a GPU, ``perf_counter`` on the CPU; peak memory
from the CUDA allocator, or on the CPU the peak growth of the process's RSS above its level
before the timed calls (sampled every 2 ms; memory freed and reused stays invisible).
"""

from __future__ import annotations

import resource
import statistics
import sys
import threading
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
    """Current resident set size (Linux ``/proc``), else the process's peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss if sys.platform == "darwin" else rss * 1024


class _RSSPeak:
    """Samples RSS in a thread while the timed calls run (torch's CPU allocator is invisible to tracemalloc)."""

    def __init__(self, interval_s: float = 0.002):
        self.interval_s, self.peak, self._stop = interval_s, 0, threading.Event()

    def __enter__(self) -> _RSSPeak:
        self.base = _rss_bytes()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes() - self.base)
            self._stop.wait(self.interval_s)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes() - self.base)


def time_call(fn: Callable[[], object], device: torch.device, *, warmup: int = 1, repeats: int = 3) -> Timing:
    """Median wall time of ``fn()`` on ``device`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    sampler = _RSSPeak() if not cuda else None
    if sampler:
        sampler.__enter__()
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
    if sampler:
        sampler.__exit__(None, None, None)
    peak = torch.cuda.max_memory_allocated(device) if cuda else sampler.peak
    return Timing(statistics.median(times), len(times), int(peak))


def gradient_pass(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> Callable[[], None]:
    """One plain forward+backward of the target logits: the unit every backprop method pays."""

    def run() -> None:
        xi = x.detach().requires_grad_(True)
        out = model(xi)
        out.gather(1, target.view(-1, 1)).sum().backward()
        model.zero_grad(set_to_none=True)

    return run
