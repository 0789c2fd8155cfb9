"""Cluster detection: how well a clustering of one class's maps separates poisoned samples (separability only).

Separability and flagging are two questions (PAPERS.md §9): this metric answers the first, with values
that do not depend on which part of the split a rule flags; ``flag-detection`` scores what each
flagging rule flags (and its false alarms on the clean control).

PRP Table II scores a 2-cluster assignment against the true ``poisoned`` flag under the
best matching of clusters to {clean, poisoned}. We use the Hungarian one-to-one matching
on the cluster x {clean, poisoned} contingency table, which also covers ``n_clusters > 2``:
only two clusters can be matched, the samples of every unmatched cluster count as errors
(the clustering-accuracy convention of the multi-view clustering papers). A many-to-one
"majority" mapping would instead rise with the number of clusters for free.

Threshold-free: ``auroc`` / ``auprc`` rank the samples by the clusterer's per-sample suspicion
score (``ClusteringResult.scores``, higher = more suspicious) against the poisoned flag
(``sklearn.metrics.roc_auc_score`` / ``average_precision_score``; AUPRC's chance level is the
poisoned share). ARI and NMI compare partitions: renaming or swapping clusters leaves them unchanged.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, average_precision_score, normalized_mutual_info_score, roc_auc_score

from hansbench.datasets.poisonings import get_poisoning
from hansbench.datasets.scenarios import SCENARIO_DEFAULTS
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.detail import FALLBACK, UNDEFINED
from hansbench.metrics.presentation import Shows
from hansbench.registry import metrics


def no_clean_images(name: str, scenario: dict) -> str | None:
    """Why a detection metric cannot run on ``scenario``: its inspected class holds no clean image to tell the
    poisoned ones from (the poisoning says, at its fraction); None where it holds some (clean controls too)."""
    sc = {**SCENARIO_DEFAULTS, **scenario}
    poisoning, fraction = sc["poisoning"], float(sc["fraction"])
    _, clean = get_poisoning(poisoning).inspected_class_holds(fraction)
    if clean:
        return None
    return (f"{name} needs clean images in the inspected class to tell poisoned and clean apart ({poisoning} at "
            f"fraction {fraction:g} has no clean ones)")


def json_safe(value: Any) -> Any:
    """Clusterer diagnostics as plain JSON: numpy/torch scalars and arrays -> floats/ints/bools/lists,
    tuples -> lists, keys -> str, non-finite floats -> None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return json_safe(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def fell_back(info: dict) -> bool:
    """Whether the clusterer says it fell back to a simpler procedure than its own.

    An explicit boolean ``info["fallback"]`` decides (the convention for clusterers); otherwise
    MCGC's ``labels_from`` text tells: its labels came from k-means on the spectral embedding
    instead of the connected components of the consensus graph (rank constraint not reached).
    """
    flag = info.get(FALLBACK)
    if isinstance(flag, (bool, np.bool_)):
        return bool(flag)
    source = info.get("labels_from")
    return isinstance(source, str) and source.strip().lower().startswith("k-means")


def _f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """F1 of the positive class; 0 when there is no true or no predicted positive."""
    tp = float(np.sum(pred & truth))
    denom = float(np.sum(pred) + np.sum(truth))
    return 2 * tp / denom if denom > 0 else 0.0


def match_clusters(labels: np.ndarray, truth: np.ndarray) -> tuple[int | None, int | None]:
    """Hungarian matching of cluster ids to (clean, poisoned): ``(clean_cluster, artifact_cluster)``.

    Maximises the number of samples whose cluster's matched class equals their flag;
    either entry is ``None`` when fewer clusters than classes exist.
    """
    ids = np.unique(labels)
    table = np.stack([[np.sum((labels == c) & (truth == t)) for t in (False, True)] for c in ids])  # [K, 2]
    rows, cols = linear_sum_assignment(table, maximize=True)
    matched = {int(col): int(ids[row]) for row, col in zip(rows, cols)}
    return matched.get(0), matched.get(1)


def detection_scores(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """ACC (%), F1 (label-matched: the Hungarian-matched cluster), ARI, NMI of a clustering vs the poisoned flag.

    Every value is invariant to renaming the clusters; which cluster a rule would flag plays no part.
    """
    labels = np.asarray(labels).ravel()
    truth = np.asarray(truth, dtype=bool).ravel()
    if labels.shape != truth.shape:
        raise ValueError(f"clustering has {labels.shape[0]} labels but the ground truth has {truth.shape[0]}")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise ValueError("cluster labels contain NaN or inf; a clusterer must give an integer label per sample")
    if truth.all() or not truth.any():  # also the empty set: ACC/F1/ARI would be 0, 100 or NaN by convention only
        raise ValueError(f"cluster detection is undefined with {int(truth.sum())} poisoned of {truth.size} samples: "
                         "the clustered set needs poisoned and clean samples")
    clean_c, art_c = match_clusters(labels, truth)
    pred = labels == art_c if art_c is not None else np.zeros_like(truth)
    correct = np.sum(pred & truth) + (np.sum((labels == clean_c) & ~truth) if clean_c is not None else 0)
    return {
        "cluster-acc": 100.0 * correct / truth.size,
        "cluster-f1": _f1(pred, truth),
        "cluster-ari": float(adjusted_rand_score(truth, labels)),
        "cluster-nmi": float(normalized_mutual_info_score(truth, labels)),
    }


def ranking_scores(scores: np.ndarray | None, truth: np.ndarray) -> tuple[dict[str, float], str | None]:
    """AUROC and AUPRC of ``scores`` (higher = poisoned) vs ``truth``; NaN and the reason when undefined."""
    nan = {"auroc": math.nan, "auprc": math.nan}
    if scores is None:
        return nan, "the clusterer gives no per-sample scores"
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.shape != truth.shape:
        raise ValueError(f"clustering has {scores.shape[0]} scores but the ground truth has {truth.shape[0]}")
    if not np.isfinite(scores).all():
        return nan, "the clusterer's scores are not all finite"
    if truth.all() or not truth.any():
        return nan, "AUROC/AUPRC need poisoned and clean samples"
    return {"auroc": float(roc_auc_score(truth, scores)), "auprc": float(average_precision_score(truth, scores))}, None


@metrics.register("cluster-detection")
class ClusterDetection(Metric):
    """Does the detector separate the poison? ARI, NMI of the split and AUROC/AUPRC of its own scores; label-matched
    ACC/F1: the score an analyst gets who picks the right cluster.

    Label-free separability (the first headline): ``cluster-ari`` and ``cluster-nmi`` compare the split with the
    poisoned flags as partitions, so they do not depend on which cluster is called poisoned (a perfect 50/50
    split scores 1 whichever half a rule would flag); ``auroc``/``auprc`` rank the samples by the detector's
    own suspicion scores (missing, with the reason in ``detail["auc_undefined"]``, when it has none).
    ``cluster-acc``/``cluster-f1`` (PRP Table II) match clusters to {clean, poisoned} with the ground truth
    (Hungarian): the score an analyst gets who picks the right cluster, never what a detector gets unaided.
    What a rule flags without labels, its abstentions and its false alarms on the clean control are
    ``flag-detection``'s (level "flagging").

    It runs wherever ``flag-detection`` runs, the clean control included (poisoning ``none``), so the two
    headlines have rows for the same detectors and the clusterer's diagnostics are kept there too; on
    a clustered set with no poisoned sample (the clean control) or only poisoned ones separability is
    undefined: every value is emitted as missing (``None``, what the row check accepts; NaN would fail
    the node) with the reason in ``detail``, so tables keep their shape and means skip it. It is left
    out only where the inspected class holds no clean image.

    ``detail`` (JSON) also carries the clusterer's own diagnostics (``ClusteringResult.info``,
    e.g. SpRAy's eigengap estimate, WMSC's view weights, MCGC's label source) under ``"info"``
    and a top-level ``"fallback"``: true when the clusterer fell back to a simpler procedure
    (e.g. MCGC's k-means when the rank constraint was not met), so such rows can be told apart.
    """

    level = "clustering"
    presentation = Shows(
        table="cluster-detection", shape="detection", headline=("cluster-ari", "auroc", "cluster-f1"),
        label_free=("cluster-ari", "auroc", "auprc"),  # separability: no labels pick a cluster
        label_matched=("cluster-acc", "cluster-f1"),  # PRP Table II: the analyst who picks the right cluster
        meaning=("does the detector separate the poison (ARI, NMI of the split, whichever part is flagged; "
                 "AUROC/AUPRC of its own scores); cluster-acc/cluster-f1 are label-matched: the score an analyst "
                 "gets who picks the right cluster"))
    version = "4"  # separability only: the flagged cluster's values moved to flag-detection (per flagging rule)
    requires = frozenset()  # not "poisoned-and-clean": it runs on the clean control too (see not_applicable)
    values = {
        "cluster-acc": ("%", True),  # label-matched
        "cluster-f1": ("", True),  # label-matched
        "cluster-ari": ("", True),
        "cluster-nmi": ("", True),
        "auroc": ("", True),
        "auprc": ("", True),
    }

    def not_applicable(self, *, model_kind: str, scenario: dict, explainer: Any = None, explainer_name: str = "",
                       clusterer_name: str = "") -> str | None:
        """Left out only where the inspected class holds no clean image (nothing to tell poisoned ones from)."""
        reason = super().not_applicable(model_kind=model_kind, scenario=scenario, explainer=explainer,
                                        explainer_name=explainer_name, clusterer_name=clusterer_name)
        if reason:
            return reason
        return no_clean_images(self.name, scenario)

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Separability of ``ctx.clustering`` against the inspected class's poisoned flags."""
        if ctx.clustering is None or ctx.cluster_index is None:
            raise ValueError("cluster-detection needs ctx.clustering and ctx.cluster_index")
        labels = np.asarray(ctx.clustering.labels).ravel()
        index = ctx.cluster_index.detach().cpu()
        truth = ctx.data.train.poisoned[index].cpu().numpy().astype(bool)
        n_pos = int(truth.sum())
        diagnostics = json_safe(dict(getattr(ctx.clustering, "info", None) or {}))
        info = {"n": int(truth.size), "n_poisoned": n_pos, "n_clusters": int(np.unique(labels).size),
                FALLBACK: fell_back(diagnostics), "info": diagnostics}
        if labels.shape != truth.shape:
            raise ValueError(f"clustering has {labels.shape[0]} labels but the ground truth has {truth.shape[0]}")
        if n_pos == 0 or n_pos == truth.size:
            why = "no poisoned sample" if n_pos == 0 else "only poisoned samples"
            detail = json.dumps({**info, UNDEFINED: f"{why} in the clustered set: separability is undefined "
                                                    "(flag-detection reports what each rule flags here)"})
            return [undefined_as_none(self.row(name, math.nan, detail=detail)) for name in self.values]
        values = detection_scores(labels, truth)
        ranked, why_not = ranking_scores(getattr(ctx.clustering, "scores", None), truth)
        detail = json.dumps({**info, **({"auc_undefined": why_not} if why_not else {})})
        return [undefined_as_none(self.row(name, value, detail=detail)) for name, value in {**values, **ranked}.items()]


def undefined_as_none(row: dict) -> dict:
    """A row whose undefined (NaN) value is stored as explicitly missing (``None``), the reason in ``detail``."""
    if row["value"] is not None and not math.isfinite(row["value"]):
        row["value"] = None
    return row
