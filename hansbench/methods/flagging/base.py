"""The flagging-rule contract: what a rule sees of one detection (:class:`Split`), what it answers
(:class:`Flagging`), the rule itself (:class:`FlaggingRule`) and the one checked way to call it (:func:`apply_rule`).

Separability and flagging are two questions (PAPERS.md §9): a detector splits the inspected class (or scores
it); a *rule* then decides without labels which part, if any, is poisoned, and may abstain. Keeping the rule
apart from the detector is what lets a table say whether a detector failed to separate the poison or only
flagged the wrong half of a symmetric split.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

# What a detector's result is, as the class attribute ``detects_by`` of every Clusterer says:
#   "clusters": a partition (cluster rules apply); "scores": a score detector whose ``scores`` rank suspicion
#   (budget rules apply); "set": the detector's own labels already are a flagged set (``own-flag`` applies).
DetectsBy = Literal["clusters", "scores", "set"]
DETECTS_BY: tuple[str, ...] = ("clusters", "scores", "set")


class FlaggingError(ValueError):
    """A rule returned something that is not a well-formed :class:`Flagging`, or was given a malformed
    :class:`Split` (one line naming the rule and the problem)."""


@dataclass(frozen=True)
class Split:
    """What a rule sees of one detection: label-free (plus the one count a budget may use, as the papers do).

    Attributes
    ----------
    labels : np.ndarray
        ``[N]`` int cluster labels (score detectors: their own top-k split, which budget rules ignore).
    scores : np.ndarray or None
        ``[N]`` float suspicion, higher = more suspicious; ``None`` where the detector has none.
    detects_by : str
        One of :data:`DETECTS_BY` (the clusterer's class attribute).
    own_flagged : int or None
        ``ClusteringResult.flagged``; for a ``"set"`` detector the label of its flagged set.
    silhouette : float or None
        Silhouette score of ``labels`` on the clusterer's views (:func:`silhouette_of`); ``None``: undefined.
    true_rate : float
        Share of poisoned samples among the N (0 on a clean class). Only the true-rate budget reads it, and
        says so in its reason: it is the one piece of ground truth a rule may see (Tran et al. 2018's ε).
    reclassify : callable or None
        Given a bool mask ``[N]`` of a candidate cluster, retrains the model without those images and returns
        the new model's predicted class ``[M]`` for the ``M`` masked images; ``None`` where the suite affords
        no retraining.
    inspected_class : int
        The class the N images are labelled as (-1: not given).
    """

    labels: np.ndarray
    scores: np.ndarray | None
    detects_by: str
    own_flagged: int | None
    silhouette: float | None
    true_rate: float
    reclassify: Callable[[np.ndarray], np.ndarray] | None = None
    inspected_class: int = -1

    @property
    def n(self) -> int:
        """The number of images of the class that the detector saw."""
        return int(np.asarray(self.labels).shape[0])


@dataclass(frozen=True)
class Flagging:
    """A rule's answer: the flagged images (all False when it abstained) and why, in one sentence with numbers."""

    flagged: np.ndarray  # [N] bool; all False when abstained
    abstained: bool
    reason: str
    info: dict = field(default_factory=dict)  # JSON-safe

    @classmethod
    def abstain(cls, n: int, reason: str, **info: Any) -> Flagging:
        """Nothing flagged, with the reason."""
        return cls(np.zeros(n, dtype=bool), True, reason, info)

    @classmethod
    def of(cls, mask: np.ndarray, reason: str, **info: Any) -> Flagging:
        """Flag ``mask`` (``[N]`` bool), with the reason; ``info`` gets ``n_flagged``."""
        mask = np.asarray(mask, dtype=bool)
        return cls(mask, False, reason, {"n_flagged": int(mask.sum()), **info})


class FlaggingRule:
    """A registered rule: ``name`` is set by the registry; options are keyword arguments of ``__init__``.

    A subclass declares ``applies_to`` (the ``detects_by`` values it handles), takes its options as
    keyword-only ``__init__`` arguments with defaults, stores each unchanged under its own name and validates
    them there (a one-line ``ValueError`` naming the option and its valid range, so a suite fails before any
    work), and implements :meth:`flag`. Rules are label-free (only the true-rate budget reads
    ``Split.true_rate``) and deterministic.
    """

    name: ClassVar[str] = ""
    applies_to: ClassVar[frozenset[str]] = frozenset()
    needs_retraining: ClassVar[bool] = False  # needs ``Split.reclassify`` (a retraining per candidate)

    @property
    def options(self) -> dict[str, Any]:
        """The options this instance runs with (each ``__init__`` keyword read back from its attribute)."""
        from hansbench.options import options_of

        return options_of(self)

    def not_applicable(self, detects_by: str) -> str | None:
        """Why the rule does not apply to a detector of that kind, in words; ``None`` where it applies."""
        if detects_by in self.applies_to:
            return None
        return (f"rule {self.name!r} applies to {' and '.join(sorted(self.applies_to))} detectors, "
                f"not to a detector that detects by {detects_by!r}")

    def flag(self, split: Split) -> Flagging:
        """The flagged images of ``split``, or an abstention; ``reason`` says which and why, with numbers."""
        raise NotImplementedError


def check_split(split: Split, rule: str = "") -> None:
    """Refuse a malformed :class:`Split` (an engine bug) in one line."""
    who = f"flagging rule {rule!r}: " if rule else ""
    labels = np.asarray(split.labels)
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise FlaggingError(f"{who}split.labels must be [N] integers, got shape {labels.shape} dtype {labels.dtype}")
    if split.scores is not None and np.asarray(split.scores).shape != labels.shape:
        raise FlaggingError(f"{who}split.scores has shape {np.asarray(split.scores).shape}, expected {labels.shape}")
    if split.detects_by not in DETECTS_BY:
        raise FlaggingError(f"{who}split.detects_by is {split.detects_by!r}; use one of {', '.join(DETECTS_BY)}")
    if not (isinstance(split.true_rate, (int, float)) and 0.0 <= split.true_rate <= 1.0):
        raise FlaggingError(f"{who}split.true_rate must be a share in [0, 1], got {split.true_rate!r}")


def apply_rule(rule: FlaggingRule, split: Split) -> Flagging:
    """``rule.flag(split)``, checked: the rule applies, and the answer is a well-formed :class:`Flagging`.

    Raises
    ------
    FlaggingError
        One line naming the rule: it does not apply to ``split.detects_by``, or its answer is not a
        ``Flagging``, has ``flagged`` of another shape or dtype than ``[N]`` bool, flags images while
        abstaining (or flags none without abstaining), has no one-line reason, or an ``info`` that is not JSON.
    """
    name = rule.name or type(rule).__name__
    check_split(split, name)
    why = rule.not_applicable(split.detects_by)
    if why is not None:
        raise FlaggingError(f"flagging rule {name!r} was applied where it does not apply: {why}")
    out = rule.flag(split)
    if not isinstance(out, Flagging):
        raise FlaggingError(f"flagging rule {name!r} returned {type(out).__name__}, expected a Flagging")
    flagged = np.asarray(out.flagged)
    if flagged.shape != (split.n,) or flagged.dtype != np.bool_:
        raise FlaggingError(f"flagging rule {name!r} returned flagged of shape {flagged.shape} dtype {flagged.dtype}, "
                            f"expected ({split.n},) bool: one flag per image")
    if not isinstance(out.abstained, (bool, np.bool_)):
        raise FlaggingError(f"flagging rule {name!r} returned abstained = {out.abstained!r}, expected True or False")
    if out.abstained and flagged.any():
        raise FlaggingError(f"flagging rule {name!r} abstained but flagged {int(flagged.sum())} images; an abstaining "
                            "rule flags nothing")
    if not out.abstained and not flagged.any():
        raise FlaggingError(f"flagging rule {name!r} flagged no image without abstaining; return Flagging.abstain "
                            "with the reason")
    if not isinstance(out.reason, str) or not out.reason.strip() or "\n" in out.reason:
        raise FlaggingError(f"flagging rule {name!r} returned reason {out.reason!r}; give one sentence on one line")
    try:
        json.dumps(out.info, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise FlaggingError(f"flagging rule {name!r} returned info that is not JSON-safe ({exc})") from None
    return out


def silhouette_of(views: np.ndarray, labels: np.ndarray) -> float | None:
    """The silhouette score of ``labels`` on ``views`` (``[N, V, D]`` or ``[N, D]``, flattened per sample),
    Euclidean, every sample (no subsampling, so deterministic); ``None`` where it is undefined (fewer than 2
    clusters, or as many clusters as samples). What the ``silhouette`` rule reads as ``Split.silhouette``;
    ART's ActivationDefence computes it the same way (scikit-learn's ``silhouette_score``)."""
    from sklearn.metrics import silhouette_score

    x = np.asarray(views, dtype=np.float64).reshape(len(labels), -1)
    k = np.unique(labels).size
    if not 2 <= k <= len(labels) - 1:
        return None
    value = float(silhouette_score(x, labels, metric="euclidean"))
    return value if math.isfinite(value) else None


def share_text(x: float) -> str:
    """A share with two decimals, as the reasons print it."""
    return f"{x:.2f}"


def check_share(rule: str, option: str, value: Any, meaning: str, *, closed_low: bool = False) -> None:
    """A one-line ``ValueError`` unless ``value`` is a number in (0, 1) (``[0, 1)`` with ``closed_low``)."""
    low_ok = (value >= 0.0) if closed_low else (value > 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low_ok and value < 1.0):
        rng = "[0, 1)" if closed_low else "(0, 1)"
        raise ValueError(f"flagging rule {rule!r}: {option} must be in {rng} ({meaning}), got {value!r}")
