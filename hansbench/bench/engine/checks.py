"""Checks at every node's boundary: nothing malformed travels downstream or reaches a table.

Each check raises :class:`NodeOutputError` naming the method and what was wrong; the node
fails with that message, its dependants are recorded as skipped because of it.
"""

from __future__ import annotations

import math

import numpy as np
import torch


class NodeOutputError(ValueError):
    """A node produced an output that breaks its contract."""


def check_data(data, scenario: str) -> None:
    """Every split's images ``[N, C, H, W]`` finite in [0, 1] with labels in range; a non-empty training set."""
    for split_name, split in data.splits().items():
        x = split.images
        if x.dim() != 4 or x.shape[0] != len(split.labels):
            raise NodeOutputError(f"scenario {scenario!r}: {split_name} images have shape {tuple(x.shape)}, "
                                  "expected [N, C, H, W] with one label per image")
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise NodeOutputError(f"scenario {scenario!r}: {split_name} images must be finite and in [0, 1]")
        bad = (split.labels < 0) | (split.labels >= data.num_classes)
        if bad.any():
            raise NodeOutputError(f"scenario {scenario!r}: {split_name} has labels outside 0..{data.num_classes - 1}")
    if len(data.train) == 0:
        raise NodeOutputError(f"scenario {scenario!r}: the training set is empty")


def check_model(model: torch.nn.Module, what: str) -> None:
    """Every floating-point parameter and buffer finite after training."""
    for name, p in model.state_dict().items():
        if p.is_floating_point() and not torch.isfinite(p).all():
            raise NodeOutputError(f"{what}: parameter {name!r} is not finite after training (diverged); "
                                  "lower the learning rate or check the data")


def check_maps(maps: torch.Tensor, *, n: int, height: int, width: int, views: int | None, explainer: str) -> None:
    """Maps must be ``[N, V, H, W]`` at the input's H and W, V as declared, and finite."""
    if not isinstance(maps, torch.Tensor):
        raise NodeOutputError(f"explainer {explainer!r} returned {type(maps).__name__}, expected a tensor "
                              "[N, V, H, W]")
    if maps.dim() != 4 or maps.shape[0] != n or tuple(maps.shape[-2:]) != (height, width):
        raise NodeOutputError(f"explainer {explainer!r} returned maps of shape {tuple(maps.shape)}, expected "
                              f"[{n}, V, {height}, {width}] (one map per image at input resolution)")
    if views is not None and maps.shape[1] != views:
        raise NodeOutputError(f"explainer {explainer!r} returned {maps.shape[1]} views, it declares {views}")
    if not torch.isfinite(maps).all():
        bad = int((~torch.isfinite(maps)).flatten(1).any(1).sum())
        raise NodeOutputError(f"explainer {explainer!r} returned non-finite values (NaN or inf) in {bad} of {n} maps")


def check_clustering(labels, flagged, *, n: int, n_clusters: int | None, clusterer: str,
                     detects_by: str = "clusters") -> None:
    """One integer label per sample in ``0..n_clusters-1``, and a flagged cluster that exists (a detector whose
    labels are its flagged set, ``detects_by == "set"``, may flag nothing: its flagged label then holds no sample)."""
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise NodeOutputError(f"clusterer {clusterer!r} returned labels of shape {labels.shape}, expected ({n},): "
                              "one label per sample")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0
                        or (n_clusters is not None and labels.max() >= n_clusters)):
        raise NodeOutputError(f"clusterer {clusterer!r} returned labels outside 0..{(n_clusters or 0) - 1} "
                              f"(got {labels.min()}..{labels.max()}, dtype {labels.dtype})")
    empty_set = detects_by == "set" and 0 <= int(flagged) < (n_clusters if n_clusters is not None else int(flagged) + 1)
    if labels.size and int(flagged) not in set(labels.tolist()) and not empty_set:
        raise NodeOutputError(f"clusterer {clusterer!r} flagged cluster {flagged}, which no sample belongs to")


def check_scores(scores, *, n: int, clusterer: str) -> np.ndarray | None:
    """Per-sample suspicion scores: ``None``, or ``n`` finite floats (one per clustered sample)."""
    if scores is None:
        return None
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise NodeOutputError(f"clusterer {clusterer!r} returned scores of type {type(scores).__name__} that are "
                              "not numbers; result_.scores must be None or one float per sample") from None
    if arr.shape != (n,):
        raise NodeOutputError(f"clusterer {clusterer!r} returned scores of shape {arr.shape}, expected ({n},): "
                              "one suspicion score per clustered sample (or None)")
    if not np.isfinite(arr).all():
        raise NodeOutputError(f"clusterer {clusterer!r} returned non-finite scores (NaN or inf) for "
                              f"{int((~np.isfinite(arr)).sum())} of {n} samples")
    return arr


def check_views(views, *, n: int, kind: str) -> np.ndarray:
    """An input kind's views: ``[n, V, D]`` finite numbers, one row per inspected-class training image."""
    arr = np.asarray(views)
    if arr.ndim != 3 or arr.shape[0] != n:
        raise NodeOutputError(f"clusterer input {kind!r} returned views of shape {arr.shape}, expected [{n}, V, D] "
                              "(one row per inspected-class training image)")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise NodeOutputError(f"clusterer input {kind!r} returned non-finite or non-numeric views")
    return arr


def check_rows(rows, metric: str) -> list[dict]:
    """Metric values finite, or explicitly missing (``None``); rows are dicts with a value name."""
    if not isinstance(rows, list):
        raise NodeOutputError(f"metric {metric!r} returned {type(rows).__name__}, expected a list of rows")
    for r in rows:
        if not isinstance(r, dict) or "metric" not in r or "value" not in r:
            raise NodeOutputError(f"metric {metric!r} returned a row without 'metric' and 'value': {r!r}")
        v = r["value"]
        if v is None:
            continue
        try:
            ok = math.isfinite(float(v))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise NodeOutputError(f"metric {metric!r} returned {r['metric']} = {v!r}: values must be finite "
                                  "(return None for an explicitly missing value)")
    return rows
