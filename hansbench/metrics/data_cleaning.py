"""Data cleaning + retraining (PRP conclusion; SpRAy paper's "un-Hans"): does removing what a
clustering flagged fix the model?

``data-cleaning`` removes the flagged cluster's training images, retrains a fresh model of the
same kind with the same recipe (``ctx.train_model``, cached by content), and reports the
affected class's and the overall accuracy on the artifact and clean test sets, the attack
success rate for backdoors, how many images were removed and the precision and recall of the removed
set, and what the cleaning cost in clean accuracy (``clean-acc-cost``: the clean test's overall accuracy of
the model as trained minus the retrained one's). ``data-cleaning`` also runs on a clean control (nothing
poisoned in the inspected class): there everything it removes is clean, and the cost is the whole story.
``data-cleaning-baselines`` brackets it: stage ``none`` (the poisoned model as is) and
``oracle`` (exactly the truly poisoned images removed).
"""

from __future__ import annotations

import numpy as np
import torch

from hansbench.datasets.poisonings import get_poisoning
from hansbench.datasets.scenarios import SCENARIO_DEFAULTS
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
from hansbench.metrics.presentation import Shows
from hansbench.registry import metrics

VALUES = {
    **CLASS_ACC,
    **OVERALL_ACC,
    **ASR,
    "n-removed": ("count", False),
    "precision-removed": ("%", True),  # share of removed images that were truly poisoned
    "recall-removed": ("%", True),  # share of the poisoned images that were removed
    "clean-acc-cost": ("pp", False),  # clean-test accuracy as trained minus after cleaning (negative: a gain)
}
# The one table both cleaning metrics fill. n-removed is undirected: how many were removed is no score, precision
# and recall say how well.
CLEANING = Shows(table="cleaning", shape="stages", undirected=("n-removed",), headline=(
    "n-removed", "precision-removed", "recall-removed", "class-acc", "acc", "asr", "clean-acc-cost"))


def cleaning_rows(metric: Metric, ctx: EvalContext, removed: torch.Tensor, stage: str) -> list[dict]:
    """Retrain without the train samples at ``removed`` and report the stage rows.

    The training tag depends on the removed set only, so a clustering that removes exactly the
    poisoned images shares the oracle's retrained model. Removing nothing is no intervention:
    the context's model is scored as is (no retraining of an identical training set).
    Precision and recall of the removed set need poisoned images (none on a clean control: not emitted).
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
    return rows + stage_rows(metric, model, data, ctx.device, stage)


@metrics.register("data-cleaning")
class DataCleaning(Metric):
    """Remove the training images of the flagged cluster, retrain, and measure whether the artifact's effect is gone.

    Removed = ``ctx.cluster_index[clustering.flagged_mask]`` (the flagged cluster is chosen
    without labels). Rows at stage ``cleaned``; compare with ``data-cleaning-baselines``.
    Which (model, explainer, clusterer) combinations are worth a retraining is the suite's
    filter keys' business (``models``, ``explainers``, ``clusterers``), applied by the planner.
    """

    level = "clustering"
    presentation = CLEANING
    needs_retraining = True
    values = VALUES
    version = "2"  # clean-acc-cost; runs on clean controls

    def not_applicable(self, *, model_kind: str, scenario: dict, **kw) -> str | None:
        """Needs clean images in the inspected class; poisoned ones are optional (a clean control shows what
        cleaning costs there)."""

        sc = {**SCENARIO_DEFAULTS, **scenario}
        _, clean = get_poisoning(sc["poisoning"]).inspected_class_holds(float(sc["fraction"]))
        if not clean:
            return (f"{self.name} needs clean images in the inspected class ({sc['poisoning']} at fraction "
                    f"{float(sc['fraction']):g} has none)")
        return super().not_applicable(model_kind=model_kind, scenario=scenario, **kw)

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Retrain without the flagged cluster's images; rows of the cleaned model."""
        if ctx.clustering is None or ctx.cluster_index is None:
            raise ValueError("metric 'data-cleaning' needs ctx.clustering and ctx.cluster_index")
        flagged = torch.as_tensor(np.asarray(ctx.clustering.flagged_mask, dtype=bool))
        index = torch.as_tensor(ctx.cluster_index, dtype=torch.long).flatten().cpu()
        if flagged.shape != index.shape:
            raise ValueError(f"clustering has {flagged.numel()} labels for {index.numel()} clustered samples")
        return cleaning_rows(self, ctx, index[flagged], "cleaned")


@metrics.register("data-cleaning-baselines")
class DataCleaningBaselines(Metric):
    """The brackets of data cleaning: no cleaning (stage ``none``) and removing exactly the poisoned images (``oracle``)."""

    level = "model"
    presentation = CLEANING
    needs_retraining = True
    values = VALUES
    version = "2"  # clean-acc-cost of the oracle

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Rows of the poisoned model (``none``) and of one retrained without the poisoned images (``oracle``)."""
        rows = cleaning_rows(self, ctx, torch.zeros(0, dtype=torch.long), "none")
        oracle = torch.nonzero(ctx.data.train.poisoned).flatten()
        if oracle.numel():
            rows += cleaning_rows(self, ctx, oracle, "oracle")
        return rows
