"""The detector's own flagged set, for detectors whose labels already are a verdict (``detects_by = "set"``)."""

from __future__ import annotations

import numpy as np

from hansbench.methods.flagging.base import Flagging, FlaggingRule, Split
from hansbench.registry import flagging_rules


@flagging_rules.register("own-flag")
class OwnFlag(FlaggingRule):
    """Flags the detector's own set (labels == its flagged label); abstains when that set is empty.

    For ``prediction-mismatch``: its set (the prediction differs from the training label) needs no rule, and
    where the model agrees with every label it flags nothing, which is an abstention.
    """

    applies_to = frozenset({"set"})

    def flag(self, split: Split) -> Flagging:
        if split.own_flagged is None:
            return Flagging.abstain(split.n, "the detector named no flagged label: abstained")
        mask = np.asarray(split.labels) == int(split.own_flagged)
        if not mask.any():
            return Flagging.abstain(split.n, f"the detector flagged none of the {split.n} images: abstained")
        return Flagging.of(mask, f"the detector's own set: {int(mask.sum())} of {split.n} images: flagged")
