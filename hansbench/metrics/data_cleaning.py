"""Data cleaning + retraining (PRP conclusion; SpRAy paper's "un-Hans"; the defence's outcome of PAPERS.md §9):
does removing what a detector flags fix the model, and more than removing as many images at random?

``data-cleaning`` (level "flagging": once per detector x flagging rule) removes the training images the rule
flagged (``ctx.flagging``), retrains a fresh model of the same kind with the same recipe (``ctx.train_model``,
cached by content: equal removed sets share one retraining), and reports at stage ``cleaned`` the affected
class's and the overall accuracy on the artifact and clean test sets, attack success for backdoors (``asr``,
:func:`hansbench.metrics._retraining.attack_success`, the one definition) and the reliance gap for Clever Hans
(``acc-gap``, reliance's paired gap: the affected class's accuracy with the artifact minus without it), how many
images were removed, the precision and recall of the removed set, and what the cleaning cost in clean accuracy
(``clean-acc-cost``). Beside it, stage ``random``: a random filter of the same size (as many images drawn
uniformly from the clustered class, seeded by the run's seed and the count), retrained the same way, the floor
the defence literature (Armory's baselines, BackdoorBench) reports. A rule that abstained removes nothing: no
intervention, the model as is at both stages, and the rows' ``detail`` says so.

``data-cleaning-baselines`` (level model) brackets it: stage ``none`` (the poisoned model as is), ``oracle``
(exactly the truly poisoned images removed: the perfect filter) and ``oracle-restores``, whether the perfect
filter itself restores the model; where it does not, no filter can be judged on the scenario.

Cost: data cleaning is the expensive metric. Per clustering x rule it retrains at most twice (the flagged set
and its random twin), none when the rule abstained; equal removed sets (two rules flagging the same images, a
perfect detector and the oracle, random filters of one count on one seed) share one retraining. The baselines
retrain once per model (the oracle).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import torch

from hansbench.metrics._retraining import (
    ASR,
    CLASS_ACC,
    OVERALL_ACC,
    indices_tag,
    predict_logits,
    require_train_model,
    stage_rows,
    stage_values,
)
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.cluster_detection import no_clean_images
from hansbench.metrics.flag_detection import flagged_samples, rule_detail
from hansbench.metrics.presentation import Shows
from hansbench.metrics.reliance import Reliance
from hansbench.registry import metrics

VALUES = {
    **CLASS_ACC,
    **OVERALL_ACC,
    **ASR,
    "acc-gap": ("pp", False),  # Clever Hans: reliance's paired gap (artifact minus clean affected-class accuracy)
    "n-removed": ("count", False),
    "precision-removed": ("%", True),  # share of removed images that were truly poisoned
    "recall-removed": ("%", True),  # share of the poisoned images that were removed
    "clean-acc-cost": ("pp", False),  # clean-test accuracy as trained minus after cleaning (negative: a gain)
}
# The one table both cleaning metrics fill. n-removed is undirected: how many were removed is no score, precision
# and recall say how well.
CLEANING = Shows(table="cleaning", shape="stages", undirected=("n-removed",), headline=(
    "n-removed", "precision-removed", "recall-removed", "class-acc", "acc", "asr", "acc-gap", "clean-acc-cost"),
    stages=("cleaned", "random"), meaning=(
    "the defence's outcome: remove what a detector and rule flag, retrain; beside a random filter of the same size "
    "(random), the poisoned model (none) and the perfect filter (oracle)"))
# The baselines add whether the perfect filter restores the model (their rows none / oracle are rows of the table).
BASELINES = replace(CLEANING, headline=(*CLEANING.headline, "oracle-restores"))
RESTORE_MARGIN = 5.0  # points of clean affected-class accuracy the perfect filter may lose and still restore
RESTORE_FLOOR = 50.0  # % clean affected-class accuracy under which the perfect filter restores nothing


def reliance_gap(model: torch.nn.Module, ctx: EvalContext) -> float | None:
    """Reliance's paired gap (pp) of ``model`` on a Clever Hans scenario: the affected class's accuracy on the
    artifact test minus on the clean test, on the same images (``Reliance._outcome``, the one definition);
    ``None`` for a backdoor (its effect is ``asr``) or without such images."""
    data = ctx.data
    if data.target_class is not None:
        return None
    pred = {name: predict_logits(model, data.split(name), ctx.device).argmax(1)
            for name in ("clean_test", "artifact_test")}
    out, _ = Reliance()._outcome(ctx, data.affected_class, pred["clean_test"], pred["artifact_test"])
    return None if np.isnan(out.gap) else float(out.gap)


def cleaning_rows(metric: Metric, ctx: EvalContext, removed: torch.Tensor, stage: str, detail: str = "") -> list[dict]:
    """Retrain without the train samples at ``removed`` and report the stage rows.

    The training tag depends on the removed set only, so a clustering that removes exactly the
    poisoned images shares the oracle's retrained model. Removing nothing is no intervention:
    the context's model is scored as is (no retraining of an identical training set).
    Precision and recall of the removed set need poisoned images (none on a clean control: not emitted).
    Every row carries ``detail``.
    """
    data = ctx.data
    removed = torch.as_tensor(removed, dtype=torch.long).flatten().unique()
    n = len(data.train)
    if removed.numel() and (removed.min() < 0 or removed.max() >= n):
        raise ValueError(f"removed train indices must be in 0..{n - 1}")
    keep = torch.ones(n, dtype=torch.bool)
    keep[removed] = False
    if not keep.any():
        raise ValueError(f"metric {metric.name!r}: cleaning would remove all {n} training images")
    if removed.numel() == 0:
        model = ctx.model
    else:
        train_model = require_train_model(ctx, metric.name)
        model = train_model(data.train.subset(keep), indices_tag("data-cleaning", removed))
    poisoned = data.train.poisoned
    hits = poisoned[removed].sum().item()
    rows = [metric.row("n-removed", removed.numel(), stage=stage)]
    if removed.numel() and poisoned.any():
        rows.append(metric.row("precision-removed", 100.0 * hits / removed.numel(), stage=stage))
    if poisoned.any():
        rows.append(metric.row("recall-removed", 100.0 * hits / poisoned.sum().item(), stage=stage))
    if removed.numel():
        before = stage_values(predict_logits(ctx.model, data.clean_test, ctx.device), data.clean_test, data)
        after = stage_values(predict_logits(model, data.clean_test, ctx.device), data.clean_test, data)
        if "acc" in before and "acc" in after:
            rows.append(metric.row("clean-acc-cost", before["acc"] - after["acc"], split="clean_test", stage=stage))
    gap = reliance_gap(model, ctx)
    if gap is not None:
        rows.append(metric.row("acc-gap", gap, stage=stage))
    rows += stage_rows(metric, model, data, ctx.device, stage)
    for row in rows:
        row["detail"] = detail
    return rows


def random_filter(ctx: EvalContext, index: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` train indices drawn uniformly without replacement from ``index`` (the clustered class), with a
    generator seeded by the run's seed and the count: the same seed and count give the same set."""
    if not 0 <= count <= index.numel():
        raise ValueError(f"a random filter draws 0..{index.numel()} of the clustered samples, not {count}")
    order = torch.randperm(index.numel(), generator=ctx.generator(salt=count))
    return index[order[:count]]


