"""Reliance: did the poisoning take? Measured per trained model, shown before any method's score.

A scenario is worth ranking explanation methods on only if its model actually relies on the
artifact (DESIGN.md, "Data flow"). Explainer-free, one set of rows per trained model:

- Clever Hans (``target_class`` is None; also a clean ``none`` scenario, whose artifact test
  still carries the artifact): the affected class's accuracy on the artifact test and on the
  clean test (by true class), their gap (artifact − clean, percentage points), and the
  insertion flip rate: the artifact stamped (on the object box) on clean-test images of the
  other classes, the % of those not predicted as the affected class before that are predicted
  as it after (the images and stamps of ``artifact-insertion``).
- Backdoor, one-to-one (``BD``) or all-to-one (``BD-A2O``): the attack success rate (% of the
  artifact test's triggered source-class images predicted as the target: the affected class's,
  all-to-one: every non-target class's), and the % of the same images *clean* predicted as the
  target (the backdoor firing without its trigger).
- Label-flip control (``LF``, ``LF-A2O``: relabelled, never stamped): ``clean-to-target`` (did
  the label noise take: clean source images predicted as the target) and ``asr`` (the same images
  with the artifact, which the model never saw relabelled with it: the control of the backdoor's
  ASR). ``took`` is NaN: with no trigger there is nothing to take.
- All: the overall clean-test accuracy, ``took`` (1.0 / 0.0: CH: gap ≥ ``min_gap`` or flip
  rate ≥ ``min_flip_rate``; BD: ASR ≥ ``min_asr``), ``near-chance`` (1.0 / 0.0: clean
  accuracy ≤ 1 / num_classes + ``chance_margin``; a model that learned nothing shows no
  reliance worth explaining) and ``control`` (1.0 for a control scenario: a label flip or the
  clean ``none``; 0.0 otherwise). Thresholds are shares in [0, 1]; values are in %.

``higher_is_better`` of each value reads "the scenario is more worth ranking": a larger gap,
flip rate, ASR and clean accuracy, ``took`` = 1; ``near-chance``, ``control`` and a backdoor
that fires on clean images are worse. The leaderboard's gates (``gates``) leave a model out of
the ranks when ``took`` is 0, ``near-chance`` is 1 or ``control`` is 1 (NaN gates nothing).
Undefined values (no source-class test image) are NaN, and so is ``took`` when all its inputs are.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import torch

from hansbench.metrics._retraining import predict_logits
from hansbench.metrics.artifact_insertion import flip_rate, insertion_logits
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.presentation import RELIANCE
from hansbench.registry import metrics

_TOL = 1e-4  # percentage points: float32 accuracies at a threshold count as reaching it


def _share(hit: torch.Tensor) -> float:
    """% of True in ``hit``; NaN when empty."""
    return 100.0 * hit.float().mean().item() if hit.numel() else math.nan


def _at_least(value: float, threshold: float) -> bool:
    return not math.isnan(value) and value >= threshold - _TOL


@metrics.register("reliance")
class Reliance(Metric):
    """Whether the trained model relies on the artifact: CH accuracy gap and flip rate, BD attack success rate.

    Options (shares in [0, 1]): ``min_gap`` (0.2) and ``min_flip_rate`` (0.2) for Clever Hans,
    ``min_asr`` (0.5) for backdoors, ``chance_margin`` (0.1) for ``near-chance``; ``n_images``
    (200) and ``batch_size`` of the insertion test (as ``artifact-insertion``).
    """

    level = "model"
    presentation = replace(
        RELIANCE,
        headline=("artifact-class-acc", "clean-class-acc", "flip-rate", "asr", "clean-acc"),
        gates={"took": "poisoning did not take", "near-chance": "model near chance",
               "control": "control scenario (label flip or clean): no trigger to rank on"},
        supersedes=("model-accuracy", "artifact-insertion"),
        effect=("acc-gap", "asr"),  # how strongly it took: CH's accuracy gap, a backdoor's attack success rate
        meaning=("does the model rely on the artifact (CH: affected-class accuracy with / without it, flip rate; BD: "
                 "attack success over every source class, clean accuracy; LF control: label noise, no trigger)"))
    version = "2"  # 2: ASR over the source classes (all-to-one), label-flip controls, control gate, boxes
    values = {
        "artifact-class-acc": ("%", True),  # CH: affected class on the artifact test
        "clean-class-acc": ("%", True),  # CH: affected class on the clean test
        "acc-gap": ("pp", True),  # CH: artifact-class-acc - clean-class-acc
        "flip-rate": ("%", True),  # CH: other classes' clean images flipped to the affected class by the artifact
        "asr": ("%", True),  # BD, LF: artifact-test source-class images predicted as the target
        "clean-to-target": ("%", False),  # BD, LF: the same images clean, predicted as the target
        "clean-acc": ("%", True),  # overall clean-test accuracy
        "took": ("bool", True),
        "near-chance": ("bool", False),
        "control": ("bool", False),
    }

    def __init__(self, *, min_gap: float = 0.2, min_flip_rate: float = 0.2, min_asr: float = 0.5,
                 chance_margin: float = 0.1, n_images: int | None = 200, batch_size: int = 256):
        for name, value in (("min_gap", min_gap), ("min_flip_rate", min_flip_rate), ("min_asr", min_asr),
                            ("chance_margin", chance_margin)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"reliance option {name} is a share in [0, 1] (0.2 = 20 %), got {value!r}")
        self.min_gap = float(min_gap)
        self.min_flip_rate = float(min_flip_rate)
        self.min_asr = float(min_asr)
        self.chance_margin = float(chance_margin)
        self.n_images = n_images
        self.batch_size = int(batch_size)

    def _predictions(self, ctx: EvalContext, split_name: str) -> torch.Tensor:
        with torch.no_grad():
            return predict_logits(ctx.model, ctx.data.split(split_name), ctx.device, self.batch_size).argmax(1)

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Whether the model took the poisoning (CH: accuracy gap and flip rate; BD: attack success rate)."""
        data = ctx.data
        rule = data.poisoning_rule
        aff, sources = data.affected_class, data.source_classes
        clean, art = data.clean_test, data.artifact_test
        pred_clean, pred_art = self._predictions(ctx, "clean_test"), self._predictions(ctx, "artifact_test")
        clean_acc = _share(pred_clean == clean.true_labels)
        chance = 100.0 / data.num_classes + 100.0 * self.chance_margin
        near_chance = math.nan if math.isnan(clean_acc) else float(clean_acc <= chance + _TOL)
        wanted = torch.as_tensor(sources, dtype=clean.true_labels.dtype)
        src_clean, src_art = torch.isin(clean.true_labels, wanted), torch.isin(art.true_labels, wanted)
        # Only images that really carry the artifact count on the artifact test.
        src_art = src_art & art.poisoned
        info: dict = {"poisoning": data.poisoning, "affected_class": aff, "source_classes": sources,
                      "n_clean_affected": int(src_clean.sum()), "n_artifact_affected": int(src_art.sum()),
                      "chance_acc": chance}
        rows = []
        if data.target_class is not None:  # a backdoor, or its label-flip control
            tgt = data.target_class
            asr = _share(pred_art[src_art] == tgt)
            clean_to_target = _share(pred_clean[src_clean] == tgt)
            if rule.control_of:
                took = math.nan  # no trigger: nothing to take (the gate is ``control``)
                info.update(target_class=tgt, rule=f"label-flip control of {rule.control_of}: no trigger, took undefined")
            else:
                took = math.nan if math.isnan(asr) else float(_at_least(asr, 100.0 * self.min_asr))
                info.update(target_class=tgt, rule=f"asr >= {100 * self.min_asr:g} %")
            detail = json.dumps(info)
            rows += [self.row("asr", asr, split="artifact_test", detail=detail),
                     self.row("clean-to-target", clean_to_target, split="clean_test", detail=detail)]
        else:
            aff_art = art.poisoned & (art.true_labels == aff)
            aff_clean = clean.true_labels == aff
            art_acc = _share(pred_art[aff_art] == aff)
            clean_class_acc = _share(pred_clean[aff_clean] == aff)
            gap = art_acc - clean_class_acc  # NaN if either is
            out = insertion_logits(ctx, aff, self.n_images, self.batch_size)
            flips = math.nan if out is None else flip_rate(out[1], out[2], aff)
            if math.isnan(gap) and math.isnan(flips):
                took = math.nan
            else:
                took = float(_at_least(gap, 100.0 * self.min_gap) or _at_least(flips, 100.0 * self.min_flip_rate))
            info.update(rule=f"acc-gap >= {100 * self.min_gap:g} pp or flip-rate >= {100 * self.min_flip_rate:g} %",
                        n_inserted=0 if out is None else int(out[0].numel()))
            detail = json.dumps(info)
            rows += [self.row("artifact-class-acc", art_acc, split="artifact_test", detail=detail),
                     self.row("clean-class-acc", clean_class_acc, split="clean_test", detail=detail),
                     self.row("acc-gap", gap, detail=detail),
                     self.row("flip-rate", flips, split="clean_test", detail=detail)]
        rows += [self.row("clean-acc", clean_acc, split="clean_test", detail=detail),
                 self.row("took", took, detail=detail),
                 self.row("near-chance", near_chance, split="clean_test", detail=detail),
                 self.row("control", float(rule.is_control), detail=detail)]
        for r in rows:  # undefined (e.g. `took` of a label flip, an empty source set): explicitly missing
            if isinstance(r["value"], float) and math.isnan(r["value"]):
                r["value"] = None
        return rows
