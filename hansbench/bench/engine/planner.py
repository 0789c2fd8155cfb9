"""The run as an explicit graph, planned before any work.

    data (scenario, seed) -> model (kind, recipe) -> maps (explainer, split, selection)
        -> clustering (input kind, clusterer, view settings) -> metric rows
    model -> explainer -> timing rows

A clustering's source is a registered input kind (:mod:`hansbench.methods.inputs`): an
explainer's ``maps``, or a kind that is its own baseline (``activations``, ``pixels``, a plugin's),
whose rows carry the kind's name in the ``explainer`` column. Every single-view map clusterer
also clusters ``pixels`` (the raw-image control) unless ``[clustering] pixels = false`` or its
``explainers = [...]`` filter leaves ``pixels`` out.

A :class:`Node` holds its own parameters, its input nodes (nested, so a worker can rebuild
anything it needs from the node alone) and its key from :mod:`hansbench.bench.engine.keys`. Each
node type (:mod:`hansbench.bench.engine.nodes`, one module per type) writes its own parameters, ids
and code version; the planner decides which nodes a suite needs and builds each once. Resource
nodes (data, model, explainer, maps, clustering) produce outputs, cached where their type says;
row nodes (metric, timing) produce rows in the results store. The planner leaves out
combinations that cannot apply and says why (:class:`Omitted`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hansbench.bench.engine.nodes import Node, node_types
from hansbench.bench.engine.nodes.clustering import ClusteringNode
from hansbench.bench.engine.nodes.data import DataNode, data_settings, scenario_params
from hansbench.bench.engine.nodes.explainer import ExplainerNode
from hansbench.bench.engine.nodes.figure_inputs import FigureInputsNode
from hansbench.bench.engine.nodes.maps import MapsNode
from hansbench.bench.engine.nodes.metric import MetricNode
from hansbench.bench.engine.nodes.model import ModelNode
from hansbench.bench.engine.nodes.timing import TimingNode
from hansbench.bench.suite.config import Suite, input_kind_rows
from hansbench.datasets.scenarios import Scenario
from hansbench.methods.inputs import PIXELS
from hansbench.registry import clusterer_inputs, clusterers, explainers, metrics

__all__ = ["Node", "Omitted", "Plan", "Planner", "data_settings", "runs_in", "scenario_params"]


@dataclass
class Omitted:
    """A combination the planner left out, and why (shown where the leaderboard cell is empty)."""

    ids: dict
    reason: str


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


def runs_in(scenario: Scenario, section: str, name: str) -> bool:
    """Whether the scenario's ``only = { <section> = [...] }`` lets ``name`` run there (absent: everything)."""
    return scenario.runs_in(section, name)


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

    # -- nodes, built by their types --------------------------------------------------------------
    def data(self, scenario: Scenario, seed: int) -> Node:
        return DataNode.plan(self, scenario, seed)

    def model(self, data: Node, kind: str) -> Node:
        return ModelNode.plan(self, data, kind)

    def explainer(self, model: Node, name: str) -> Node:
        return ExplainerNode.plan(self, model, name)

    def cluster_maps(self, explainer: Node) -> Node:
        """Maps of the inspected class's training images: the clusterers' input."""
        return MapsNode.plan(self, explainer)

    def clustering(self, model: Node, source: str, name: str) -> Node:
        """Clustering by ``name`` of ``source``: an explainer (its maps) or a non-map input kind."""
        return ClusteringNode.plan(self, model, source, name)

    def metric(self, name: str, inputs: dict[str, Node], ids: dict) -> Node:
        return MetricNode.plan(self, name, inputs, ids)

    def timing(self, explainer: Node) -> Node:
        return TimingNode.plan(self, explainer)

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
        suite, allows = self.suite, self.suite.allows
        rows: list[Node] = []
        omitted: list[Omitted] = []
        for scenario in suite.scenarios:
            for seed in suite.seeds:
                data = self.data(scenario, seed)
                for kind in [k for k in suite.models if scenario.runs_in("models", k)]:
                    model = self.model(data, kind)
                    exps = [e for e in self.explainers_for(kind) if scenario.runs_in("explainers", e)]
                    pairs = [(e, c) for e, c in self.clustering_pairs(kind, exps)
                             if scenario.runs_in("clusterers", c)]
                    row_kinds = set(input_kind_rows())
                    for mname, entry in suite.metrics.items():
                        if not allows("metrics", mname, model=kind) or not scenario.runs_in("metrics", mname):
                            continue
                        metric = metrics.get(mname)(**entry.options)
                        combos: list[tuple[str, str]] = {
                            "model": [("", "")], "explainer": [(e, "") for e in exps], "clustering": pairs,
                        }[metric.level]
                        for e, c in combos:
                            if not allows("metrics", mname, explainer=e, clusterer=c):
                                continue
                            ids = {**model.ids, "explainer": e, "clusterer": c, "family": mname}
                            reason = metric.not_applicable(
                                model_kind=kind, scenario=scenario,
                                explainer=explainers.get(e) if e and e not in row_kinds else None,
                                explainer_name=e, clusterer_name=c)
                            if reason:
                                omitted.append(Omitted(ids, reason))
                                continue
                            inputs: dict[str, Node] = {"model": model}
                            if e and e not in row_kinds:
                                inputs["explainer"] = self.explainer(model, e)
                            if c:
                                inputs["clustering"] = self.clustering(model, e, c)
                            rows.append(self.metric(mname, inputs, ids))
                    for e in exps:
                        rows.append(self.timing(self.explainer(model, e)))
        return Plan(rows, omitted, self.figure_inputs(rows) if suite.figures else [])

    def figure_inputs(self, rows: list[Node]) -> list[Node]:
        """Per scenario and model kind, on the first seed: the node computing what its figures draw, from the
        explainers and clusterings the rows need (figures compute no clustering of their own)."""
        used: dict[str, Node] = {a.key: a for r in rows for a in r.ancestors()}
        groups: dict[tuple, dict[str, list[Node]]] = {}
        for n in used.values():
            if n.type in ("explainer", "clustering", "model"):
                g = groups.setdefault((n.ids["scenario"], n.ids["seed"], n.ids["model"]),
                                      {"model": [], "explainer": [], "clustering": []})
                g[n.type].append(n)
        first: dict[tuple, int] = {}
        for (scenario, seed, kind) in groups:
            first.setdefault((scenario, kind), seed)
        return [FigureInputsNode.plan(self, g["model"][0], g["explainer"], g["clustering"])
                for (scenario, seed, kind), g in groups.items() if first[(scenario, kind)] == seed and g["model"]]
