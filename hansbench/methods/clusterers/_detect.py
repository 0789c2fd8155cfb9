"""What the score-based poison detectors share (spectral signatures, SPECTRE, STRIP).

These are not explanation methods: they are the baselines that explanation-based detection must
beat (PAPERS.md §8). Each gives every sample a suspicion score (``result_.scores``, higher = more
suspicious) and a label-free flagged set, label 1. Their papers remove the ``1.5 * eps * n``
highest scores with ``eps`` the *true* poison rate; a benchmark method may not know it, so
``expected_fraction`` is an assumed rate (an option, stated in every row's info).
"""

from __future__ import annotations

import math

import numpy as np

from hansbench.methods.base import ACTIVATIONS
from hansbench.methods.clusterers._base import BaseClusterer

FLAG_NOTE = "label 1 = the flagged (suspected poisoned) samples, chosen by score; flag_rule is not used"


def n_removed(n: int, expected_fraction: float, multiplier: float, name: str) -> int:
    """``round(multiplier * expected_fraction * n)`` clipped to ``[1, n - 1]`` (so both labels exist)."""
    if not isinstance(expected_fraction, (int, float)) or not 0.0 < expected_fraction < 1.0:
        raise ValueError(f"{name}: expected_fraction must be in (0, 1) (the assumed share of poisoned samples), "
                         f"got {expected_fraction!r}")
    if not isinstance(multiplier, (int, float)) or multiplier <= 0:
        raise ValueError(f"{name}: removal_multiplier must be > 0 (the papers use 1.5), got {multiplier!r}")
    return int(min(max(math.floor(multiplier * expected_fraction * n + 0.5), 1), n - 1))


def top_scored(scores: np.ndarray, m: int) -> np.ndarray:
    """Labels with 1 on the ``m`` highest scores (ties: the lower index first, so the result is deterministic)."""
    order = np.argsort(-scores, kind="stable")
    labels = np.zeros(scores.shape[0], dtype=np.int64)
    labels[order[:m]] = 1
    return labels


def removal_info(expected_fraction: float, multiplier: float, m: int, n: int) -> dict:
    """The ``info`` of a score detector: how many of the highest scores were removed, and by which rule."""
    return {"expected_fraction": float(expected_fraction), "removal_multiplier": float(multiplier),
            "n_removed": m, "flag": FLAG_NOTE,
            "rule": f"removed the {m} of {n} highest scores = round({multiplier} * expected_fraction * n); the paper "
                    "uses the true poison rate as eps, this run the assumed expected_fraction"}


class ScoreDetector(BaseClusterer):
    """A detector: two labels, label 1 = flagged by score. ``n_clusters`` must be 2.

    ``flag_rule`` stays a parameter so every clusterer shares one interface (and a suite-wide
    setting does not break), but the flagged set is the one the scores pick, not the smaller cluster.
    """

    input = ACTIVATIONS
    detects_by = "scores"  # the budget rules (true-rate, upper-bound) read result_.scores, not the labels

    def fit_predict(self, views, y=None) -> np.ndarray:
        """Split the samples into kept (0) and flagged (1) by their scores; ``n_clusters`` must be 2."""
        if self.n_clusters != 2:
            raise ValueError(f"{self.name or type(self).__name__}: a detector splits flagged from kept samples, so "
                             f"n_clusters must be 2, got {self.n_clusters!r}")
        labels = super().fit_predict(views)
        if labels.any():  # not the degenerate all-identical case (one cluster, label 0)
            self.result_.flagged = 1
        return labels
