"""Trivial floors (PAPERS.md §9): detectors that use neither an explanation nor a clustering.

An explanation-based detector is worth something only where it beats what needs no explanation.
These three set that floor, registered like the score detectors of :mod:`._detect` (label 1 =
flagged, ``result_.flagged == 1``, a per-sample ``scores`` with higher = more suspicious, the rule
in the row's info), so every detection table and the label-flip controls carry their rows:

- ``prediction-mismatch`` (input ``label-fit``): flags the images the poisoned model itself
  predicts as another class than their training label. It flags label noise and dirty-label
  poison alike (a label flip, a backdoor whose trigger did not take): an explanation detector
  that "finds" such images may only be reading the same disagreement. Its labels are its verdict
  (``detects_by = "set"``, read by the ``own-flag`` rule), and it may flag nothing.
- ``training-loss`` (input ``label-fit``): the model's per-sample cross-entropy with the training
  label as the score; flags the ``round(1.5 * expected_fraction * n)`` highest, the budget of
  :mod:`._detect`.
- ``random-filter`` (input ``sample-index``): a seeded uniform score (``random_state``, the run's
  seed), flagging the same budget. It is the chance level of every flag of that size and of
  every AUROC (0.5 in expectation).

The training label is what a defender has (a poisoned image carries its poisoned label), so
reading it is allowed; no poisoned flag or true label is read (the input kinds get the data
without ground truth). The random filter's size: a label-free method may not know the true
poison rate, so it takes the score detectors' assumed-rate budget (``expected_fraction``, default
0.1, times ``removal_multiplier``, 1.5) and flags as many images as spectral signatures and
SPECTRE do. Where the rule should be the true rate, the flagging rules set the budget.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from hansbench.methods.clusterers._detect import FLAG_NOTE, ScoreDetector, n_removed, removal_info, top_scored
from hansbench.methods.clusterers._validation import check_views
from hansbench.methods.inputs import LABEL_FIT, SAMPLE_INDEX
from hansbench.registry import clusterers

NONE_DISAGREE = ("the model agrees with every training label: nothing is flagged (every label is 0; label 1, the "
                 "flagged one, holds no image)")


def label_fit_columns(views: list[np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(loss [N], deficit [N])`` from the ``label-fit`` input's one view ``[N, 2]``."""
    if len(views) != 1 or views[0].shape[1] != 2:
        raise ValueError(f"{name}: expects the '{LABEL_FIT}' input, one view [N, 2] of (loss, deficit) per "
                         f"sample; got {len(views)} views of sizes {[v.shape[1] for v in views]}")
    return views[0][:, 0], views[0][:, 1]


class _Budgeted(ScoreDetector):
    """A score detector that flags the ``round(removal_multiplier * expected_fraction * n)`` highest scores."""

    def __init__(self, n_clusters: int = 2, random_state: int = 0, flag_rule: str = "smaller", *,
                 expected_fraction: float = 0.1, removal_multiplier: float = 1.5):
        super().__init__(n_clusters=n_clusters, random_state=random_state, flag_rule=flag_rule)
        self.expected_fraction = expected_fraction
        self.removal_multiplier = removal_multiplier

    def _flag_top(self, scores: np.ndarray) -> tuple[np.ndarray, dict, np.ndarray]:
        n = scores.shape[0]
        m = n_removed(n, self.expected_fraction, self.removal_multiplier, self.name)
        info = {**removal_info(self.expected_fraction, self.removal_multiplier, m, n),
                "rule": f"flagged the {m} of {n} highest scores = round({self.removal_multiplier} * expected_fraction * n),"
                        " the score detectors' budget at an assumed rate, not the true one"}
        return top_scored(scores, m), info, scores


@clusterers.register("prediction-mismatch")
class PredictionMismatch(ScoreDetector):
    """Flags the images whose model prediction differs from their training label (the trivial floor of PAPERS.md §9).

    Score: the label's log-probability deficit ``max_{k != y} log p_k - log p_y``, positive exactly on
    the flagged images (so AUROC ranks by how far the label is from being predicted). It is a floor
    because it needs neither explanation nor clustering and already finds every mislabelled image the
    model did not memorise. Its labels are its verdict (``detects_by = "set"``): label 1 is flagged
    (``result_.flagged == 1`` always), and with no disagreement no image carries it: it flags nothing
    and says so in ``info["none_disagree"]`` (the ``own-flag`` rule then abstains).
    """

    input: ClassVar[str] = LABEL_FIT
    detects_by: ClassVar[str] = "set"

    def fit_predict(self, views, y=None) -> np.ndarray:
        """Label 1 = the images whose prediction differs from their label; ``result_.flagged`` is 1 even when
        none does (then every label is 0 and nothing is flagged)."""
        labels = super().fit_predict(views)
        if "degenerate" in self.result_.info:  # identical rows: every image disagrees or none does
            _, deficit = label_fit_columns(check_views(views, 2, name=self.name), self.name)
            labels = (deficit > 0).astype(np.int64)
            self.labels_ = self.result_.labels = labels
            self.result_.info["n_disagree"] = int(labels.sum())
        self.result_.flagged = 1
        return labels

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
        _, deficit = label_fit_columns(views, self.name)
        labels = (deficit > 0).astype(np.int64)
        info = {"rule": "flagged: the model's prediction differs from the training label (deficit > 0; a tie "
                        "agrees)", "flag": FLAG_NOTE, "n_disagree": int(labels.sum())}
        if not labels.any():
            info["none_disagree"] = NONE_DISAGREE
        return labels, info, deficit


@clusterers.register("training-loss")
class TrainingLoss(_Budgeted):
    """Score = the poisoned model's cross-entropy on each training image with its label; flags the 1.5·ε·n highest.

    A floor: a relabelled image the model has not fitted has a high loss whatever its content, so a
    detector on explanations that ranks poison no better than this adds nothing to the loss itself.
    """

    input: ClassVar[str] = LABEL_FIT

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
        loss, _ = label_fit_columns(views, self.name)
        labels, info, scores = self._flag_top(loss)
        info["mean_loss_flagged"] = float(loss[labels == 1].mean())
        info["mean_loss_kept"] = float(loss[labels == 0].mean())
        return labels, info, scores


@clusterers.register("random-filter")
class RandomFilter(_Budgeted):
    """Score = a uniform draw seeded by ``random_state`` (the run's seed); flags the same 1.5·ε·n budget.

    The floor below every floor: what a flag of that size and an AUROC (0.5 in expectation) reach by
    chance. It reads nothing of the images (input ``sample-index``: their positions; only ``N`` is used).
    """

    input: ClassVar[str] = SAMPLE_INDEX

    def _fit(self, views: list[np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
        scores = np.random.default_rng(self.random_state).random(views[0].shape[0])
        labels, info, scores = self._flag_top(scores)
        info["seed"] = self.random_state
        return labels, info, scores
