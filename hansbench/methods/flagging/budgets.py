"""Score budgets (Tran, Li, Madry 2018): flag the highest-scored images of a score detector.

Spectral signatures removes the ``1.5 · ε · n`` highest scores with ε an upper bound of the poison rate.
PAPERS.md §9 asks for two budgets, named: ε the true rate (``true-rate-budget``, multiplier 1, what a detector
reaches when told the rate: F1 1 on a perfect ranking) and 1.5 × a stated upper bound (``upper-bound-budget``,
the paper's rule, default bound 0.2 of the class). Ties in score: the lower index first, so a budget is
deterministic.
"""

from __future__ import annotations

import math

import numpy as np

from hansbench.methods.flagging.base import Flagging, FlaggingRule, Split, check_share, share_text
from hansbench.registry import flagging_rules

SCORES = frozenset({"scores"})


def round_half_up(x: float) -> int:
    """``x`` rounded to the nearest integer, halves up (as the score detectors' budget rounds)."""
    return int(math.floor(x + 0.5))


def top_scores(scores: np.ndarray, m: int) -> np.ndarray:
    """``[N]`` bool: the ``m`` highest scores (ties: the lower index first)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    mask = np.zeros(len(order), dtype=bool)
    mask[order[:m]] = True
    return mask


def no_scores(split: Split) -> Flagging:
    return Flagging.abstain(split.n, "the detector gave no scores to rank: abstained")


@flagging_rules.register("true-rate-budget")
class TrueRateBudget(FlaggingRule):
    """Flags the round(true rate × N) highest scores (the poison rate read from the ground truth); abstains at 0.

    Tran et al. 2018's budget with ε the true rate and no 1.5 margin: the one rule that reads the truth (one
    count, ``Split.true_rate``), as the paper's evaluation does, and says so in its reason. On a clean class the
    budget is 0 and it abstains. A perfect ranking gives F1 1.
    """

    applies_to = SCORES

    def flag(self, split: Split) -> Flagging:
        if split.scores is None:
            return no_scores(split)
        m = min(round_half_up(split.true_rate * split.n), split.n)
        info = {"budget": m, "true_rate": float(split.true_rate)}
        if m == 0:
            return Flagging.abstain(split.n, f"true poison rate {share_text(split.true_rate)} of {split.n} images "
                                             "gives a budget of 0 (clean class): abstained", **info)
        return Flagging.of(top_scores(split.scores, m), f"the {m} highest scores of {split.n} = round(true poison "
                                                        f"rate {share_text(split.true_rate)} × {split.n}), the rate "
                                                        "read from the ground truth: flagged", **info)


@flagging_rules.register("upper-bound-budget")
class UpperBoundBudget(FlaggingRule):
    """Flags the round(multiplier × upper_bound × N) highest scores, clipped to [1, N-1] (Tran et al. 2018's 1.5·ε·n).

    ε is a stated upper bound of the poison rate (default 0.2 of the class), not the true rate: the rule a
    defender who does not know the rate can apply. Label-free.
    """

    applies_to = SCORES

    def __init__(self, *, upper_bound: float = 0.2, multiplier: float = 1.5):
        name = self.name or "upper-bound-budget"
        check_share(name, "upper_bound", upper_bound, "the stated upper bound of the poison rate; default 0.2")
        if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)) or not multiplier > 0:
            raise ValueError(f"flagging rule {name!r}: multiplier must be > 0 (Tran et al. use 1.5), got {multiplier!r}")
        self.upper_bound = upper_bound
        self.multiplier = multiplier

    def flag(self, split: Split) -> Flagging:
        if split.scores is None:
            return no_scores(split)
        if split.n < 2:
            return Flagging.abstain(split.n, f"{split.n} image(s): a budget in [1, N-1] is empty: abstained")
        m = int(min(max(round_half_up(self.multiplier * self.upper_bound * split.n), 1), split.n - 1))
        return Flagging.of(top_scores(split.scores, m),
                           f"the {m} highest scores of {split.n} = round({self.multiplier} × upper bound "
                           f"{self.upper_bound} × {split.n}), clipped to [1, {split.n - 1}]: flagged",
                           budget=m, upper_bound=self.upper_bound, multiplier=self.multiplier)
