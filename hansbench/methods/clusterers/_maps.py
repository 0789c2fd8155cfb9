"""Heatmap preprocessing for SpRAy: per-map normalisation and area downsampling of square maps."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

NORMALIZATIONS = ("none", "max-abs", "l2", "sum")


def square_side(d: int, name: str = "clusterer", option: str = "downsample") -> int:
    """The side of square maps of ``d`` pixels; a ``ValueError`` naming ``option`` if they are not square."""
    s = math.isqrt(d)
    if s * s != d:
        raise ValueError(f"{name}: {option} needs square maps (D = side*side), but D = {d}; pass {option}=None")
    return s


def downsample(x: np.ndarray, side: int | None, name: str = "clusterer") -> np.ndarray:
    """``[N, s*s]`` maps -> ``[N, side*side]`` by area averaging (no-op when ``side`` is None or >= s)."""
    if side is None:
        return x
    s = square_side(x.shape[1], name)
    if side >= s:
        return x
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).view(-1, 1, s, s)
    return F.adaptive_avg_pool2d(t, side).reshape(x.shape[0], side * side).numpy()


def normalize(x: np.ndarray, how: str = "none") -> np.ndarray:
    """Scale each map (row): ``max-abs`` -> max |r| = 1, ``l2`` -> unit norm, ``sum`` -> sum |r| = 1.

    All-zero maps stay zero.
    """
    if how == "none":
        return x
    if how == "max-abs":
        scale = np.abs(x).max(axis=1, keepdims=True)
    elif how == "l2":
        scale = np.linalg.norm(x, axis=1, keepdims=True)
    elif how == "sum":
        scale = np.abs(x).sum(axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown normalisation {how!r}; choose one of {list(NORMALIZATIONS)}")
    scale = np.where(scale > 0, scale, 1.0)
    return x / scale
