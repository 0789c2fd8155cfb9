"""The node-type base class, its registry, and the graph's :class:`Node`.

A node type is one class in one module: its facts (``cached``, ``gpu``, ``produces_rows``,
``runs_on_driver``, ``order``), how the planner builds its nodes (their parameters and ids),
its code version (a digest of its own module plus the plugins it runs, so editing the type
reruns what it computed without a constant to bump), what it computes and how its output
is cached. The executors and the node environment only ever ask the registry.

Parameters follow one convention: ``options`` is what a plugin (explainer, clusterer, metric) is
built with, ``files`` the suite's options with the files they name replaced by their digests (so a
file's content enters the key); the data and model nodes hold their settings as written in ``raw``
(what they compute from) next to the digested ``scenario`` / ``config``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hansbench.bench.engine import keys
from hansbench.registry import Registry

if TYPE_CHECKING:
    from hansbench.bench.engine.execute import NodeEnv
    from hansbench.bench.engine.planner import Planner


@dataclass(eq=False)
class Node:
    """One unit of work: ``type``, its ``params``, its ``inputs`` (role -> Node), and its key."""

    type: str
    params: dict
    inputs: dict[str, Node]
    code: str
    ids: dict  # scenario, seed, model, explainer, clusterer, rule, family (the metric): for the store and messages only
    key: str = ""

    def __post_init__(self) -> None:
        self.key = keys.node_key(self.type, self.params, self.code, {r: n.key for r, n in self.inputs.items()})

    @property
    def produces_rows(self) -> bool:
        """A row node (metric, timing): its type's fact."""
        return node_types.get(self.type).produces_rows

    @property
    def gpu(self) -> bool:
        """Needs the accelerator when the run's device is one."""
        return node_types.get(self.type).gpu

    @property
    def seed(self) -> int:
        """The seed the node computes with: its data node's parameter, reached through its inputs (``ids`` only
        name the node for the store and messages; nothing computes from them)."""
        if "seed" in self.params and self.type == "data":
            return int(self.params["seed"])
        for n in self.inputs.values():
            try:
                return n.seed
            except LookupError:
                continue
        raise LookupError(f"{self.type} node has no data node among its inputs: no seed")

    def label(self) -> str:
        parts = [self.ids.get(k, "") for k in ("scenario", "model", "explainer", "clusterer", "rule", "family")]
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
class ModelPlan:
    """What the planner hands each row type for one scenario x seed x model kind: the scenario, the model node,
    the explainers that apply to it and the (source, clusterer) pairs that run there."""

    scenario: Any  # hansbench.datasets.scenarios.Scenario
    kind: str
    model: Node
    explainers: list[str]
    pairs: list[tuple[str, str]]


class NodeType:
    """One kind of graph node. Subclass, declare the facts, register with ``@node_types.register("name")``.

    ``compute(node, env)`` returns ``(value, state)`` -- the output and what goes to the cache
    (``None`` for a type that is not cached) -- or, for a row type, the rows. A cached type
    loads its entry back with ``from_state(node, state, env)``; registration refuses a cached
    type without one (else it would fail only on a warm rerun).
    """

    type: ClassVar[str] = ""  # the registered name (set by the registry)
    cached: ClassVar[bool] = False  # output saved in <out>/cache/<type>/<key>.pt; a node there is not rerun
    gpu: ClassVar[bool] = False  # uses the accelerator when the run's device is one
    produces_rows: ClassVar[bool] = False  # a row node: compute returns rows for the results store
    runs_on_driver: ClassVar[bool] = False  # Ray: computed in the driver process, not sent to a worker
    order: ClassVar[int] = 0  # execution order of types: larger than the order of every type it takes as input

    @classmethod
    def code_version(cls, *plugin_versions: str) -> str:
        """Digest of this type's module source plus the versions of the plugins its nodes run."""
        return keys.digest([keys.code_version(cls), *plugin_versions], 16)

    @classmethod
    def node(cls, params: dict, inputs: dict[str, Node], code: str, ids: dict) -> Node:
        """A node of this type (its key computed from all four)."""
        return Node(cls.type, params, inputs, code, ids)

    @classmethod
    def plan_for_model(cls, planner: Planner, at: ModelPlan) -> tuple[list[Node], list[Omitted]]:
        """A row type's nodes for one scenario x seed x model kind, and the combinations it leaves out (why).
        The planner calls it for every registered type, in ``order``: a new row type plans itself here and
        no other module changes. Resource types are planned on demand by their dependants (default: none)."""
        return [], []

    @classmethod
    def plan_after(cls, planner: Planner, rows: list[Node]) -> list[Node]:
        """Nodes planned from the whole set of row nodes (what the figures draw), when the suite draws figures
        (default: none)."""
        return []

    @classmethod
    def required(cls, node: Node) -> Iterator[Node]:
        """The inputs whose failure skips the node (default: every one, transitively); a type whose compute
        copes with a missing input (the figure inputs) names fewer."""
        yield from node.ancestors()

    @classmethod
    def compute(cls, node: Node, env: NodeEnv) -> Any:
        raise NotImplementedError

    @classmethod
    def from_state(cls, node: Node, state: Any, env: NodeEnv) -> Any:
        """The output from its cache entry (cached types only)."""
        raise NotImplementedError


def _overrides(cls: type, name: str) -> bool:
    return getattr(cls, name).__func__ is not getattr(NodeType, name).__func__


def check_node_type(name: str, cls: Any) -> None:
    """Raise ``TypeError`` naming the problem unless ``cls`` is a complete node type."""
    if not (isinstance(cls, type) and issubclass(cls, NodeType)):
        raise TypeError(f"node type {name!r} must be a subclass of hansbench.bench.engine.nodes.NodeType, got {cls!r}")
    if not _overrides(cls, "compute"):
        raise TypeError(f"node type {name!r} defines no compute(node, env): define it")
    if cls.cached and cls.produces_rows:
        raise TypeError(f"node type {name!r} is both cached and produces_rows: rows go to the results store, "
                        "outputs to the cache; set one of them to False")
    if cls.cached and not _overrides(cls, "from_state"):
        raise TypeError(f"node type {name!r} is cached but defines no from_state(node, state, env): a warm rerun "
                        "could not load its cache entry; define from_state or set cached = False")


class NodeTypes(Registry):
    """The registry of node types; a type is checked when it registers, not when a rerun first needs it."""

    def register(self, name: str, obj: Any = None, *, replace: bool = False) -> Callable:
        def add(target: Any) -> Any:
            check_node_type(name, target)
            Registry.register(self, name, target, replace=replace)
            target.type = name
            return target

        return add(obj) if obj is not None else add

    def order(self, node_type: str) -> int:
        """Where nodes of ``node_type`` come in a plan's execution order."""
        return self.get(node_type).order


node_types = NodeTypes("node type")
