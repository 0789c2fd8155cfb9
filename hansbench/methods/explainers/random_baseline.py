"""The random baseline: uniform noise maps that are a pure function of (image, seed)."""

from __future__ import annotations

import torch
from torch import nn

from hansbench.methods.base import Explainer
from hansbench.registry import explainers

_M32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2**32 for x in [0, 2**32) held in int64, exact on every device.

    Split into 16-bit halves so no intermediate exceeds 2**49 (int64 overflow is avoided,
    not relied on).
    """
    lo = x * (c & 0xFFFF)
    hi = ((x * (c >> 16)) & 0xFFFF) << 16
    return (lo + hi) & _M32


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 integer hash (C. Wellons) on int64 tensors holding 32-bit values."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def image_keys(x: torch.Tensor, seed: int) -> torch.Tensor:
    """A 32-bit key per image ``[B]`` from the exact bits of its pixels and ``seed``.

    Integer sums are exact and order-independent, so the key is the same on CPU and CUDA
    and whatever batch the image sits in.
    """
    bits = x.detach().float().contiguous().flatten(1).view(torch.int32).to(torch.int64) & _M32  # [B, N]
    pos = torch.arange(bits.shape[1], device=x.device, dtype=torch.int64)
    salted = _hash32(bits ^ _hash32((pos + ((seed * 0x9E3779B1) & _M32)) & _M32))
    return _hash32((salted.sum(dim=1) & _M32) ^ (seed & _M32))


@explainers.register("random")
class RandomBaseline(Explainer):
    """Uniform noise maps in [low, high), seeded and derived from each image's content (batch-independent).

    No global RNG is touched: each map is a counter-based hash of (image bits, seed, pixel),
    so a batch gives exactly the per-sample maps, on any device. The baseline every metric
    is compared against.
    """

    model_kinds = ("classifier", "protopnet")

    def __init__(self, seed: int = 0, low: float = 0.0, high: float = 1.0):
        self.seed = int(seed)
        self.low = float(low)
        self.high = float(high)

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[B, 1, H, W]`` uniform noise from a hash of each image, the seed and the pixel."""
        self.check_model(model)
        b, _, h, w = x.shape
        keys = image_keys(x, self.seed)  # [B]
        pix = torch.arange(h * w, device=x.device, dtype=torch.int64)
        bits = _hash32(_hash32(keys[:, None] ^ 0x5BD1E995) ^ ((pix[None, :] * 0x9E3779B1) & _M32))
        u = (bits >> 8).to(torch.float32) * (1.0 / (1 << 24))  # exact float32 uniforms in [0, 1)
        return (self.low + (self.high - self.low) * u).view(b, 1, h, w)
