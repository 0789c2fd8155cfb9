"""Reliance: did the poisoning take? Measured per trained model, shown before any method's score.

A scenario is worth ranking explanation methods on only if its model actually relies on the
artifact (DESIGN.md, "Data flow"). Explainer-free, one set of rows per trained model. Whether it
took is decided on counts of test images, never on a float crossing a threshold (issue 29: a gap
stored as 19.9999988 against "≥ 20 pp" flipped a verdict; a 9.4-point gap on real photographs was
refused while explanations separated the poisoned images perfectly):

- The paired images: the artifact test's images that really carry the artifact and show a source
  class (CH: the affected class; BD: the source class, all-to-one: every non-target class), and
  the SAME images of the clean test (``make_scenario`` builds both test sets from one set of clean
  images; checked: same length, same true labels). Per image a hit with and a hit without the
  artifact (CH: predicted as the affected class; BD, LF: predicted as the target). ``gained``
  counts the images hit only with the artifact, ``lost`` those hit only without it, ``paired`` all.
- ``took-p``: McNemar's exact test, one-sided in the poisoning's direction: the binomial
  P(X ≥ gained), X ~ Bin(gained + lost, 1/2) (``scipy.stats.binomtest``). Clever Hans also
  tests the insertion flips the same way (the artifact stamped on other classes' clean images:
  ``flip-to`` moved to the affected class, ``flip-from`` moved away), and ``took-p`` is then
  the Bonferroni-adjusted smaller p, min(1, 2 · min(p_gap, p_flip)). ``took`` = 1.0 when
  ``took-p`` < ``alpha`` (0.05), else 0.0.
- The reliance axis, reported beside every detection result: the paired gap (CH: ``acc-gap`` =
  ``artifact-class-acc`` − ``clean-class-acc``; BD, LF: ``asr-gap`` = ``asr`` −
  ``clean-to-target``), percentage points computed from the counts (100 · (gained − lost) /
  paired), with its 95 % interval (``acc-gap-low``/``-high``, ``asr-gap-low``/``-high``): Newcombe's hybrid score interval
  for a paired difference (1998, method 10: the two Wilson intervals and the phi correlation).
- If the two test sets cannot be paired (different images), the test falls back to Fisher's exact
  test on the two accuracies (one-sided), the interval to Newcombe's unpaired hybrid score one
  (phi = 0), ``gained``/``lost``/``paired`` are missing, and the detail says so (``"test"``).
- Clever Hans (``target_class`` is None; also a clean ``none`` scenario, whose artifact test
  still carries the artifact): ``artifact-class-acc``, ``clean-class-acc``, ``acc-gap`` and the
  insertion ``flip-rate`` (% of the other classes' images not predicted as the affected class
  before that are after; the images and stamps of ``artifact-insertion``).
- Backdoor, one-to-one (``BD``) or all-to-one (``BD-A2O``): ``asr`` (attack success: % of the
  triggered source-class images predicted as the target; the one definition, also of the label-
  flip control) and ``clean-to-target`` (% of the same images clean predicted as the target).
- Label-flip control (``LF``, ``LF-A2O``: relabelled, never stamped): the same values; ``took``
  is NaN: with no trigger there is nothing to take (the ``control`` gate removes it).
- All: ``clean-acc`` (overall clean-test accuracy), ``near-chance`` (1.0 / 0.0: clean accuracy ≤
  1 / num_classes + ``chance_margin``) and ``control`` (1.0 for a label flip or the clean ``none``).

``higher_is_better`` reads "the scenario is more worth ranking". The leaderboard's gates
(``gates``) leave a model out of the ranks when ``took`` is 0, ``near-chance`` is 1 or
``control`` is 1 (NaN gates nothing). Undefined values (no source-class image) are missing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import torch
from scipy import stats

from hansbench.metrics._retraining import predict_logits, triggered_sources
from hansbench.metrics.artifact_insertion import flip_rate, insertion_logits
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.presentation import RELIANCE
from hansbench.registry import metrics

_TOL = 1e-4  # percentage points: a clean accuracy at the near-chance level counts as reaching it
_Z = stats.norm.ppf(0.975)  # the gap's interval: 95 %


def _percent(k: int, n: int) -> float:
    """100 k / n from the counts (float64: 12 of 60 is 20.0, not 19.9999988); NaN when n is 0."""
    return 100.0 * k / n if n else math.nan


def mcnemar_p(gained: int, lost: int) -> float:
    """McNemar's exact test, one-sided: P(X >= gained), X ~ Bin(gained + lost, 1/2); 1.0 with no discordant pair."""
    if gained + lost == 0:
        return 1.0
    return float(stats.binomtest(gained, gained + lost, 0.5, alternative="greater").pvalue)


