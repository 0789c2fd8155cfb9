"""Planted multi-view data for tests, benchmarks and examples: each view alone is ambiguous.

Two groups; per view each group has its own pattern (a random pixel mask of a ``side x side``
map). Every sample shows its group's pattern in exactly half of the views, chosen at random,
and the ambiguous midpoint of both patterns in the other half. One view therefore holds
three blobs (group 0, the mixed midpoint, group 1) and cannot separate the groups beyond
~75 % accuracy; all views together can, since two samples of one group differ in at most V
views by one pattern step and samples of different groups in more.
"""

from __future__ import annotations

import numpy as np


def planted_views(n: int = 200, n_views: int = 6, side: int = 4, *, noise: float = 0.3, frac_b: float = 0.5,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(views [n, n_views, side*side] float64, groups [n] int)``; deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    d = side * side
    y = (rng.random(n) < frac_b).astype(np.int64)
    y[:2] = [0, 1]  # both groups present at any n
    patterns = (rng.random((2, n_views, d)) < 0.3).astype(np.float64)  # [group, view, pixel]
    informative = np.argsort(rng.random((n, n_views)), axis=1) < max(1, n_views // 2)
    x = np.where(informative[..., None], patterns[y], patterns.mean(axis=0)[None])
    return x + noise * rng.standard_normal(x.shape), y
