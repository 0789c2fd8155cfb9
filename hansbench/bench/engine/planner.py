"""The run as an explicit graph, planned before any work.

    data (scenario, seed) -> model (kind, recipe) -> maps (explainer, split, selection)
        -> clustering (input kind, clusterer, view settings) -> metric rows
        clustering -> flagging (rule) -> metric rows (flag-detection, data-cleaning)
    model -> explainer -> timing rows

A clustering's source is a registered input kind (:mod:`hansbench.methods.inputs`): an
explainer's ``maps``, or a kind that is its own baseline (``activations``, ``pixels``, a plugin's),
whose rows carry the kind's name in the ``explainer`` column. Every single-view map clusterer
also clusters ``pixels`` (the raw-image control) unless ``[clustering] pixels = false`` or its
``explainers = [...]`` filter leaves ``pixels`` out.

A :class:`Node` holds its own parameters, its input nodes (nested, so a worker can rebuild
anything it needs from the node alone) and its key from :mod:`hansbench.bench.engine.keys`. Each
node type (:mod:`hansbench.bench.engine.nodes`, one module per type) writes its own parameters, ids
and code version, and a row type plans its own nodes for each scenario x seed x model kind
(``plan_for_model``), leaving out the combinations that cannot apply with the reason
(:class:`Omitted`); the planner walks the suite's scenarios, seeds and model kinds, asks every
registered type, and builds each node once. Resource nodes (data, model, explainer, maps,
clustering) produce outputs, cached where their type says; row nodes (metric, timing) produce
rows in the results store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hansbench.bench.engine.nodes import Node, node_types
from hansbench.bench.engine.nodes.base import ModelPlan, Omitted
from hansbench.bench.suite.config import Suite
from hansbench.methods.inputs import PIXELS
from hansbench.registry import clusterer_inputs, clusterers, explainers

__all__ = ["Node", "Omitted", "Plan", "Planner"]


@dataclass
class Plan:
    nodes: list[Node]  # row nodes (metric, timing) in execution order
    omitted: list[Omitted] = field(default_factory=list)
    figures: list[Node] = field(default_factory=list)  # what the session figures draw (no rows; cached)

    def all_nodes(self) -> list[Node]:
        """Row and figure nodes and their inputs, each once, inputs before their dependants (types in their
        declared order)."""
        seen: dict[str, Node] = {}
        for node in self.nodes + self.figures:
            for n in [*node.ancestors(), node]:
                seen.setdefault(n.key, n)
        return sorted(seen.values(), key=lambda n: node_types.order(n.type))  # stable: plan order within a type


class Planner:
    """Turns a validated suite into nodes; computes every key without loading any data.

    Each node type builds its own nodes (``<Type>Node.plan(planner, ...)``: its parameters, ids
    and code version); the planner decides which combinations run and builds each node once.
    """

    def __init__(self, suite: Suite, device_type: str = "cpu"):
        self.suite = suite
        self.device_type = device_type
        self._memo: dict[tuple, Node] = {}

    def once(self, key: tuple, make: Callable[[], Node]) -> Node:
        """The node planned under ``key``, made by ``make()`` the first time (one node per key)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def node(self, node_type: str, *args) -> Node:
        """A node of ``node_type``, built by its registered type (``Type.plan(planner, *args)``): e.g.
        ``planner.node("data", scenario, seed)``, ``planner.node("model", data_node, "classifier")``."""
        return node_types.get(node_type).plan(self, *args)

    # -- which combinations run ------------------------------------------------------------------
    def clustering_pairs(self, kind: str, exps: list[str]) -> list[tuple[str, str]]:
        """(source, clusterer) pairs for model ``kind``: map clusterers x explainers, then the pixels
        control of every single-view map clusterer, then the clusterers of other input kinds."""
        allows = self.suite.allows
        names = [c for c in self.suite.clusterers if allows("clusterers", c, model=kind)]
        on_maps = [c for c in names if clusterer_inputs.get(clusterers.get(c).input).needs_explainer]
        pairs = [(e, c) for e in exps for c in on_maps if allows("clusterers", c, explainer=e)]
        if self.suite.clustering.get("pixels", True):
            pairs += [(PIXELS, c) for c in on_maps if not clusterers.get(c).multiview
                      and clusterers.get(c).pixels_control and allows("clusterers", c, explainer=PIXELS)]
        pairs += [(clusterers.get(c).input, c) for c in names if c not in on_maps
                  and allows("clusterers", c, explainer=clusterers.get(c).input)]
        return pairs

    # -- the plan --------------------------------------------------------------------------------------
    def explainers_for(self, kind: str) -> list[str]:
        """The suite's explainers that support ``kind`` and are not filtered away from it."""
        return [e for e in self.suite.explainers
                if kind in explainers.get(e).model_kinds and self.suite.allows("explainers", e, model=kind)]

    def plan(self) -> Plan:
        """Every row node of the suite and the nodes the figures draw from: for each scenario x seed x model
        kind, each registered node type plans its own rows (:meth:`NodeType.plan_for_model`, in the types'
        order); then each type may plan from all the rows (:meth:`NodeType.plan_after`). No type is named here,
        so a new node type is one module and its test."""
        suite = self.suite
        types = sorted((node_types.get(t) for t in node_types.names()), key=lambda c: c.order)
        rows: list[Node] = []
        omitted: list[Omitted] = []
        for scenario in suite.scenarios:
            for seed in suite.seeds:
                data = self.node("data", scenario, seed)
                for kind in [k for k in suite.models if scenario.runs_in("models", k)]:
                    model = self.node("model", data, kind)
                    exps = [e for e in self.explainers_for(kind) if scenario.runs_in("explainers", e)]
                    pairs = [(e, c) for e, c in self.clustering_pairs(kind, exps) if scenario.runs_in("clusterers", c)]
                    at = ModelPlan(scenario, kind, model, exps, pairs)
                    for t in types:
                        nodes, left_out = t.plan_for_model(self, at)
                        rows += nodes
                        omitted += left_out
        after = [n for t in types for n in t.plan_after(self, rows)] if suite.figures else []
        return Plan(rows, omitted, after)