def _wilson(k: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def newcombe(k1: int, n1: int, k2: int, n2: int, phi: float = 0.0) -> tuple[float, float]:
    """Newcombe's hybrid score 95 % interval for p1 - p2 (proportions k/n) from the Wilson intervals;
    ``phi`` the correlation of paired data (0: independent samples)."""
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = _wilson(k1, n1), _wilson(k2, n2)
    low = p1 - p2 - math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    high = p1 - p2 + math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return max(low, -1.0), min(high, 1.0)


def paired_phi(both: int, gained: int, lost: int, neither: int) -> float:
    """Newcombe's (1998, method 10) phi of a paired 2x2 table, its numerator corrected by n / 2 when positive."""
    n = both + gained + lost + neither
    margins = (both + gained) * (lost + neither) * (both + lost) * (gained + neither)
    if margins == 0:
        return 0.0
    num = both * neither - gained * lost
    num = num - n / 2 if num > n / 2 else (num if num < 0 else 0.0)
    return num / math.sqrt(margins)


@dataclass(frozen=True)
class PairedOutcome:
    """Hits with and without the artifact, their counts, the one-sided exact test and the gap (pp) with its interval."""

    n_with: int
    hits_with: int
    n_without: int
    hits_without: int
    gained: float  # NaN when unpaired
    lost: float
    paired: bool
    p: float
    low: float  # pp
    high: float

    @property
    def with_pct(self) -> float:
        return _percent(self.hits_with, self.n_with)

    @property
    def without_pct(self) -> float:
        return _percent(self.hits_without, self.n_without)

    @property
    def gap(self) -> float:
        """Percentage points, from the counts (paired: 100 (gained - lost) / n, exactly the accuracies' difference)."""
        if self.paired:
            return _percent(int(self.gained) - int(self.lost), self.n_with)
        return self.with_pct - self.without_pct


def paired_outcome(hit_with: torch.Tensor, hit_without: torch.Tensor, paired: bool = True) -> PairedOutcome:
    """The test of "the artifact raises the hit rate" on per-image hits: McNemar's exact one-sided test and
    Newcombe's paired interval when ``paired`` (the same images, in the same order), else Fisher's exact
    one-sided test and the unpaired interval. Empty inputs give NaN everywhere."""
    n1, n2 = int(hit_with.numel()), int(hit_without.numel())
    k1, k2 = int(hit_with.sum()), int(hit_without.sum())
    if paired and n1 != n2:
        raise ValueError(f"paired hits need the same images: {n1} with vs {n2} without the artifact")
    if n1 == 0 or n2 == 0:
        nan = math.nan
        return PairedOutcome(n1, k1, n2, k2, nan, nan, paired, nan, nan, nan)
    if paired:
        gained, lost = int((hit_with & ~hit_without).sum()), int((~hit_with & hit_without).sum())
        both = int((hit_with & hit_without).sum())
        phi = paired_phi(both, gained, lost, n1 - both - gained - lost)
        low, high = newcombe(k1, n1, k2, n2, phi)
        return PairedOutcome(n1, k1, n2, k2, gained, lost, True, mcnemar_p(gained, lost), 100 * low, 100 * high)
    p = float(stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="greater")[1])
    low, high = newcombe(k1, n1, k2, n2)
    return PairedOutcome(n1, k1, n2, k2, math.nan, math.nan, False, p, 100 * low, 100 * high)


def can_pair(ctx: EvalContext) -> bool:
    """Whether the clean and artifact test sets hold the same images (same length, same true labels)."""
    a, b = ctx.data.clean_test, ctx.data.artifact_test
    return len(a) == len(b) and torch.equal(a.true_labels, b.true_labels)


