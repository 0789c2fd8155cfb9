"""The Metric contract and the context a metric is evaluated in.

Metric metadata are class attributes (Quantus style) so that tables rank without
special cases: every value a metric emits is declared in ``values`` with its unit and
direction. Metrics receive maps, labels and models through :class:`EvalContext`, never
explainer objects (``metrics`` and ``methods`` do not import each other).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from hansbench.datasets.base import ScenarioData, Split
from hansbench.metrics.presentation import Shows, register


@runtime_checkable
class FlagOutcome(Protocol):
    """What a metric reads of a flagging rule's verdict (``hansbench.methods.flagging.base.Flagging``; metrics do not
    import methods, so it is described here): ``flagged`` ``[N]`` bool over the clustered samples
    (``ctx.cluster_index``), all False when ``abstained``; ``reason`` one sentence with the numbers; ``info``
    JSON-safe diagnostics of the rule."""

    flagged: Any
    abstained: bool
    reason: str
    info: dict


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
    ``flagging``/``rule`` (level ``"flagging"`` only; ``None`` / "" elsewhere): the verdict of flagging rule
    ``rule`` on ``clustering`` (a :class:`FlagOutcome`, i.e. ``hansbench.methods.flagging.base.Flagging``):
    which of the clustered samples the rule flags, without labels, or that it abstained.
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
    flagging: Any = None  # a FlagOutcome (hansbench.methods.flagging.base.Flagging) at level "flagging"
    rule: str = ""  # the flagging rule's registered name at level "flagging"
    extras: dict = field(default_factory=dict)  # e.g. concept scores published by an explainer

    def generator(self, salt: int = 0) -> torch.Generator:
        """A seeded CPU generator, so metric randomness is reproducible per seed."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)


