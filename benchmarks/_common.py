"""What the benchmarks share: the harness's timer, interleaved ratios, tiny models, one Quantus import.

Every ratio is measured interleaved in one process (A, B, A, B, ... for ``rounds`` rounds,
each timing a median of ``repeats`` calls by :func:`hansbench.bench.engine.kernel_timer.time_call`), and
the ratio of the medians is reported with the spread of the per-round ratios.

Threads: the benchmarks run torch and the BLAS libraries on **one thread**
(``HANSBENCH_BENCH_THREADS`` overrides). Measured on the shared 2-core machine (load ~7): a
small-resnet input gradient at 32 px, batch 16, took 34-45 ms on one torch thread and
0.66-2.3 s on two (five calls each): with more runnable threads than cores, torch's
intra-op workers wait on each other at every kernel, and ratios of such times are noise.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Callable

import numpy as np
import torch

from hansbench.bench.engine.kernel_timer import time_call

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
THREADS = int(os.environ.get("HANSBENCH_BENCH_THREADS", "1"))
torch.set_num_threads(THREADS)
try:  # NumPy/SciPy's BLAS (clusterer benchmarks): the same reason
    from threadpoolctl import threadpool_limits

    _BLAS_LIMIT = threadpool_limits(THREADS)
except ImportError:  # pragma: no cover
    _BLAS_LIMIT = None


def quantus():
    """Quantus, patched in this one place: Quantus 0.6.0 calls ``np.trapz``, removed in NumPy 2.4."""
    import quantus as q

    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid
    return q


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch "
            f"thread(s) (torch {torch.__version__})")


def load() -> float:
    """The 1-minute load average (other jobs on the machine), NaN where unknown."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


def interleaved(fns: dict[str, Callable[[], object]], dev: torch.device, rounds: int = 5,
                repeats: int = 1) -> dict[str, list[float]]:
    """Per-round medians (seconds) of each callable, timed in turn within every round."""
    for fn in fns.values():  # warm-up once each
        fn()
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            out[name].append(time_call(fn, dev, warmup=0, repeats=repeats).median_s)
    return out


def ratio(times: dict[str, list[float]], slow: str, fast: str) -> tuple[float, float, float]:
    """(ratio of medians, min and max of the per-round ratios) of ``slow`` over ``fast``."""
    per_round = [s / f for s, f in zip(times[slow], times[fast])]
    return statistics.median(times[slow]) / statistics.median(times[fast]), min(per_round), max(per_round)


def eval_model(model: torch.nn.Module, size: int) -> torch.nn.Module:
    """BatchNorm statistics from one random batch, then eval mode."""
    model.train()
    with torch.no_grad():
        model(torch.randn(16, 3, size, size))
    return model.eval()


def batch(n: int, size: int, classes: int = 5, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random normalised images ``[n, 3, size, size]`` and targets ``arange(n) % classes``."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, size, size, generator=g) - 0.5) / 0.25, torch.arange(n) % classes


def classifier(backbone: str, size: int, classes: int = 5) -> torch.nn.Module:
    """A random-init classifier on ``backbone`` (a registered name), BatchNorm statistics set, eval mode."""
    from hansbench.models.backbones import build_backbone
    from hansbench.models.classifier import Classifier

    torch.manual_seed(0)
    return eval_model(Classifier(build_backbone(backbone), classes, MEAN, STD), size)


def protopnet(backbone: str, size: int, classes: int = 5, per_class: int = 5, dim: int = 32) -> torch.nn.Module:
    """A random-init ProtoPNet (``per_class`` prototypes per class, the quick suite's shape), eval mode."""
    from hansbench.models.backbones import build_backbone
    from hansbench.models.protopnet import ProtoPNet

    torch.manual_seed(0)
    return eval_model(ProtoPNet(build_backbone(backbone), classes, MEAN, STD, per_class, dim), size)
