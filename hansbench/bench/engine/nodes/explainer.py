"""The explainer node: an explainer built from its options and set up on the trained model (not cached).

Set-up sees the scenario data *without* the ground truth: a method never learns which
training images were poisoned. Its cost (CRP's concept search, ClaDec's decoder) is the
node's own time, not billed to the maps or metrics that use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from hansbench.bench.engine import keys
from hansbench.bench.engine.nodes.base import Node, NodeType, node_types
from hansbench.registry import explainers

if TYPE_CHECKING:
    from hansbench.bench.engine.execute import NodeEnv
    from hansbench.bench.engine.planner import Planner


def set_up(env: NodeEnv, node: Node, model: torch.nn.Module) -> Any:
    """The node's explainer, built from its options and set up on ``model`` (blind to the ground truth)."""
    data = env.output(node.inputs["model"].inputs["data"])
    obj = explainers.get(node.params["name"])(**node.params["options"])
    obj.setup(model, data.without_ground_truth(), env.ws)  # a method never sees the poisoned flags
    return obj


@node_types.register("explainer")
class ExplainerNode(NodeType):
    """An explainer set up on its model: held in memory by the process that uses it."""

    gpu = True
    order = 2

    @classmethod
    def plan(cls, planner: Planner, model: Node, name: str) -> Node:
        def make() -> Node:
            options = planner.suite.explainers[name].options
            return cls.node({"name": name, "options": options, "files": keys.with_file_digests(options)},
                            {"model": model}, cls.code_version(keys.code_version(explainers.get(name))),
                            {**model.ids, "explainer": name})

        return planner.once(("explainer", model.key, name), make)

    @classmethod
    def compute(cls, node: Node, env: NodeEnv) -> tuple[Any, None]:
        return set_up(env, node, env.output(node.inputs["model"])), None
