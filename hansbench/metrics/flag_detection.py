"""Flag detection: can the detector flag the poison unaided? The F1 of what one flagging rule flags.

Separability (``cluster-detection``) says whether a split separates the poison; a flagging rule then
decides, without labels, which part (if any) is poisoned, or abstains (PAPERS.md §9). This metric
scores that decision, once per clustering x rule (level ``"flagging"``): the flagged set against the
poisoned flags of the clustered samples, how much of the class it flags, and whether it abstained.
On the clean control (nothing poisoned in the inspected class) only the flagged share and the
abstention are defined: the flagged share is then the false-alarm rate of that detector and rule.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch

from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.cluster_detection import json_safe, no_clean_images, undefined_as_none
from hansbench.metrics.detail import UNDEFINED
from hansbench.metrics.presentation import Shows
from hansbench.registry import metrics


def flagged_samples(ctx: EvalContext, metric: str) -> tuple[np.ndarray, torch.Tensor]:
    """``(flagged [N] bool, cluster_index [N] long)`` of a flagging-level context, checked.

    Raises
    ------
    ValueError
        The context has no flagging or cluster index (the metric is not at level "flagging"), the lengths
        differ, or an abstaining rule flags samples.
    """
    if ctx.flagging is None or ctx.cluster_index is None:
        raise ValueError(f"metric {metric!r} needs ctx.flagging and ctx.cluster_index (declare level = 'flagging')")
    flagged = np.asarray(ctx.flagging.flagged, dtype=bool).ravel()
    index = torch.as_tensor(ctx.cluster_index, dtype=torch.long).flatten().cpu()
    if flagged.shape != tuple(index.shape):
        raise ValueError(f"metric {metric!r}: rule {ctx.rule!r} flags {flagged.size} samples for "
                         f"{index.numel()} clustered samples; a rule's mask covers the clustered samples")
    if ctx.flagging.abstained and flagged.any():
        raise ValueError(f"metric {metric!r}: rule {ctx.rule!r} abstained but flags {int(flagged.sum())} samples; "
                         "an abstaining rule flags nothing")
    return flagged, index


def rule_detail(ctx: EvalContext) -> dict:
    """The rule's own account for a row's ``detail``: its name, whether it abstained, its reason and info."""
    return {"rule": ctx.rule, "abstained": bool(ctx.flagging.abstained), "reason": str(ctx.flagging.reason),
            "rule_info": json_safe(dict(getattr(ctx.flagging, "info", None) or {}))}


def flag_scores(flagged: np.ndarray, truth: np.ndarray) -> tuple[dict[str, float], str | None]:
    """F1, precision (%), recall (%) of ``flagged`` against ``truth``, the flagged share, and why any is undefined.

    Precision is undefined (NaN) when nothing is flagged; F1 is then 0 (a detector that flags nothing finds
    nothing). F1, precision and recall are undefined when ``truth`` holds no poisoned sample.
    """
    n_flag, n_pos = int(flagged.sum()), int(truth.sum())
    tp = int((flagged & truth).sum())
    out = {"flagged-fraction": n_flag / flagged.size if flagged.size else math.nan,
           "flag-f1": math.nan, "flag-precision": math.nan, "flag-recall": math.nan}
    if n_pos == 0:
        return out, "no poisoned sample in the clustered set: F1, precision and recall are undefined"
    out["flag-f1"] = 2.0 * tp / (n_flag + n_pos)
    out["flag-recall"] = 100.0 * tp / n_pos
    if n_flag == 0:
        return out, "nothing flagged: precision is undefined (F1 0)"
    out["flag-precision"] = 100.0 * tp / n_flag
    return out, None


@metrics.register("flag-detection")
class FlagDetection(Metric):
    """Can the detector flag the poison unaided? F1, precision, recall of what a flagging rule flags, the share it
    flags (on the clean control: false alarms) and whether it abstained.

    Level "flagging": one set of rows per clustering x flagging rule (the row's ``rule`` column names it).
    ``flag-f1`` is 0 when the rule abstained (an abstaining detector flags nothing, so it finds nothing);
    ``flag-precision`` is then missing. ``flagged-fraction`` (lower is better) needs no ground truth: on a
    clean control it is the false-alarm rate, and there F1, precision and recall are missing. ``abstained`` is
    1.0 when the rule abstained, else 0.0 (its mean over seeds is the abstain rate). Undefined values are
    ``None`` with the reason under ``detail["undefined"]``; ``detail`` also carries the rule's ``reason``
    (one sentence with its numbers) and ``rule_info``, and the counts ``n``, ``n_poisoned``, ``n_flagged``.
    """

    level = "flagging"
    presentation = Shows(
        table="flag-detection", shape="detection", headline=("flag-f1", "abstained", "flagged-fraction"),
        label_free=("flag-f1", "flag-precision", "flag-recall"),  # the flag is chosen without labels
        control=("flagged-fraction", "abstained"),  # the clean control: false alarms and abstentions
        meaning=("can the detector flag the poison unaided: F1 of what the flagging rule flags (0 when it "
                 "abstains), its abstentions, and the share it flags (on the clean control: false alarms)"))
    version = "1"
    values = {
        "flag-f1": ("", True),
        "flag-precision": ("%", True),
        "flag-recall": ("%", True),
        "flagged-fraction": ("", False),  # on the clean control every flagged sample is a false alarm
        "abstained": ("bool", False),
    }

    def not_applicable(self, *, model_kind: str, scenario: dict, explainer: Any = None, explainer_name: str = "",
                       clusterer_name: str = "") -> str | None:
        """Left out only where the inspected class holds no clean image; runs on clean controls (false alarms)."""
        return super().not_applicable(model_kind=model_kind, scenario=scenario, explainer=explainer,
                                      explainer_name=explainer_name, clusterer_name=clusterer_name) or \
            no_clean_images(self.name, scenario)

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Scores of the rule's flagged set (``ctx.flagging``) against the clustered samples' poisoned flags."""
        flagged, index = flagged_samples(ctx, self.name)
        truth = ctx.data.train.poisoned[index].cpu().numpy().astype(bool)
        values, why = flag_scores(flagged, truth)
        values["abstained"] = float(bool(ctx.flagging.abstained))
        detail = json.dumps({**rule_detail(ctx), "n": int(truth.size), "n_poisoned": int(truth.sum()),
                             "n_flagged": int(flagged.sum()), **({UNDEFINED: why} if why else {})})
        return [undefined_as_none(self.row(name, values[name], detail=detail)) for name in self.values]
