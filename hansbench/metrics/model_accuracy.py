"""The trained model itself: did the poisoning take? (PRP Table I, first row).

Explainers and clusterers can only reveal a shortcut the model actually learned, so every
leaderboard starts with the poisoned model's accuracy on the clean and the artifact test
set, and for backdoors the attack success rate.
"""

from __future__ import annotations

from dataclasses import replace

from hansbench.metrics._retraining import ASR, CLASS_ACC, OVERALL_ACC, stage_rows
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.presentation import RELIANCE
from hansbench.registry import metrics


@metrics.register("model-accuracy")
class ModelAccuracy(Metric):
    """Accuracy of the trained model on clean and artifact test sets (all classes, affected class) and backdoor ASR."""

    level = "model"
    presentation = replace(RELIANCE, headline=("class-acc", "asr"))
    values = {**CLASS_ACC, **OVERALL_ACC, **ASR}

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Per-class and overall accuracy on the test splits (and the attack success rate of a backdoor)."""
        return stage_rows(self, ctx.model, ctx.data, ctx.device, stage="trained")