@metrics.register("reliance")
class Reliance(Metric):
    """Whether the trained model relies on the artifact: McNemar's exact paired test on the source-class test images
    with and without it (CH: affected-class accuracy, and insertion flips; BD: attack success), and the gap.

    Options: ``alpha`` (0.05) of the test that sets ``took``; ``chance_margin`` (0.1, a share) for
    ``near-chance``; ``n_images`` (200) and ``batch_size`` of the insertion test (as ``artifact-insertion``).
    """

    level = "model"
    presentation = replace(
        RELIANCE,
        headline=("artifact-class-acc", "clean-class-acc", "acc-gap", "asr", "asr-gap", "flip-rate", "took-p",
                  "clean-acc"),
        gates={"took": "poisoning did not take", "near-chance": "model near chance",
               "control": "control scenario (label flip or clean): no trigger to rank on"},
        supersedes=("model-accuracy", "artifact-insertion"),
        effect=("acc-gap", "asr-gap"),  # how strongly it took: the paired gap (CH: accuracy; BD: attack success)
        meaning=("does the model rely on the artifact (the same test images with / without it; CH: affected-class "
                 "accuracy, its gap, flip rate; BD: attack success over every source class; took: McNemar's exact "
                 "one-sided test, p < alpha; gap interval: Newcombe's paired 95 %)"))
    version = "3"  # 3: took from McNemar's exact paired test (counts), gap interval, float64 shares from counts
    values = {
        "artifact-class-acc": ("%", True),  # CH: affected class on the artifact test
        "clean-class-acc": ("%", True),  # CH: the same images on the clean test
        "acc-gap": ("pp", True),  # CH: artifact-class-acc - clean-class-acc
        "flip-rate": ("%", True),  # CH: other classes' clean images flipped to the affected class by the artifact
        "asr": ("%", True),  # BD, LF: artifact-test source-class images predicted as the target
        "clean-to-target": ("%", False),  # BD, LF: the same images clean, predicted as the target
        "asr-gap": ("pp", True),  # BD, LF: asr - clean-to-target
        "acc-gap-low": ("pp", True),  # the gap's 95 % interval (Newcombe; paired when the test sets pair)
        "acc-gap-high": ("pp", True),
        "asr-gap-low": ("pp", True),
        "asr-gap-high": ("pp", True),
        "paired": ("images", True),  # the paired images (source class, artifact really stamped)
        "gained": ("images", True),  # hit with the artifact only (CH: right class; BD: sent to the target)
        "lost": ("images", False),  # hit without it only
        "flip-to": ("images", True),  # CH insertion: moved to the affected class by the artifact
        "flip-from": ("images", False),  # CH insertion: moved away from it
        "took-p": ("p", False),  # the gate's p (McNemar exact, one-sided; CH: Bonferroni over gap and flips)
        "clean-acc": ("%", True),  # overall clean-test accuracy
        "took": ("bool", True),  # took-p < alpha
        "near-chance": ("bool", False),
        "control": ("bool", False),
    }

    def __init__(self, *, alpha: float = 0.05, chance_margin: float = 0.1, n_images: int | None = 200,
                 batch_size: int = 256):
        for name, value, low_open in (("alpha", alpha, True), ("chance_margin", chance_margin, False)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0 \
                    or (low_open and value == 0.0):
                raise ValueError(f"reliance option {name} is a share in [0, 1] (0.05 = 5 %), got {value!r}")
        self.alpha = float(alpha)
        self.chance_margin = float(chance_margin)
        self.n_images = n_images
        self.batch_size = int(batch_size)

    def _predictions(self, ctx: EvalContext, split_name: str) -> torch.Tensor:
        with torch.no_grad():
            return predict_logits(ctx.model, ctx.data.split(split_name), ctx.device, self.batch_size).argmax(1)

    def _outcome(self, ctx: EvalContext, hit_class: int, pred_clean: torch.Tensor,
                 pred_art: torch.Tensor) -> tuple[PairedOutcome, str]:
        """The hits on the source-class images with and without the artifact, paired where the test sets pair."""
        data = ctx.data
        clean, art = data.clean_test, data.artifact_test
        wanted = torch.as_tensor(data.source_classes, dtype=clean.true_labels.dtype)
        on_art = triggered_sources(art, data)  # the one selection of attack success: really carrying the artifact
        if can_pair(ctx):
            return (paired_outcome(pred_art[on_art] == hit_class, pred_clean[on_art] == hit_class),
                    "McNemar exact, one-sided, on the same images with / without the artifact")
        on_clean = torch.isin(clean.true_labels, wanted)
        return (paired_outcome(pred_art[on_art] == hit_class, pred_clean[on_clean] == hit_class, paired=False),
                "Fisher exact, one-sided, unpaired: clean_test and artifact_test do not hold the same images")

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Whether the model took the poisoning (paired exact test on counts) and how strongly (gap and interval)."""
        data = ctx.data
        rule = data.poisoning_rule
        clean = data.clean_test
        pred_clean, pred_art = self._predictions(ctx, "clean_test"), self._predictions(ctx, "artifact_test")
        n_right = int((pred_clean == clean.true_labels).sum())
        clean_acc = _percent(n_right, len(clean))
        chance = 100.0 / data.num_classes + 100.0 * self.chance_margin
        near_chance = math.nan if math.isnan(clean_acc) else float(clean_acc <= chance + _TOL)
        backdoor = data.target_class is not None
        out, test = self._outcome(ctx, data.target_class if backdoor else data.affected_class, pred_clean, pred_art)
        info: dict = {"poisoning": data.poisoning, "affected_class": data.affected_class,
                      "source_classes": data.source_classes, "n_clean_affected": out.n_without,
                      "n_artifact_affected": out.n_with, "chance_acc": chance, "test": test, "alpha": self.alpha,
                      "interval": "Newcombe hybrid score 95 %" + (" (paired)" if out.paired else " (unpaired)")}
        ps = [out.p]
        if backdoor:
            info["target_class"] = data.target_class
            named = [("asr", out.with_pct, "artifact_test"), ("clean-to-target", out.without_pct, "clean_test"),
                     ("asr-gap", out.gap, "")]
            flips: list = []
        else:
            ins = insertion_logits(ctx, data.affected_class, self.n_images, self.batch_size)
            info["n_inserted"] = 0 if ins is None else int(ins[0].numel())
            flips = self._flips(ins, data.affected_class)
            ps += [mcnemar_p(flips[1], flips[2])] if ins is not None else []
            named = [("artifact-class-acc", out.with_pct, "artifact_test"),
                     ("clean-class-acc", out.without_pct, "clean_test"), ("acc-gap", out.gap, "")]
        ps = [p for p in ps if not math.isnan(p)]
        took_p = min(1.0, len(ps) * min(ps)) if ps else math.nan  # Bonferroni over the defined tests
        if rule.control_of:
            took = math.nan  # no trigger: nothing to take (the gate is ``control``)
            info["rule"] = f"label-flip control of {rule.control_of}: no trigger, took undefined"
        else:
            took = math.nan if math.isnan(took_p) else float(took_p < self.alpha)
            info["rule"] = f"took-p < {self.alpha:g}" + (" (Bonferroni over the gap and flip tests)" if len(ps) > 1
                                                         else "")
        gap_name = "asr-gap" if backdoor else "acc-gap"
        detail = json.dumps(info)
        rows = [self.row(name, value, split=split, detail=detail) for name, value, split in named]
        if flips:
            rows += [self.row("flip-rate", flips[0], split="clean_test", detail=detail),
                     self.row("flip-to", flips[1], split="clean_test", detail=detail),
                     self.row("flip-from", flips[2], split="clean_test", detail=detail)]
        rows += [self.row(name, value, detail=detail) for name, value in (
            (f"{gap_name}-low", out.low), (f"{gap_name}-high", out.high), ("paired", out.n_with if out.paired else math.nan),
            ("gained", out.gained), ("lost", out.lost), ("took-p", took_p))]
        rows += [self.row("clean-acc", clean_acc, split="clean_test", detail=detail),
                 self.row("took", took, detail=detail),
                 self.row("near-chance", near_chance, split="clean_test", detail=detail),
                 self.row("control", float(rule.is_control), detail=detail)]
        for r in rows:  # undefined (e.g. `took` of a label flip, an empty source set): explicitly missing
            if isinstance(r["value"], float) and math.isnan(r["value"]):
                r["value"] = None
        return rows

    @staticmethod
    def _flips(ins, watched: int) -> list:
        """CH insertion: [flip rate %, images moved to ``watched``, images moved away]; NaNs without insertion."""
        if ins is None:
            return [math.nan, math.nan, math.nan]
        before, after = ins[1].argmax(1) == watched, ins[2].argmax(1) == watched
        return [flip_rate(ins[1], ins[2], watched), int((~before & after).sum()), int((before & ~after).sum())]
