"""The summary's second question, *can the detector flag the poison unaided?* (issue 28): per flagging rule, the
detector whose flagged set has the best F1 here, how often that rule abstained for it, and the false-alarm rate
(the share it flags) of the same detector and rule on the clean control. The first question, whether it separates
the poison at all, is :mod:`.summary`'s, on values no rule decides; nothing here enters it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from hansbench.bench.report.results import Cell, oriented, seed_cell, value_range
from hansbench.bench.report.verdicts.protocol import ABSTAINED, FALSE_ALARM, FLAG_F1

Detector = tuple[str, str]


@dataclass(frozen=True)
class FlagVerdict:
    """One rule's answer: the ``best`` detector by its flag F1 (``f1``, by seed), on ``abstained`` of
    ``n_abstain`` seeds the rule abstained for it (None: not recorded), its share flagged on the clean control
    ``clean`` (None: no clean control or no rows there)."""

    rule: str
    best: Detector
    f1: Cell
    abstained: int | None
    n_abstain: int
    clean: Cell | None
    clean_scenario: str = ""


def _rows(seeded: pd.DataFrame, scenario: str, model: str, metric: str, rule: str) -> pd.DataFrame:
    """A rule's rows of one value (any detection family: the flag values are named by the protocol)."""
    if "rule" not in seeded:
        return seeded.iloc[:0]
    return seeded[(seeded.scenario == scenario) & (seeded.model == model) & (seeded.metric == metric)
                  & (seeded.rule == rule) & (seeded.clusterer != "")]


def _by_seed(d: pd.DataFrame) -> dict[Detector, pd.Series]:
    d = d[d.value.notna()]
    return {k: g.groupby("seed")["value"].mean() for k, g in d.groupby(["explainer", "clusterer"], sort=False)}


def rules_of(seeded: pd.DataFrame, scenario: str, model: str) -> list[str]:
    """The flagging rules with flag-F1 rows here, in the order they appear."""
    if "rule" not in seeded:
        return []
    d = seeded[(seeded.scenario == scenario) & (seeded.model == model) & (seeded.metric == FLAG_F1)
               & (seeded.rule != "") & seeded.value.notna()]
    return list(dict.fromkeys(d.rule))


def flag_verdict(seeded: pd.DataFrame, scenario: str, model: str, rule: str, clean: str | None,
                 keep=None) -> FlagVerdict | None:
    """The best detector of ``rule`` by flag F1 (ties: the first seen), its abstain count and its false alarms on
    the ``clean`` control scenario; ``keep``: which detectors may be named (all where None)."""
    d = _rows(seeded, scenario, model, FLAG_F1, rule)
    by = {k: s for k, s in _by_seed(d).items() if keep is None or keep(k)}
    if not by:
        return None
    higher = bool(d.higher_is_better.iloc[0])
    best = min(by, key=lambda k: oriented(by[k].mean(), higher))
    f1 = seed_cell(by[best], value_range(FLAG_F1, str(d.unit.iloc[0])), higher)
    ab = _rows(seeded, scenario, model, ABSTAINED, rule)
    ab = ab[(ab.explainer == best[0]) & (ab.clusterer == best[1]) & ab.value.notna()].groupby("seed")["value"].max()
    k = int((ab >= 0.5).sum()) if len(ab) else None
    cell = None
    if clean:
        fa = _rows(seeded, clean, model, FALSE_ALARM, rule)
        s = _by_seed(fa).get(best)
        if s is not None and len(s):
            cell = seed_cell(s, value_range(FALSE_ALARM, str(fa.unit.iloc[0])), False)
    return FlagVerdict(rule, best, f1, k, len(ab), cell, clean or "")


def flag_verdicts(seeded: pd.DataFrame, scenario: str, model: str, clean: str | None, keep=None) -> list[FlagVerdict]:
    """:func:`flag_verdict` of every rule with rows here."""
    out = [flag_verdict(seeded, scenario, model, r, clean, keep) for r in rules_of(seeded, scenario, model)]
    return [v for v in out if v is not None and math.isfinite(v.f1.mean)]
