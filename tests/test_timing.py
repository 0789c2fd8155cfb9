"""The timer measures what it is given: medians, repeats, and memory of a large allocation."""

from __future__ import annotations

import time

import torch

from hansbench.bench.timing import gradient_pass, time_call


def test_median_time_and_repeats():
    calls = []

    def work():
        calls.append(1)
        time.sleep(0.02)

    t = time_call(work, torch.device("cpu"), warmup=2, repeats=3)
    assert len(calls) == 5 and t.repeats == 3
    assert 0.015 < t.median_s < 0.2
    assert t.per_item_ms(4) == 1000 * t.median_s / 4


def test_cpu_peak_memory_sees_a_large_allocation():
    def alloc():
        x = torch.ones(64, 1024, 1024)  # 256 MiB, touched
        time.sleep(0.05)
        return x.sum()

    t = time_call(alloc, torch.device("cpu"), warmup=0, repeats=1)
    assert t.peak_memory_bytes > 128 * 2**20
    small = time_call(lambda: torch.ones(10).sum(), torch.device("cpu"), warmup=0, repeats=1)
    assert small.peak_memory_bytes < 64 * 2**20


def test_gradient_pass_backpropagates_the_target_logits(tiny_classifier, tiny_images):
    run = gradient_pass(tiny_classifier, tiny_images, torch.tensor([0, 1, 2, 0]))
    run()
    assert all(p.grad is None for p in tiny_classifier.parameters())  # cleaned up after itself
