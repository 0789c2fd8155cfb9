"""The timer measures what it is given; the gradient unit is the input gradient; GPU paths never sync needlessly.

CUDA tests are marked ``cuda`` and skipped without a GPU (``pytest -m cuda tests`` on a GPU machine).
"""

from __future__ import annotations

import copy
import time

import pytest
import torch

from hansbench.bench.engine.kernel_timer import gradient_pass, input_gradient, time_call
from hansbench.methods.explainers import _zennit
from hansbench.registry import explainers

TARGET = torch.tensor([0, 1, 2, 0])
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


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


def _reference_input_gradient(model, x, target):
    model = copy.deepcopy(model)
    xi = x.detach().clone().requires_grad_(True)
    model(xi).gather(1, target.view(-1, 1)).sum().backward()
    return xi.grad


def test_gradient_pass_is_the_input_gradient_of_the_target_logits(tiny_classifier, tiny_images):
    """Fails if the unit does nothing, backpropagates something else, or leaves parameter gradients."""
    requires = [p.requires_grad for p in tiny_classifier.parameters()]
    grad = gradient_pass(tiny_classifier, tiny_images, TARGET)()
    ref = _reference_input_gradient(tiny_classifier, tiny_images, TARGET)
    assert ref.abs().max() > 0
    torch.testing.assert_close(grad, ref)
    assert all(p.grad is None for p in tiny_classifier.parameters())  # no weight gradients computed
    assert [p.requires_grad for p in tiny_classifier.parameters()] == requires
    other = input_gradient(tiny_classifier, tiny_images, torch.tensor([1, 2, 0, 1]))
    assert not torch.allclose(other, grad)  # the target matters


def test_zplus_one_term_shortcut_equals_the_two_term_formula(tiny_classifier, tiny_images, monkeypatch):
    """On a GPU ZPlusIgnoreBias skips its non-negativity check (a sync per layer) and runs both terms:
    the maps must be those of the CPU shortcut."""
    lrp = explainers.get("lrp")()
    shortcut = lrp.explain(tiny_classifier, tiny_images, TARGET)
    calls = []

    def never(x):
        calls.append(1)
        return False

    monkeypatch.setattr(_zennit, "_all_nonnegative", never)
    two_terms = lrp.explain(tiny_classifier, tiny_images, TARGET)
    assert calls  # the rule really asked
    assert shortcut.abs().max() > 0
    torch.testing.assert_close(two_terms, shortcut, rtol=1e-5, atol=1e-7 * shortcut.abs().max().item())


# -- CUDA -------------------------------------------------------------------------------------

@pytest.mark.cuda
@cuda
def test_cuda_timer_times_the_device_and_reports_peak_above_start():
    dev = torch.device("cuda", torch.cuda.current_device())
    held = torch.empty(256 * 2**20, dtype=torch.uint8, device=dev)  # allocated before: not part of the peak

    def work():
        torch.cuda._sleep(50_000_000)  # tens of ms of GPU time, returns at once on the host
        return torch.empty(64 * 2**20, dtype=torch.uint8, device=dev).fill_(1)

    t = time_call(work, dev, warmup=1, repeats=3)
    assert t.median_s > 1e-3  # events saw the kernel, not just the launch
    assert 60 * 2**20 <= t.peak_memory_bytes < 200 * 2**20  # ~64 MiB, not 256 + 64
    del held


@pytest.mark.cuda
@cuda
def test_cuda_timer_records_on_the_timed_devices_stream():
    last = torch.device("cuda", torch.cuda.device_count() - 1)
    with torch.cuda.device(0):
        t = time_call(lambda: torch.cuda._sleep(20_000_000), last, warmup=0, repeats=2)
    assert t.median_s > 1e-3


@pytest.mark.cuda
@cuda
def test_lrp_backward_never_syncs_and_matches_cpu(tiny_classifier, tiny_images):
    model = copy.deepcopy(tiny_classifier).cuda()
    x, target = tiny_images.cuda(), TARGET.cuda()
    lrp = explainers.get("lrp")()
    lrp.explain(model, x, target)  # warm-up (lazy inits may sync)
    composite = _zennit.lrp_cmp_composite(model)
    with _zennit.explaining(model, composite) as hooked:
        xg = x.detach().requires_grad_(True)
        out = hooked(xg)
        init = out.detach() * torch.nn.functional.one_hot(target, 3)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")  # the modified backward: no device-to-host sync
        try:
            (rel,) = torch.autograd.grad(out, xg, grad_outputs=init)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    assert rel.abs().sum() > 0
    cpu = lrp.explain(tiny_classifier, tiny_images, TARGET)
    torch.testing.assert_close(lrp.explain(model, x, target).cpu(), cpu, rtol=1e-4,
                               atol=1e-5 * cpu.abs().max().item())


@pytest.mark.cuda
@cuda
def test_gradient_pass_on_cuda(tiny_classifier, tiny_images):
    model = copy.deepcopy(tiny_classifier).cuda()
    grad = gradient_pass(model, tiny_images.cuda(), TARGET.cuda())()
    torch.testing.assert_close(grad.cpu(), _reference_input_gradient(tiny_classifier, tiny_images, TARGET),
                               rtol=1e-4, atol=1e-6)
