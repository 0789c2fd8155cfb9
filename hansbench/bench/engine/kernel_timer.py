"""One timer for every kernel: warm-up, repeats, median.

CUDA events recorded on the timed device's current stream, with synchronisation, on a GPU;
``perf_counter`` on the CPU. Peak memory means the same on both: the peak *above the level
before the timed calls* -- on a GPU ``max_memory_allocated(device)`` after
``reset_peak_memory_stats(device)`` minus ``memory_allocated(device)`` before; on the CPU the
peak growth of the process's RSS (sampled every 2 ms; memory freed and reused stays invisible).

The gradient unit (:func:`gradient_pass`) is one forward plus one backward to the input: the
input gradient of the explained logits, ``torch.autograd.grad(logit_sum, x)``, no parameter
gradients -- the floor every backpropagation explainer pays, and what every benchmark divides by.
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
    """One timed call: median seconds over the repeats and the peak memory."""
    median_s: float
    repeats: int
    peak_memory_bytes: int

    def per_item_ms(self, n: int) -> float:
        """The median in milliseconds per item of a batch of ``n``."""
        return 1000 * self.median_s / max(n, 1)


def _rss_bytes() -> int:
    """Current resident set size (Linux ``/proc``), else the process's peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss if sys.platform == "darwin" else rss * 1024


class RSSPeak:
    """Samples RSS in a thread while the timed calls run (torch's CPU allocator is invisible to tracemalloc)."""

    def __init__(self, interval_s: float = 0.002):
        self.interval_s, self.peak, self._stop = interval_s, 0, threading.Event()

    def __enter__(self) -> RSSPeak:
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
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        return _time_cuda(fn, device, repeats)
    times = []
    with RSSPeak() as sampler:
        for _ in range(max(repeats, 1)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), len(times), int(sampler.peak))


def _time_cuda(fn: Callable[[], object], device: torch.device, repeats: int) -> Timing:
    """CUDA events on ``device``'s current stream (not the current device's), peak above the start level."""
    with torch.cuda.device(device):
        stream = torch.cuda.current_stream(device)
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(max(repeats, 1)):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(stream)
            fn()
            end.record(stream)
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1000)
        peak = torch.cuda.max_memory_allocated(device) - before
    return Timing(statistics.median(times), len(times), int(max(peak, 0)))


def input_gradient(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The gradient unit's work: d(sum of the target logits)/dx -- one forward, one backward to the
    input, no parameter gradients (``autograd.grad`` w.r.t. x only: weight-gradient kernels never run)."""
    with torch.enable_grad():
        xi = x.detach().requires_grad_(True)
        out = model(xi)
        (grad,) = torch.autograd.grad(out.gather(1, target.to(out.device).view(-1, 1)).sum(), xi)
    return grad


def gradient_pass(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> Callable[[], torch.Tensor]:
    """The gradient unit as a timed call: :func:`input_gradient` of ``model`` on ``x`` (returns it)."""

    def run() -> torch.Tensor:
        return input_gradient(model, x, target)

    return run