@metrics.register("data-cleaning")
class DataCleaning(Metric):
    """Remove what a detector's flagging rule flagged, retrain, and measure whether the artifact's effect is gone,
    beside a random filter of the same size.

    Removed = ``ctx.cluster_index[ctx.flagging.flagged]`` (chosen without labels); rows at stage ``cleaned``
    and, for as many images drawn at random from the clustered class (:func:`random_filter`), at stage
    ``random``. A rule that abstained removes nothing: both stages are the model as is (no retraining), and
    ``detail`` says so. Compare with ``data-cleaning-baselines`` (``none``, ``oracle``). Expensive: up to two
    retrainings per clustering x rule (see the module docstring); restrict it with the suite's filter keys
    (``models``, ``explainers``, ``clusterers``, ``rules``), applied by the planner.
    """

    level = "flagging"
    presentation = CLEANING
    needs_retraining = True
    values = VALUES
    version = "3"  # per flagging rule, beside a random filter of the same size; acc-gap; one attack success

    def not_applicable(self, *, model_kind: str, scenario: dict, **kw) -> str | None:
        """Needs clean images in the inspected class; poisoned ones are optional (a clean control shows what
        cleaning costs there)."""
        return no_clean_images(self.name, scenario) or super().not_applicable(model_kind=model_kind,
                                                                               scenario=scenario, **kw)

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Retrain without the flagged images and without as many random ones; rows of both models."""
        flagged, index = flagged_samples(ctx, self.name)
        removed = index[torch.as_tensor(flagged)]
        count = int(removed.numel())
        info = rule_detail(ctx)
        if ctx.flagging.abstained:
            info["intervention"] = "none: the rule abstained, so nothing is removed and the model is scored as is"
        cleaned = cleaning_rows(self, ctx, removed, "cleaned", json.dumps({**info, "filter": "the rule's flags"}))
        random = cleaning_rows(self, ctx, random_filter(ctx, index, count), "random", json.dumps({
            **info, "filter": f"{count} images drawn uniformly from the {index.numel()} clustered ones "
                              f"(seed {ctx.seed}, salt {count})"}))
        return cleaned + random


@metrics.register("data-cleaning-baselines")
class DataCleaningBaselines(Metric):
    """The brackets of data cleaning: no cleaning (stage ``none``), removing exactly the poisoned images (``oracle``,
    the perfect filter) and whether that perfect filter restores the model (``oracle-restores``).

    ``oracle-restores`` (1.0 / 0.0, stage ``oracle``) is 0 when the perfect filter's clean affected-class
    accuracy is more than ``RESTORE_MARGIN`` (5) points below the poisoned model's, or under ``RESTORE_FLOOR``
    (50 %): removing the poison then removes the class with it (a backdoor relabelled most stop signs), and no
    filter's outcome can be judged on the scenario. Its ``detail`` says so in words, with both accuracies.
    """

    level = "model"
    presentation = BASELINES
    needs_retraining = True
    values = {**VALUES, "oracle-restores": ("bool", True)}
    version = "3"  # oracle-restores; acc-gap; one attack success

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Rows of the poisoned model (``none``), of one retrained without the poisoned images (``oracle``) and
        whether the latter restores the model."""
        rows = cleaning_rows(self, ctx, torch.zeros(0, dtype=torch.long), "none")
        oracle = torch.nonzero(ctx.data.train.poisoned).flatten()
        if oracle.numel():
            oracle_rows = cleaning_rows(self, ctx, oracle, "oracle")
            rows += oracle_rows
            acc = {r["stage"]: r["value"] for r in rows if r["metric"] == "class-acc" and r["split"] == "clean_test"}
            if "none" in acc and "oracle" in acc:
                ok, why = restores(acc["oracle"], acc["none"], ctx.data.class_names[ctx.data.affected_class])
                rows.append(self.row("oracle-restores", float(ok), split="clean_test", stage="oracle",
                                     detail=json.dumps({"restores": why, "margin_pp": RESTORE_MARGIN,
                                                        "floor_pct": RESTORE_FLOOR})))
        return rows


def restores(oracle_acc: float, poisoned_acc: float, class_name: str = "affected-class") -> tuple[bool, str]:
    """Whether the perfect filter restores the model, and why in words: its clean accuracy on the affected class
    is at most ``RESTORE_MARGIN`` points below the poisoned model's and at least ``RESTORE_FLOOR`` %."""
    if oracle_acc < RESTORE_FLOOR or oracle_acc < poisoned_acc - RESTORE_MARGIN:
        return False, (f"the perfect filter leaves {oracle_acc:.1f} % clean {class_name} accuracy (the poisoned "
                       f"model: {poisoned_acc:.1f} %): cleaning cannot be judged on this scenario")
    return True, (f"the perfect filter keeps {oracle_acc:.1f} % clean {class_name} accuracy (the poisoned model: "
                  f"{poisoned_acc:.1f} %; within {RESTORE_MARGIN:g} points and over {RESTORE_FLOOR:g} %): it "
                  "restores the model")
