"""Shared pieces of the intervention metrics (prototype pruning, data cleaning, ROAR).

An intervention changes a model (prune prototypes, retrain on cleaned data) and is scored by
the same accuracies before and after, so the stage rows are computed here once: one batched
forward pass per (model, test split), every value derived from the same logits.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from hansbench.datasets.base import ScenarioData, Split
from hansbench.metrics._memo import LOGITS
from hansbench.metrics.base import Metric
from hansbench.models.evaluation import predict

TEST_SPLITS = ("artifact_test", "clean_test")

# Values shared by the intervention metrics: value -> (unit, higher_is_better).
CLASS_ACC = {"class-acc": ("%", True)}
OVERALL_ACC = {"acc": ("%", True)}
ASR = {"asr": ("%", False)}  # backdoors: attack success (:func:`attack_success`), lower is better after an intervention


def predict_logits(model: nn.Module, split: Split, device: torch.device, batch_size: int = 256) -> torch.Tensor:
    """Logits ``[N, K]`` on the CPU (eval mode, normalised by the model itself): computed once per unchanged
    model and split in a process (:mod:`hansbench.metrics._memo`), a fresh copy each call."""

    key = ("logits", str(device), int(batch_size))
    return LOGITS.get((model, split.images), key,
                      lambda: predict(model, split.images, device=device, batch_size=batch_size)).clone()


def triggered_sources(split: Split, data: ScenarioData) -> torch.Tensor:
    """``[N]`` bool: the images of ``split`` that attack success is measured on.

    A source class of the poisoning (``data.source_classes``: the affected class; all-to-one: every class but
    the target) by true class, and really carrying the artifact (``split.poisoned``). The one selection of
    attack success in the code base: ``reliance`` (its ``asr`` and paired gap) and :func:`attack_success` (every
    intervention metric's and ``model-accuracy``'s ``asr``) both use it.
    """
    wanted = torch.as_tensor(data.source_classes, dtype=split.true_labels.dtype)
    return torch.isin(split.true_labels, wanted) & split.poisoned.bool()


def attack_success(pred: torch.Tensor, split: Split, data: ScenarioData) -> float | None:
    """Attack success in %: the share of :func:`triggered_sources` predicted as ``data.target_class``, from the
    counts in float64 (as ``reliance``'s); ``None`` without a target class or without such an image."""
    on = triggered_sources(split, data)
    n = int(on.sum())
    if data.target_class is None or n == 0:
        return None
    return 100.0 * int((pred[on] == data.target_class).sum()) / n


def stage_values(logits: torch.Tensor, split: Split, data: ScenarioData) -> dict[str, float]:
    """class-acc (affected class, by true class), acc (all samples, by true class), asr (backdoors) in %.

    Accuracies compare with ``true_labels``: a relabelled backdoor image counts as correct only
    when the model recognises what it really shows (PRP Table IV's "stop-sign accuracy").
    ``asr`` is :func:`attack_success` (only where the split holds triggered source images).
    """
    pred = logits.argmax(dim=1)
    truth = split.true_labels
    out: dict[str, float] = {}
    if len(truth):
        out["acc"] = 100.0 * (pred == truth).float().mean().item()
    affected = truth == data.affected_class
    if affected.any():
        out["class-acc"] = 100.0 * (pred[affected] == data.affected_class).float().mean().item()
    asr = attack_success(pred, split, data)
    if asr is not None:
        out["asr"] = asr
    return out


def stage_rows(metric: Metric, model: nn.Module, data: ScenarioData, device: torch.device, stage: str,
               splits: tuple[str, ...] = TEST_SPLITS) -> list[dict]:
    """The declared accuracy values of ``model`` on the test splits, as rows of ``stage``.

    ``asr`` is reported on the artifact test only (the clean test carries no trigger).
    """
    rows = []
    for name in splits:
        split = getattr(data, name)
        values = stage_values(predict_logits(model, split, device), split, data)
        for value_name, value in values.items():
            if value_name not in metric.values or (value_name == "asr" and name != "artifact_test"):
                continue
            rows.append(metric.row(value_name, value, split=name, stage=stage))
    return rows


def indices_tag(prefix: str, indices: torch.Tensor) -> str:
    """A short content tag for a set of removed train indices (equal sets give equal tags)."""
    idx = torch.as_tensor(indices, dtype=torch.long).flatten().sort().values
    digest = hashlib.sha1(idx.numpy().tobytes()).hexdigest()[:12]
    return f"{prefix}:{idx.numel()}:{digest}"


def require_train_model(ctx, metric_name: str):
    """``ctx.train_model``; a ``ValueError`` naming the metric when the context has none."""
    if ctx.train_model is None:
        raise ValueError(f"metric {metric_name!r} retrains models but the context has no train_model")
    return ctx.train_model
