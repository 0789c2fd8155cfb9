"""Training precision: bf16 autocast where the device does bf16 natively, float32 everywhere else.

A recipe's ``precision`` (``"float32"``, the default, or ``"bf16"``) sets the arithmetic of the
training forward and backward passes only: the weights, their gradients and the optimiser state
stay float32 (``torch.autocast`` casts per operation, never the parameters), and everything after
training (push, last-layer scores, prediction, every explanation) runs in float32 on those float32
weights. Relevance rules and their conservation checks need float32 (docs/methods.md, "Models and
training").

bf16 is used only where the device has it natively: on CUDA ``torch.cuda.is_bf16_supported``, on
the CPU the ``avx512_bf16`` or ``amx_bf16`` flag (oneDNN's bf16 convolutions; without them oneDNN
emulates bf16 and it is slower than float32). A request for bf16 elsewhere trains in float32 with
a one-line warning, and the precision used, not the one asked for, is what keys the model
(:func:`effective_config`) and what the model records (``model.training_precision``).
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "autocast", "bf16_supported", "check_precision", "effective_config", "resolve_precision",
           "seed_spread", "within_seed_spread"]

PRECISIONS = ("float32", "bf16")
DEFAULT = "float32"
CPUINFO = Path("/proc/cpuinfo")


def check_precision(precision: str) -> None:
    """A one-line error for an unknown precision, naming the accepted ones."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")


def cpu_has_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """The CPU's native bf16 (``avx512_bf16`` or ``amx_bf16`` in its flags); without a cpuinfo, oneDNN's probe."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}
    return bool(flags & {"avx512_bf16", "amx_bf16"})


@functools.cache
def bf16_supported(device_type: str) -> bool:
    """Whether ``device_type`` (``"cpu"``, ``"cuda"``) trains in bf16 natively; detected once per process."""
    if device_type == "cuda":
        if not torch.cuda.is_available():
            return False
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # older torch: no emulation argument
            return bool(torch.cuda.is_bf16_supported())
    if device_type == "cpu":
        return cpu_has_bf16()
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """The precision training will use on ``device``: ``bf16`` falls back to float32 (one warning) without support."""
    check_precision(precision)
    device_type = torch.device(device).type
    if precision == "bf16" and not bf16_supported(device_type):
        warnings.warn(f"precision 'bf16' requested but the {device_type} has no native bf16: training in float32",
                      stacklevel=2)
        return "float32"
    return precision


def autocast(precision: str, device: torch.device):
    """The training step's autocast context: bf16 autocast for ``"bf16"``, nothing for ``"float32"``.

    Enter it around the forward pass and the loss only (PyTorch's advice; the backward follows the
    forward's dtypes), never around the optimiser step or anything after training.
    """
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def effective_config(config: dict, device_type: str) -> dict:
    """A model config as it will train on ``device_type``: the precision resolved, the defaults spelled out dropped.

    What keys a model: ``precision = "bf16"`` on a device without bf16 trains the float32 model, so
    it is that model's key (and cache entry); ``memory_format = "contiguous"`` and
    ``precision = "float32"`` are the defaults and change nothing.
    """
    out = dict(config)
    if "precision" in out:
        out["precision"] = resolve_precision(out["precision"], device_type)
    return {k: v for k, v in out.items()
            if not ((k == "memory_format" and v == "contiguous") or (k == "precision" and v == DEFAULT))}


def seed_spread(values: Sequence[float]) -> tuple[float, float]:
    """The seed-to-seed spread of a measure over seeds: their range widened by their standard deviation each side.

    How a training lever is judged (issue 31): it changes every float, so a model trained with it is
    another draw, and the question is whether it lands where another seed of float32 could.
    """
    if len(values) < 2:
        raise ValueError(f"a seed spread needs at least 2 seeds, got {len(values)}")
    sd = statistics.stdev(values)
    return min(values) - sd, max(values) + sd


def within_seed_spread(reference: Sequence[float], candidate: Sequence[float]) -> bool:
    """Whether the mean of ``candidate`` (the lever, per seed) lies in :func:`seed_spread` of ``reference``."""
    lo, hi = seed_spread(reference)
    return lo <= statistics.fmean(candidate) <= hi
