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
anything it needs from the node alone) and its key from :mod:`hansbench.bench.keys`.
Resource nodes (data, model, explainer, maps, clustering) produce cached outputs; row nodes
(metric, timing) produce rows in the results store. The planner leaves out combinations
that cannot apply and says why (:class:`Omitted`).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field

from hansbench.bench import keys
from hansbench.bench.config import Suite, input_kind_rows
from hansbench.datasets.scenarios import SCENARIO_DEFAULTS
from hansbench.methods.base import MAPS
from hansbench.methods.inputs import PIXELS
from hansbench.registry import (
    artifacts,
    backbones,
    clusterer_inputs,
    clusterers,
    datasets,
    explainers,
    metrics,
    model_kinds,
    poisonings,
)

RESOURCE_TYPES = ("data", "model", "explainer", "maps", "clustering")
ROW_TYPES = ("metric", "timing")
MAPS_VERSION = "2"  # maps live in a per-(explainer, split) bank (execute.MapBank); clustering input = inspected class
VIEWS_VERSION = "1"  # how maps become clusterer views (average-pooled to map_size, flattened)

@dataclass(eq=False)
class Node:
    """One unit of work: ``type``, its ``params``, its ``inputs`` (role -> Node), and its key."""

    type: str
    params: dict
    inputs: dict[str, Node]
    code: str
    ids: dict  # scenario, seed, model, explainer, clusterer, metric: for the store and messages
    key: str = ""
    gpu: bool = False  # needs the accelerator when the run's device is one

    def __post_init__(self) -> None:
        self.key = keys.node_key(self.type, self.params, self.code, {r: n.key for r, n in self.inputs.items()})

    @property
    def produces_rows(self) -> bool:
        return self.type in ROW_TYPES

    def label(self) -> str:
        parts = [self.ids.get(k, "") for k in ("scenario", "model", "explainer", "clusterer", "metric")]
        seed = self.ids.get("seed")
        return f"{self.type} " + " ".join(str(p) for p in parts if p) + (f" seed {seed}" if seed is not None else "")

    def ancestors(self) -> Iterator[Node]:
        """Every input node, transitively (inputs first)."""
        for n in self.inputs.values():
            yield from n.ancestors()
            yield n


@dataclass
class Omitted:
    """A combination the planner left out, and why (shown where the leaderboard cell is empty)."""

    ids: dict
    reason: str


@dataclass
class Plan:
    nodes: list[Node]  # row nodes (metric, timing) in execution order
    omitted: list[Omitted] = field(default_factory=list)

    def all_nodes(self) -> list[Node]:
        """Row nodes and their inputs, each once, inputs before their dependants."""
        seen: dict[str, Node] = {}
        for node in self.nodes:
            for n in [*node.ancestors(), node]:
                seen.setdefault(n.key, n)
        order = {t: i for i, t in enumerate(RESOURCE_TYPES + ROW_TYPES)}
        return sorted(seen.values(), key=lambda n: order[n.type])  # stable: plan order within a type


SCENARIO_FILTER = "only"  # a scenario's own filter table: which models, explainers, clusterers, metrics run there


def data_settings(scenario: dict) -> dict:
    """The scenario's data settings: everything but its ``only`` filter (which plans, never generates data)."""
    return {k: v for k, v in scenario.items() if k != SCENARIO_FILTER}


def runs_in(scenario: dict, section: str, name: str) -> bool:
    """Whether the scenario's ``only = { <section> = [...] }`` lets ``name`` run there (absent: everything)."""
    allowed = scenario.get(SCENARIO_FILTER, {}).get(section)
    return allowed is None or name in allowed


def scenario_params(scenario: dict) -> dict:
    """A scenario with defaults filled in and the files its options name replaced by their digests.

    Only option tables are searched for paths: a scenario or dataset *name* that happens to match
    a file in the working directory must not pull that file into the key.
    """
    sc = {**SCENARIO_DEFAULTS, **scenario}
    return {k: keys.with_file_digests(v) if k.endswith("_options") else v for k, v in sc.items()}


def _plugin_version(registry, name: str) -> str:
    return keys.code_version(registry.get(name))


