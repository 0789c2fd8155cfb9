"""Rules that read only a partition's cluster sizes (and its silhouette): smaller cluster, relative size, silhouette.

PAPERS.md §9. The smaller-cluster rule is what the benchmark used to apply everywhere; relative size and
silhouette are activation clustering's (Chen et al. 2018; ART's ``ActivationDefence``: ``size_threshold``
0.35, ``silhouette_threshold`` 0.1). All three assume the poison is the minority of the class: where it is the
majority, they flag the clean images or abstain, by definition (docs/detectors.md, "Flagging rules").
"""

from __future__ import annotations

import numpy as np

from hansbench.methods.flagging.base import Flagging, FlaggingRule, Split, check_share, share_text
from hansbench.registry import flagging_rules

CLUSTERS = frozenset({"clusters"})


def cluster_shares(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, counts, shares)`` of the clusters present, ids ascending."""
    ids, counts = np.unique(np.asarray(labels), return_counts=True)
    return ids, counts, counts / max(int(counts.sum()), 1)


def shares_info(ids: np.ndarray, shares: np.ndarray) -> dict:
    """``{"shares": {"0": 0.7, "1": 0.3}}``: every cluster's share of the class (JSON-safe)."""
    return {"shares": {str(int(i)): round(float(s), 6) for i, s in zip(ids, shares)}}


def flag_under(split: Split, ids: np.ndarray, shares: np.ndarray, threshold: float, prefix: str = "") -> Flagging:
    """Flag every cluster holding less than ``threshold`` of the class; abstain when none does."""
    under = ids[shares < threshold]
    info = {**shares_info(ids, shares), "size_threshold": threshold}
    if under.size == 0:
        smallest = float(shares.min())
        return Flagging.abstain(split.n, f"{prefix}no cluster holds under {threshold} of the class (the smallest "
                                         f"holds {share_text(smallest)}): abstained", **info)
    held = ", ".join(f"cluster {int(i)} holds {share_text(float(s))}" for i, s in zip(ids, shares) if i in under)
    return Flagging.of(np.isin(split.labels, under), f"{prefix}{held} of the class, under {threshold}: flagged",
                       flagged_clusters=[int(i) for i in under], **info)


@flagging_rules.register("smaller-cluster")
class SmallerCluster(FlaggingRule):
    """Flags the smallest cluster; abstains on a tie for smallest (a symmetric split) or a single cluster.

    The rule the benchmark applied before flagging rules were a kind (``flag_rule = "smaller"``). On a split
    into equal halves it has no answer, so it abstains rather than flag a coin flip's half.
    """

    applies_to = CLUSTERS

    def flag(self, split: Split) -> Flagging:
        ids, counts, shares = cluster_shares(split.labels)
        info = shares_info(ids, shares)
        if ids.size < 2:
            return Flagging.abstain(split.n, f"{ids.size} cluster(s): no smaller cluster to flag: abstained", **info)
        smallest = counts == counts.min()
        if smallest.sum() > 1:
            return Flagging.abstain(
                split.n, f"{int(smallest.sum())} clusters of {share_text(float(shares[smallest][0]))} each tie for "
                         "the smallest: a symmetric split, the smaller cluster is undefined: abstained", **info)
        c = int(ids[smallest][0])
        return Flagging.of(split.labels == c, f"cluster {c} holds {share_text(float(shares[smallest][0]))} of the "
                                              f"class, the smallest of {ids.size} clusters: flagged",
                           flagged_clusters=[c], **info)


@flagging_rules.register("relative-size")
class RelativeSize(FlaggingRule):
    """Flags every cluster holding less than ``threshold`` of the class (ART's default 0.35); abstains when none does.

    Activation clustering's relative-size analysis (Chen et al. 2018; ART's ``ActivationDefence``,
    ``size_threshold``). A cluster at exactly the threshold is not flagged. A poisoned majority makes the clean
    images the small cluster, and the rule flags them: it assumes the poison is a minority.
    """

    applies_to = CLUSTERS

    def __init__(self, *, threshold: float = 0.35):
        check_share(self.name or "relative-size", "threshold", threshold,
                    "the share of the class under which a cluster is flagged; ART's default 0.35")
        self.threshold = threshold

    def flag(self, split: Split) -> Flagging:
        ids, _, shares = cluster_shares(split.labels)
        if split.n == 0:
            return Flagging.abstain(0, "no images: abstained")
        return flag_under(split, ids, shares, float(self.threshold))


@flagging_rules.register("silhouette")
class Silhouette(FlaggingRule):
    """Flags the clusters under ``size_threshold`` only where the split's silhouette exceeds ``threshold``; else abstains.

    Activation clustering's silhouette analysis (ART's ``ActivationDefence``, ``silhouette_threshold`` 0.1 and
    ``size_threshold`` 0.35): a small cluster is flagged only when the 2-means split it belongs to is clear.
    Abstains where the silhouette is undefined (``Split.silhouette`` is None: one cluster, or not computed).
    """

    applies_to = CLUSTERS

    def __init__(self, *, threshold: float = 0.1, size_threshold: float = 0.35):
        name = self.name or "silhouette"
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1.0 <= threshold < 1.0:
            raise ValueError(f"flagging rule {name!r}: threshold must be in [-1, 1) (the silhouette score a split "
                             f"must exceed; ART's default 0.1), got {threshold!r}")
        check_share(name, "size_threshold", size_threshold,
                    "the share of the class under which a cluster is flagged; ART's default 0.35")
        self.threshold = threshold
        self.size_threshold = size_threshold

    def flag(self, split: Split) -> Flagging:
        s = split.silhouette
        if s is None:
            return Flagging.abstain(split.n, "the split's silhouette is undefined (one cluster, or not computed): "
                                             "abstained")
        if not s > self.threshold:
            return Flagging.abstain(split.n, f"silhouette {s:.3f} is not above {self.threshold}: the split is not "
                                             "clear: abstained", silhouette=float(s), threshold=self.threshold)
        ids, _, shares = cluster_shares(split.labels)
        out = flag_under(split, ids, shares, float(self.size_threshold), prefix=f"silhouette {s:.3f} > "
                                                                                 f"{self.threshold}; ")
        return Flagging(out.flagged, out.abstained, out.reason, {**out.info, "silhouette": float(s),
                                                                "silhouette_threshold": self.threshold})
