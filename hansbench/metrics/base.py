"""The Metric contract and the context a metric is evaluated in.

Metric metadata are class attributes (Quantus style) so that tables rank without
special cases: every value a metric emits is declared in ``values`` with its unit and
direction. Metrics receive maps, labels and models through :class:`EvalContext`, never
explainer objects (``metrics`` and ``methods`` do not import each other).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from hansbench.datasets.base import ScenarioData, Split


@dataclass
class EvalContext:
    """Everything one metric evaluation may use; built by the runner.

    ``explain(split, index=None, target=None) -> [N, V, H, W]``: maps of the current
    explainer for ``data.<split>`` samples (targets default to the split's labels),
    computed batched on ``device`` and cached.
    ``train_model(train: Split, tag) -> nn.Module``: trains a fresh model of the same
    kind with the same recipe on another training set (cached by content).
    ``clustering``/``cluster_index``: the clustering of ``data.train[cluster_index]``.
    """

    data: ScenarioData
    model: nn.Module
    seed: int
    device: torch.device
    explainer: str = ""
    clusterer: str = ""
    explain: Callable[..., torch.Tensor] | None = None
    clustering: Any = None  # hansbench.methods.base.ClusteringResult (duck-typed)
    cluster_index: torch.Tensor | None = None
    train_model: Callable[[Split, str], nn.Module] | None = None
    extras: dict = field(default_factory=dict)  # e.g. concept scores published by an explainer

    def generator(self, salt: int = 0) -> torch.Generator:
        """A seeded CPU generator, so metric randomness is reproducible per seed."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)


class Metric:
    """Scores one (model, explainer[, clusterer]) combination.

    ``level``: ``"explainer"`` (once per model x explainer), ``"clustering"`` (once per
    model x explainer x clusterer) or ``"model"`` (once per model; explainer-free).
    ``values``: value name -> (unit, higher_is_better); rows name one of them.
    ``needs_retraining``: the metric trains models (the suite may restrict its pairs).
    """

    name: ClassVar[str] = ""
    level: ClassVar[str] = "explainer"
    model_kinds: ClassVar[tuple[str, ...]] = ("classifier", "protopnet")
    values: ClassVar[dict[str, tuple[str, bool]]] = {}
    needs_retraining: ClassVar[bool] = False
    version: ClassVar[str] = "1"

    def __init__(self, **options: Any):
        if options:
            raise TypeError(f"metric {self.name!r} takes no options, got {sorted(options)}")

    @property
    def options(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def applies_to(self, model_kind: str, explainer: str = "", clusterer: str = "") -> bool:
        """Whether this metric has anything to say about the combination."""
        return model_kind in self.model_kinds

    def row(self, value_name: str, value: float, *, split: str = "", stage: str = "", detail: str = "") -> dict:
        """A flat result record for one declared value."""
        try:
            unit, higher = self.values[value_name]
        except KeyError:
            raise KeyError(f"metric {self.name!r} emits undeclared value {value_name!r}") from None
        return {
            "metric": value_name,
            "value": float(value),
            "unit": unit,
            "higher_is_better": bool(higher),
            "split": split,
            "stage": stage,
            "detail": detail,
        }

    def evaluate(self, ctx: EvalContext) -> list[dict]:
        raise NotImplementedError