class Metric:
    """Scores one (model, explainer[, clusterer]) combination.

    ``level``: ``"explainer"`` (once per model x explainer), ``"clustering"`` (once per
    model x explainer x clusterer), ``"flagging"`` (once per model x explainer x clusterer x flagging rule
    that applies to the clusterer: ``ctx.clustering``, ``ctx.cluster_index``, ``ctx.flagging`` and ``ctx.rule``)
    or ``"model"`` (once per model; explainer-free).
    ``values``: value name -> (unit, higher_is_better); rows name one of them.
    ``needs_retraining``: the metric trains models (the suite may restrict its pairs).

    Applicability is decided in one place, :meth:`not_applicable` (the planner calls it): declare
    ``model_kinds`` (the model kinds it scores) and ``requires`` (what the maps must offer) as class
    attributes, and override ``not_applicable`` only for what those cannot say (the scenario's
    poisoning, the metric's options).
    How the leaderboard shows the rows is one class attribute, ``presentation``: a
    :class:`~hansbench.metrics.presentation.Shows` (table, shape, headline, ...), shared by the metrics that share
    a table and validated once, when the metric registers (:meth:`check_declarations`).

    Parameters
    ----------
    **options
        The suite's ``[metrics.<name>]`` keys (filter keys such as ``models`` and ``explainers``
        are the runner's and never reach the metric). A subclass declares them as keyword
        arguments with defaults and stores each under its own name; the base class takes none.

    Raises
    ------
    TypeError
        An option the metric does not take (suite validation reports it before any work).

    Notes
    -----
    Every row a metric returns is checked against these declarations, for every registered
    metric, by ``tests/metrics/test_metric_contract.py``: its ``metric`` is a key of ``values``, its
    ``unit`` and ``higher_is_better`` are the declared ones, its value is finite or ``None``.
    ``docs/catalogue.md`` lists each built-in metric's declarations.

    Examples
    --------
    >>> from hansbench.metrics.base import Metric
    >>> from hansbench.metrics.presentation import Shows
    >>> class MeanRelevance(Metric):
    ...     level = "explainer"
    ...     values = {"mean-relevance": ("", True)}
    ...     presentation = Shows(table="explainers", headline=("mean-relevance",))
    ...     def evaluate(self, ctx):
    ...         maps = ctx.explain("artifact_test")  # [N, V, H, W], targets as the poisoning says
    ...         return [self.row("mean-relevance", maps.mean().item(), split="artifact_test")]
    >>> MeanRelevance().row("mean-relevance", 0.5)["higher_is_better"]
    True
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

    # How the leaderboard shows the rows: one declared structure (the report reads only its validated form,
    # :func:`~hansbench.metrics.presentation.presentation_of`); the default gives a plugin metric a table of its own.
    presentation: ClassVar[Shows] = Shows()

    @classmethod
    def check_declarations(cls, name: str) -> None:
        """Validate the class's ``level``, ``values`` and ``presentation`` as it registers as ``name``.

        The metrics registry's hook (``hansbench.registry.metrics`` calls it by name, importing nothing of the
        metrics): a bad declaration fails here, in one line, and the class is not registered.

        Raises
        ------
        hansbench.metrics.presentation.PresentationError
            The metric, the attribute and what is allowed (:func:`~hansbench.metrics.presentation.declare`).
        """
        register(name, cls)

    def __init__(self, **options: Any):
        if options:
            raise TypeError(f"metric {self.name!r} takes no options, got {sorted(options)}")

    @property
    def options(self) -> dict[str, Any]:
        """Everything that determines the rows (hashed into cache keys): the public instance attributes."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def applies_to(self, model_kind: str, explainer: str = "", clusterer: str = "", scenario: dict | None = None) -> bool:
        """Whether :meth:`not_applicable` finds no reason (a convenience; override ``not_applicable``, not this).

        The explainer is known by name only here, so a metric that ``requires`` something of the
        explainer's class (``prototype-views``, ``multiview``) does not apply. Settings ``scenario`` leaves
        out take their defaults (it becomes a :class:`~hansbench.datasets.scenarios.Scenario`).
        """
        from hansbench.datasets.scenarios import Scenario

        sc = Scenario.from_table({"name": "", **(scenario or {})})
        return self.not_applicable(model_kind=model_kind, scenario=sc, explainer_name=explainer,
                                   clusterer_name=clusterer) is None

    def not_applicable(self, *, model_kind: str, scenario: dict, explainer: Any = None, explainer_name: str = "",
                       clusterer_name: str = "") -> str | None:
        """Why this metric has nothing to say about the combination, or ``None`` when it applies.

        The one place applicability is decided: the planner calls it for every combination before any
        work and stores the reason as a ``not-applicable`` job. The base class checks the class-level
        declarations (``model_kinds``, ``requires``); override it (returning ``super()``'s reason first)
        for conditions on the scenario, the explainer or the metric's options.

        Parameters
        ----------
        model_kind : str
            The registered model kind.
        scenario : Mapping
            The scenario's settings (``poisoning``, ``fraction``, ...), defaults filled in: a
            :class:`~hansbench.datasets.scenarios.Scenario`, read like a dict.
        explainer : type or None
            The explainer class (``None`` for model-level metrics and clusterings of an input kind).
        explainer_name, clusterer_name : str
            The registered names ("" where the level has none).

        Returns
        -------
        str or None
            A one-line reason, or ``None`` when the metric applies.
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

            poisoning, fraction = scenario["poisoning"], float(scenario["fraction"])
            poisoned, clean = get_poisoning(poisoning).inspected_class_holds(fraction)  # the poisoning says
            if not (poisoned and clean):
                return (f"{self.name} needs poisoned and clean images in the inspected class "
                        f"({poisoning} at fraction {fraction:g} has {'none poisoned' if not poisoned else 'no clean ones'})")
        return None

    def row(self, value_name: str, value: float, *, split: str = "", stage: str = "", detail: str = "") -> dict:
        """A flat result record for one declared value.

        Parameters
        ----------
        value_name : str
            A key of :attr:`values`; its unit and direction are filled in from there.
        value : float
            The value (converted with ``float``; for an undefined value build the row and set
            ``"value"`` to ``None``: NaN and infinities are refused by the runner).
        split : str
            The evaluation split (``artifact_test``, ``clean_test``, ...), "" if none.
        stage : str
            The stage of an intervention (``before``, ``pruned``, ``cleaned``, ...), "" if none.
        detail : str
            Free text, usually JSON (per-image values, the rule the targets followed).

        Returns
        -------
        dict
            ``metric, value, unit, higher_is_better, split, stage, detail``.

        Raises
        ------
        KeyError
            ``value_name`` is not declared in :attr:`values`.
        """
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
        """Score the context's combination.

        Parameters
        ----------
        ctx : EvalContext
            The data, model, seed and device, plus what the level provides: ``explain`` and
            ``explain_model`` (explainer and clustering levels), ``clustering`` and
            ``cluster_index`` (clustering and flagging levels), ``flagging`` and ``rule`` (flagging level: the
            rule's verdict on that clustering), ``train_model`` (always; retraining metrics use
            it). Draw randomness from ``ctx.generator(salt)``.

        Returns
        -------
        list of dict
            Rows built with :meth:`row`; at least one when the metric applies.
        """
        raise NotImplementedError
