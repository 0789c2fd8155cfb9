"""Supervised ceiling: can a linear probe read the artifact from what the clusterers see at all?

A clusterer must find the poisoned images without labels; a logistic-regression probe is given
them. Its cross-validated accuracy bounds what any clustering of the same features can reach
with a linear boundary: a method whose maps hold no linearly readable trace of the artifact
cannot be blamed on the clusterer, and a method that clusters badly despite a ~100 % probe
loses to its clusterer, not its maps. Never ranked: it uses the ground truth a method never sees.

``probe-ceiling`` probes an explainer's maps of the inspected class's training images (the
map bank's, the clusterers' input), average-pooled to ``map_size`` (default: the clusterers'
rule, max(4, round(side / 3))) and flattened per view, views concatenated. ``probe-ceiling-inputs``
probes the two explanation-free inputs of the same images (rows by ``stage``): ``pixels`` (the
RGB images pooled the same way) and ``activations`` (the model's penultimate activations).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from hansbench.metrics._perturbation import evaluating
from hansbench.metrics.base import EvalContext, Metric
from hansbench.metrics.presentation import Shows
from hansbench.registry import metrics

PROBE_VALUES = {
    "probe-accuracy": ("%", True),
    "probe-balanced-accuracy": ("%", True),
    "probe-auroc": ("", True),
}
MAX_FOLDS = 5


def pooled(images: torch.Tensor, map_size: int | None) -> np.ndarray:
    """``[N, C, H, W]`` -> ``[N, C * s * s]``: average-pooled to ``s`` (None: max(4, round(side / 3))), flattened."""
    size = map_size or max(4, round(images.shape[-1] / 3))
    return F.adaptive_avg_pool2d(images.float(), size).flatten(1).cpu().numpy().astype(np.float64)


def probe_scores(features: np.ndarray, poisoned: np.ndarray, *, seed: int, C: float = 1.0) -> dict | None:
    """Cross-validated logistic-regression probe poisoned vs clean; ``None`` when a class has < 2 samples.

    ``StandardScaler`` + ``LogisticRegression`` in one ``Pipeline`` (the scaler is fitted on each
    training fold only), ``StratifiedKFold`` with ``min(5, smaller class)`` folds, shuffled with
    ``seed``. Out-of-fold predictions give accuracy and balanced accuracy (%) and AUROC.
    """
    y = np.asarray(poisoned).astype(int)
    counts = np.bincount(y, minlength=2)
    n_splits = int(min(MAX_FOLDS, counts.min()))
    if n_splits < 2:
        return None
    probe = Pipeline([("scale", StandardScaler()), ("probe", LogisticRegression(C=C, max_iter=2000))])
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    proba = cross_val_predict(probe, features, y, cv=folds, method="predict_proba")[:, 1]
    pred = (proba >= 0.5).astype(int)
    return {
        "probe-accuracy": 100.0 * accuracy_score(y, pred),
        "probe-balanced-accuracy": 100.0 * balanced_accuracy_score(y, pred),
        "probe-auroc": float(roc_auc_score(y, proba)),
        "folds": n_splits,
        "n_poisoned": int(counts[1]),
        "n_clean": int(counts[0]),
    }


class _Probe(Metric):
    requires = frozenset({"poisoned-and-clean"})
    values = PROBE_VALUES
    presentation = Shows(table="probe-ceiling", ranked=False, meaning="supervised ceiling: can a linear probe read "
                         "the artifact from the maps at all? never ranked")

    def __init__(self, map_size: int | None = None, C: float = 1.0):
        if map_size is not None and int(map_size) < 1:
            raise ValueError(f"{self.name}: map_size {map_size} must be a positive side in pixels (or None)")
        if float(C) <= 0:
            raise ValueError(f"{self.name}: C {C} is LogisticRegression's inverse regularisation; give one > 0")
        self.map_size = None if map_size is None else int(map_size)
        self.C = float(C)

    def _rows(self, features: np.ndarray, poisoned: torch.Tensor, ctx: EvalContext, stage: str = "",
              **extra) -> list[dict]:
        scores = probe_scores(features, poisoned.cpu().numpy(), seed=ctx.seed, C=self.C)
        if scores is None:
            return []  # fewer than 2 poisoned or 2 clean images: no cross-validation possible
        detail = json.dumps({k: scores[k] for k in ("folds", "n_poisoned", "n_clean")}
                            | {"features": int(features.shape[1]), "C": self.C, **extra})
        return [self.row(v, scores[v], split="train", stage=stage, detail=detail) for v in PROBE_VALUES]


@metrics.register("probe-ceiling")
class ProbeCeiling(_Probe):
    """Supervised ceiling: a linear probe's cross-validated accuracy at telling poisoned from clean training maps.

    Options: ``map_size`` (None = the clusterers' rule), ``C`` (LogisticRegression's inverse
    regularisation, 1.0). Folds are seeded with the run's seed.
    """

    level = "explainer"

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """Cross-validated accuracy of a linear probe telling poisoned from clean training maps."""
        if ctx.explain is None:
            raise ValueError(f"{self.name} needs ctx.explain")
        index = ctx.data.train.of_class(ctx.data.inspect_class)
        target = ctx.data.explain_targets("train", index)
        maps = ctx.explain("train", index, target).float().cpu()  # [N, V, H, W]
        return self._rows(pooled(maps, self.map_size), ctx.data.train.poisoned[index], ctx,
                          views=int(maps.shape[1]), explained=ctx.data.explain_rule("train", index))


@metrics.register("probe-ceiling-inputs")
class ProbeCeilingInputs(_Probe):
    """The same probe on the explanation-free inputs: pooled pixels and penultimate activations (rows by stage).

    Options as ``probe-ceiling``; ``batch_size`` of the activation forward passes (256).
    """

    level = "model"
    presentation = replace(_Probe.presentation, table="probe-ceiling-inputs", meaning="supervised ceiling on the "
                           "inputs that need no explanation: pooled pixels, penultimate activations")

    def __init__(self, map_size: int | None = None, C: float = 1.0, batch_size: int = 256):
        super().__init__(map_size=map_size, C=C)
        self.batch_size = int(batch_size)

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        """The same probe on the raw pixels and on the penultimate activations."""
        index = ctx.data.train.of_class(ctx.data.inspect_class)
        images = ctx.data.train.images[index]
        poisoned = ctx.data.train.poisoned[index]
        model = ctx.model
        with evaluating(model):
            acts = torch.cat([model.embed(model.normalize(images[i:i + self.batch_size].to(ctx.device))).cpu()
                              for i in range(0, len(images), self.batch_size)])
        return (self._rows(pooled(images, self.map_size), poisoned, ctx, stage="pixels")
                + self._rows(acts.flatten(1).double().numpy(), poisoned, ctx, stage="activations"))