class Planner:
    """Turns a validated suite into nodes; computes every key without loading any data."""

    def __init__(self, suite: Suite, device_type: str = "cpu"):
        self.suite = suite
        self.device_type = device_type
        self._memo: dict[tuple, Node] = {}

    # -- resource nodes -------------------------------------------------------------------------
    def data(self, scenario: dict, seed: int) -> Node:
        k = ("data", scenario["name"], seed)
        if k not in self._memo:
            scenario = data_settings(scenario)
            sc = {**SCENARIO_DEFAULTS, **scenario}
            from hansbench.datasets import scenarios

            code = keys.digest([_plugin_version(datasets, sc["dataset"]), _plugin_version(artifacts, sc["artifact"]),
                                _plugin_version(poisonings, sc["poisoning"]), keys.code_version(scenarios)], 16)
            self._memo[k] = Node("data", {"scenario": scenario_params(scenario), "raw": scenario, "seed": seed}, {},
                                 code, {"scenario": scenario["name"], "seed": seed})
        return self._memo[k]

    def model(self, data: Node, kind: str) -> Node:
        k = ("model", data.key, kind)
        if k not in self._memo:
            from hansbench.models.kinds import DEFAULT_BACKBONE

            cfg = self.suite.models[kind]
            code = keys.digest([keys.package_version("hansbench.models"), _plugin_version(model_kinds, kind),
                                _plugin_version(backbones, cfg.get("backbone", DEFAULT_BACKBONE))], 16)
            self._memo[k] = Node("model", {"model_kind": kind, "config": keys.with_file_digests(cfg), "raw": cfg,
                                           "device": self.device_type},
                                 {"data": data}, code,
                                 {**data.ids, "model": kind}, gpu=True)
        return self._memo[k]

    def explainer(self, model: Node, name: str) -> Node:
        k = ("explainer", model.key, name)
        if k not in self._memo:
            self._memo[k] = Node("explainer", {"name": name, "options": keys.with_file_digests(
                self.suite.explainers[name]), "raw": self.suite.explainers[name]}, {"model": model},
                                 _plugin_version(explainers, name), {**model.ids, "explainer": name}, gpu=True)
        return self._memo[k]

    def cluster_maps(self, explainer: Node) -> Node:
        """Maps of the inspected class's training images: the clusterers' input."""
        k = ("maps", explainer.key)
        if k not in self._memo:
            self._memo[k] = Node("maps", {"split": "train", "select": "inspect-class",
                                          "explain_batch_size": self._explain_batch_size()},
                                 {"explainer": explainer}, MAPS_VERSION, dict(explainer.ids), gpu=True)
        return self._memo[k]

    def clustering_options(self, name: str, seed: int) -> dict:
        """The clusterer's options with the run's seed and its one device choice filled in."""
        cls = clusterers.get(name)
        opts = {"random_state": seed, **self.suite.clusterers[name]}
        if "device" in inspect.signature(cls.__init__).parameters:
            opts.setdefault("device", self.device_type)
        return opts

    def view_settings(self) -> dict:
        """The ``[clustering]`` settings that shape the views (the ``pixels`` switch only plans)."""
        return {k: v for k, v in self.suite.clustering.items() if k != "pixels"}

    def clustering(self, model: Node, source: str, name: str) -> Node:
        """Clustering by ``name`` of ``source``: an explainer (its maps) or a non-map input kind."""
        k = ("clustering", model.key, source, name)
        if k not in self._memo:
            seed = model.ids["seed"]
            kind = source if source in input_kind_rows() else MAPS
            cls = clusterer_inputs.get(kind)
            if cls.needs_explainer:
                inputs = {"maps": self.cluster_maps(self.explainer(model, source))}
            else:  # a kind that ignores the model is shared by every model kind of the data (same key)
                inputs = {"model": model} if cls.uses_model else {"data": model.inputs["data"]}
            params = {"clusterer": name, "options": self.clustering_options(name, seed),
                      "files": keys.with_file_digests(self.suite.clusterers[name]), "source": source,
                      "views": self.view_settings() if cls.uses_settings else {}}
            code = keys.digest([_plugin_version(clusterers, name), _plugin_version(clusterer_inputs, kind),
                                VIEWS_VERSION], 16)
            self._memo[k] = Node("clustering", params, inputs, code,
                                 {**model.ids, "explainer": source, "clusterer": name}, gpu=True)
        return self._memo[k]

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

    def _explain_batch_size(self) -> int:
        return int(self.suite.timing.get("explain_batch_size", 64))

    # -- row nodes -----------------------------------------------------------------------------------
    def metric(self, name: str, inputs: dict[str, Node], ids: dict) -> Node:
        return Node("metric", {"metric": name, "options": self.suite.metrics[name],
                               "files": keys.with_file_digests(self.suite.metrics[name])}, inputs,
                    _plugin_version(metrics, name), {**ids, "metric": name}, gpu=True)

    def timing(self, explainer: Node) -> Node:
        from hansbench.bench import timing

        return Node("timing", {"timing": dict(self.suite.timing)}, {"explainer": explainer}, keys.code_version(timing),
                    {**explainer.ids, "metric": "timing"}, gpu=True)

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
            sc = {**SCENARIO_DEFAULTS, **scenario}
            for seed in suite.seeds:
                data = self.data(scenario, seed)
                for kind in [k for k in suite.models if runs_in(scenario, "models", k)]:
                    model = self.model(data, kind)
                    exps = [e for e in self.explainers_for(kind) if runs_in(scenario, "explainers", e)]
                    pairs = [(e, c) for e, c in self.clustering_pairs(kind, exps)
                             if runs_in(scenario, "clusterers", c)]
                    row_kinds = set(input_kind_rows())
                    for mname, mopts in suite.metrics.items():
                        if not allows("metrics", mname, model=kind) or not runs_in(scenario, "metrics", mname):
                            continue
                        metric = metrics.get(mname)(**mopts)
                        combos: list[tuple[str, str]] = {
                            "model": [("", "")], "explainer": [(e, "") for e in exps], "clustering": pairs,
                        }[metric.level]
                        for e, c in combos:
                            if not allows("metrics", mname, explainer=e, clusterer=c):
                                continue
                            ids = {**model.ids, "explainer": e, "clusterer": c, "metric": mname}
                            reason = metric.not_applicable(
                                model_kind=kind, scenario=sc,
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
        return Plan(rows, omitted)
