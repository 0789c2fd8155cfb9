"""Input checks shared by every clusterer: one place that says what is wrong and how to fix it.

Clusterers accept the runner's dense ``[N, V, D]`` array or, where the method supports
views of different sizes, a list of per-view ``[N, D_v]`` arrays. Both come out of
:func:`check_views` as a list of float64 ``[N, D_v]`` arrays.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def check_views(views, n_clusters: int, *, ragged: bool = True, name: str = "clusterer") -> list[np.ndarray]:
    """Validate the clusterer input and return it as a list of float64 ``[N, D_v]`` views.

    ``ragged=False`` refuses views of different sizes (methods that stack views into one tensor).
    """
    if isinstance(views, np.ndarray) or not isinstance(views, Sequence):
        arr = np.asarray(views)
        if arr.ndim != 3:
            raise ValueError(
                f"{name}: views must be a [N, V, D] array (each view's map flattened), got shape {arr.shape}; "
                "reshape with maps.reshape(N, V, -1), or pass a list of [N, D_v] arrays"
            )
        out = [np.asarray(arr[:, v, :], dtype=np.float64) for v in range(arr.shape[1])]
    else:
        out = [np.asarray(x, dtype=np.float64) for x in views]
        bad = [i for i, x in enumerate(out) if x.ndim != 2]
        if bad:
            raise ValueError(f"{name}: a list of views must hold 2-D [N, D_v] arrays; views {bad} are not 2-D")
        sizes = {x.shape[0] for x in out}
        if len(sizes) > 1:
            raise ValueError(f"{name}: all views must have the same number of samples N, got {sorted(sizes)}")
        dims = sorted({x.shape[1] for x in out})
        if len(dims) > 1 and not ragged:
            raise ValueError(
                f"{name}: views of different sizes {dims} are not supported by this method; "
                "resample the maps to one size first"
            )
    if not out:
        raise ValueError(f"{name}: got no views (V = 0)")
    n = out[0].shape[0]
    if any(x.shape[1] == 0 for x in out):
        raise ValueError(f"{name}: views with zero features (D = 0) cannot be clustered")
    bad_rows = np.zeros(n, dtype=bool)
    bad_views = []
    for v, x in enumerate(out):
        rows = ~np.isfinite(x).all(axis=1)
        if rows.any():
            bad_views.append(v)
            bad_rows |= rows
    if bad_views:
        idx = np.flatnonzero(bad_rows)
        raise ValueError(
            f"{name}: input has NaN/inf values in {idx.size} samples (first: {idx[:10].tolist()}) "
            f"in views {bad_views[:10]}; drop or impute those samples before clustering"
        )
    if n < 2:
        raise ValueError(f"{name}: need at least 2 samples to cluster, got N = {n}")
    if not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise ValueError(f"{name}: n_clusters must be a positive integer, got {n_clusters!r}")
    if n_clusters > n:
        raise ValueError(f"{name}: n_clusters = {n_clusters} exceeds the number of samples N = {n}")
    return out


def cap_neighbors(k: int, n: int, name: str = "clusterer") -> int:
    """k of a kNN graph, capped at N - 1 (with a warning) when there are too few samples."""
    if k < 1:
        raise ValueError(f"{name}: n_neighbors must be >= 1, got {k}")
    if k >= n:
        warnings.warn(f"{name}: n_neighbors = {k} >= N = {n}; using k = {n - 1}", stacklevel=3)
        return n - 1
    return k


def is_degenerate(views: list[np.ndarray]) -> bool:
    """True when every sample is identical in every view: there is no structure to cluster."""
    return all(np.ptp(x, axis=0).max() == 0.0 for x in views)


DEGENERATE_NOTE = "all samples identical in every view: one cluster returned"


def check_choice(value, choices: Sequence, what: str, name: str = "clusterer"):
    """``value`` if it is one of ``choices``; a ``ValueError`` listing them otherwise."""
    if value not in choices:
        raise ValueError(f"{name}: unknown {what} {value!r}; choose one of {list(choices)}")
    return value
