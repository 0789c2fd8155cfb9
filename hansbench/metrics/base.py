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
    explainer for ``data.<split>`` samples, computed batched on ``device`` and cached. Targets
    default to the split's labels, which are the true classes on the test sets: metrics pass
    ``data.explain_targets(split, index)`` explicitly (a backdoor's triggered images are
    explained for its target class) and record ``data.explain_rule(split, index)`` in ``detail``.
    ``train_model(train: Split, tag) -> nn.Module``: trains a fresh model of the same
    kind with the same recipe on another training set (cached by content).
    ``clustering``/``cluster_index``: the clustering of ``data.train[cluster_index]``.
    ``explain_model(model, x, target) -> [B, V, H, W]``: the current explainer, built fresh (its
    ``setup`` run on ``model``), explaining another model (``x`` normalised, on ``device``);
    uncached, for checks that change the model (model randomisation).
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
    explain_model: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
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
    # What the metric needs to say anything; the planner leaves out combinations without it:
    # "prototype-views" (one map per prototype of the class, e.g. PRP), "multiview" (V > 1 maps),
    # "poisoned-and-clean" (the inspected class holds both poisoned and clean training images).
    requires: ClassVar[frozenset[str]] = frozenset()

    # -- presentation: how the leaderboard shows the rows (``hansbench.bench.leaderboard`` reads only these;
    # every default gives a plugin metric a sensible table of its own) -------------------------------------
    # ``table``: the table id (also the CSV name, ``<scenario>.<table>.csv``); metrics with the same id and
    # shape share one table. "" = the metric's own name.
    table: ClassVar[str] = ""
    # ``table_shape``: "explainer" (explainers x value columns, ranked, one table per model kind),
    # "detection" (explainer x clusterer cells, PRP Table II), "stages" (an intervention's stages as
    # columns, PRP Table I), "model" (one row per model kind), "reliance" (the per-model summary that
    # opens a scenario and gates its ranks). "" = from ``level`` (model -> model, explainer -> explainer,
    # clustering -> detection).
    table_shape: ClassVar[str] = ""
    # ``headline``: the values shown by default (the CSV keeps every value); () = every declared value.
    headline: ClassVar[tuple[str, ...]] = ()
    # ``relative_to_random``: raw scores (logits, similarities) shown as value minus the reference
    # explainer's value on the same seed, model and split; the reference is a row of its own.
    relative_to_random: ClassVar[bool] = False
    reference_explainer: ClassVar[str] = "random"  # the baseline row of explainer tables and curves
    ranked: ClassVar[bool] = True  # whether the values enter the explainers' mean rank
    meaning: ClassVar[str] = ""  # one line under the table; "" = the first line of the class docstring
    # ``stages``: for table_shape "stages", the ``stage`` values that become columns (in this order); rows
    # of other stages are rows of their own (e.g. cleaning baselines "none", "oracle").
    stages: ClassVar[tuple[str, ...]] = ()
    column_detail: ClassVar[str] = ""  # a JSON key of ``detail`` that splits a value into columns (e.g. fraction)
    # ``gates`` (reliance): value name -> the note shown when the value is on its worse side (a 0/1 flag);
    # a model with a failed gate has its cells marked and left out of the ranks.
    gates: ClassVar[dict[str, str]] = {}
    # ``supersedes`` (reliance): metrics whose reliance rows this one's replace in the summary when both ran
    # (the superseded rows still get a table of their own).
    supersedes: ClassVar[tuple[str, ...]] = ()
    # ``marks``: value name -> note; the value is a 0/1 flag per explainer (e.g. "maps survive model
    # randomisation"): an explainer whose mean of it over seeds is >= 0.5 gets a mark next to its name in every
    # table of that scenario and model, and the note under the table.
    marks: ClassVar[dict[str, str]] = {}
    # ``undirected``: declared values with no better side (counts such as n-removed): no arrow, never ranked
    # or tested; the declared ``higher_is_better`` is kept in the rows for compatibility.
    undirected: ClassVar[tuple[str, ...]] = ()
    # Detection (table_shape "detection"): ``label_free`` are the values an auditor gets without labels,
    # chance-corrected or rank-based (the page's summary ranks detectors by the first one present, e.g. the
    # F1 of the cluster flagged without labels); ``label_matched`` the values that use the ground truth to pick
    # the cluster (PRP Table II's ACC / F1), shown in a table of their own labelled so; ``control`` the values
    # shown for a clean control scenario, where nothing is poisoned (e.g. the share of samples flagged).
    label_free: ClassVar[tuple[str, ...]] = ()
    label_matched: ClassVar[tuple[str, ...]] = ()
    control: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: Any):
        if options:
            raise TypeError(f"metric {self.name!r} takes no options, got {sorted(options)}")

    @property
    def options(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def applies_to(self, model_kind: str, explainer: str = "", clusterer: str = "") -> bool:
        """Whether this metric has anything to say about the combination."""
        return model_kind in self.model_kinds

    def not_applicable(self, *, model_kind: str, scenario: dict, explainer: Any = None, explainer_name: str = "",
                       clusterer_name: str = "") -> str | None:
        """Why this metric has nothing to say about the combination, or ``None`` when it applies.

        ``explainer`` is the explainer class (``None`` for model-level metrics and activations);
        ``scenario`` the scenario's settings with defaults filled in.
        """
        if model_kind not in self.model_kinds:
            return f"{self.name} scores {', '.join(self.model_kinds)} models, not {model_kind}"
        if "prototype-views" in self.requires and (
                explainer is None or getattr(explainer, "views", "") != "prototypes"):
            return f"{self.name} needs one map per prototype (an explainer with views = 'prototypes')"
        if "multiview" in self.requires and (explainer is None or not getattr(explainer, "multiview", False)):
            return f"{self.name} needs multi-view maps"
        if "poisoned-and-clean" in self.requires:
            from hansbench.datasets.poisonings import get_poisoning
            from hansbench.datasets.scenarios import SCENARIO_DEFAULTS

            sc = {**SCENARIO_DEFAULTS, **scenario}
            poisoning, fraction = sc["poisoning"], float(sc["fraction"])
            poisoned, clean = get_poisoning(poisoning).inspected_class_holds(fraction)  # the poisoning says
            if not (poisoned and clean):
                return (f"{self.name} needs poisoned and clean images in the inspected class "
                        f"({poisoning} at fraction {fraction:g} has {'none poisoned' if not poisoned else 'no clean ones'})")
        if not self.applies_to(model_kind, explainer_name, clusterer_name):
            return f"{self.name} does not apply to this combination (its options restrict it)"
        return None

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
