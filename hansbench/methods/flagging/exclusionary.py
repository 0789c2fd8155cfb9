"""Exclusionary reclassification (Chen et al. 2018, "Detecting backdoor attacks ... by activation clustering").

For each candidate cluster, retrain the model without it and ask the new model what its images are. A dirty-label
poison (a backdoor, a label flip) shows its source class once the poisoned images no longer teach the model
their wrong label, so a cluster mostly reassigned to another class is flagged; a clean cluster stays in its
class. It costs one retraining per candidate, so it runs only where a suite affords retraining
(``Split.reclassify``); elsewhere it abstains and says so.
"""

from __future__ import annotations

import numpy as np

from hansbench.methods.flagging.base import Flagging, FlaggingError, FlaggingRule, Split, check_share, share_text
from hansbench.methods.flagging.cluster_rules import CLUSTERS, cluster_shares, shares_info
from hansbench.registry import flagging_rules


@flagging_rules.register("exclusionary-reclassification")
class ExclusionaryReclassification(FlaggingRule):
    """Retrains without each cluster of at most half the class; flags it when over ``threshold`` of it goes to another class.

    Chen et al. 2018's exclusionary reclassification. Candidates: every cluster holding at most half of the
    class. A candidate is flagged when more than ``threshold`` (default 0.5) of its images are predicted as
    another class than the inspected one by the model retrained without them. Abstains when none is flagged, or
    when the suite affords no retraining (``Split.reclassify`` is None).
    """

    applies_to = CLUSTERS
    needs_retraining = True

    def __init__(self, *, threshold: float = 0.5):
        check_share(self.name or "exclusionary-reclassification", "threshold", threshold,
                    "the share of a cluster's images that must go to another class for it to be flagged; default 0.5")
        self.threshold = threshold

    def flag(self, split: Split) -> Flagging:
        if split.reclassify is None:
            return Flagging.abstain(split.n, "no retraining in this suite (Split.reclassify is None): exclusionary "
                                             "reclassification cannot run: abstained")
        if split.inspected_class < 0:
            raise FlaggingError(f"flagging rule {self.name!r} needs split.inspected_class (the class the images are "
                                "labelled as), got -1")
        ids, _, shares = cluster_shares(split.labels)
        candidates = [int(c) for c, s in zip(ids, shares) if s <= 0.5]
        moved: dict[str, float] = {}
        flagged = []
        for c in candidates:
            mask = np.asarray(split.labels) == c
            pred = np.asarray(split.reclassify(mask))
            if pred.shape != (int(mask.sum()),):
                raise FlaggingError(f"flagging rule {self.name!r}: reclassify returned {pred.shape} predictions for "
                                    f"a cluster of {int(mask.sum())} images; it must return one class per masked image")
            moved[str(c)] = float(np.mean(pred != split.inspected_class))
            if moved[str(c)] > self.threshold:
                flagged.append(c)
        info = {**shares_info(ids, shares), "moved_share": moved, "threshold": self.threshold,
                "candidates": candidates}
        said = "; ".join(f"cluster {c}: {share_text(m)} of it goes to another class" for c, m in moved.items())
        if not flagged:
            why = said or "no cluster holds at most half of the class, so no candidate"
            return Flagging.abstain(split.n, f"{why}; none over {self.threshold} when retrained without it: "
                                             "abstained", **info)
        return Flagging.of(np.isin(split.labels, flagged),
                           f"{said}; over {self.threshold} when retrained without it: flagged "
                           f"cluster{'s' if len(flagged) > 1 else ''} {', '.join(map(str, flagged))}",
                           flagged_clusters=flagged, **info)
