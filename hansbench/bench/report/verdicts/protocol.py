"""The detection protocol the rows were made under (PAPERS.md §9, issue 28), and the names the two headlines read.

Since issue 28 a detection is two questions. *Does the detector separate the poison?* is a label-free value that
does not depend on which cluster is flagged: the ARI of a partition (``detects_by = "clusters"``), the AUROC of the
detector's own score (``"scores"``, ``"set"``), with the label-matched F1 beside it (the score of an analyst who
picks the right cluster). *Can it flag the poison unaided?* is what a flagging rule flags (rows with a ``rule``):
its F1, how often it abstained, and its false-alarm rate (the share flagged) on the clean control.

Stores written before (metric ``cluster-f1-unsup``, no ``rule``) scored the smaller cluster's F1: :func:`translate`
reads those as the flag values of one rule named :data:`OLD_RULE`, so the page says under which rule they were
made instead of failing or presenting them as the new protocol's.
"""

from __future__ import annotations

import pandas as pd

from hansbench.methods.inputs import LABEL_FIT, SAMPLE_INDEX

SEPARABILITY = {"clusters": ("cluster-ari",), "scores": ("auroc",), "set": ("auroc",)}  # by ``detects_by``
ANALYST = "cluster-f1"  # label-matched: the analyst who picks the right cluster
ANALYST_NAME = "analyst picks the right cluster"
FLAG_F1, ABSTAINED, FALSE_ALARM = "flag-f1", "abstained", "flagged-fraction"
FLAG_VALUES = (FLAG_F1, "flag-precision", "flag-recall", FALSE_ALARM, ABSTAINED)
# the trivial floors (PAPERS.md §9: prediction ≠ label, training loss, random filter), by the input they read
FLOOR_INPUTS = (LABEL_FIT, SAMPLE_INDEX)
OLD_RULE = "smaller-cluster (old protocol)"
OLD_METRICS = {"cluster-f1-unsup": FLAG_F1, "flagged-fraction": FALSE_ALARM}
OLD_NOTE = ("Old protocol: these detection values were made under the old smaller-cluster rule (rows written before "
            "issue 28: 'cluster-f1-unsup', no flagging rule), shown as the flag values of rule "
            f"'{OLD_RULE}', without abstentions (a symmetric split was decided by which half was smaller); rerun "
            "the suite for the flagging rules.")


def translate(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a ``rule`` column ("" where none; added where the frame has none). A family with old-protocol
    rows (``cluster-f1-unsup``) has those and its ``flagged-fraction`` read as rule :data:`OLD_RULE`'s
    ``flag-f1`` / ``flagged-fraction``; its ``cluster-acc-unsup`` is dropped (the new protocol has no such value)."""
    df = rows if "rule" in rows else rows.assign(rule="")
    df = df.assign(rule=df["rule"].fillna("").astype(str))
    old = set(df.loc[df.metric == "cluster-f1-unsup", "family"]) if "metric" in df else set()
    if not old:
        return df
    fam = df.family.isin(old) & (df.rule == "")
    df = df[~(fam & (df.metric == "cluster-acc-unsup"))]
    fam = df.family.isin(old) & (df.rule == "")
    moved = fam & df.metric.isin(list(OLD_METRICS))
    df = df.copy()
    df.loc[moved, "rule"] = OLD_RULE
    df.loc[moved, "metric"] = df.loc[moved, "metric"].map(OLD_METRICS)
    return df


def is_old(seeded: pd.DataFrame) -> bool:
    """Whether any of the rows were made under the old protocol (:func:`translate`)."""
    return "rule" in seeded and bool((seeded.rule == OLD_RULE).any())


def detects_by(clusterer: str) -> str:
    """How the registered clusterer detects ("clusters", "scores", "set"); "clusters" where it is not
    installed or declares nothing."""
    try:
        from hansbench.registry import clusterers

        return str(getattr(clusterers.get(clusterer), "detects_by", "clusters"))
    except Exception:  # an uninstalled plugin clusterer
        return "clusters"


def kind_of(explainer: str, clusterer: str, inputs: set[str], refs: set[str]) -> str:
    """A detector's kind: "floor" (a trivial floor: reads the model's fit to the labels or nothing of the
    images), "baseline" (an input that is no explanation), "reference"
    (the reference explainer) or "explanation"."""
    if explainer in FLOOR_INPUTS:
        return "floor"
    if explainer in inputs:
        return "baseline"
    return "reference" if explainer in refs else "explanation"
