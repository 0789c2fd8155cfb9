"""Node types, one module each: what a node of that type is, plans, computes and caches.

Importing the package registers the built-in types in :data:`node_types`; a plugin's node
type registers the same way (``@node_types.register("name")`` on a :class:`NodeType`).
"""

from hansbench.bench.engine.nodes import (  # noqa: F401  (importing registers them)
    clustering,
    data,
    explainer,
    figure_inputs,
    flagging,
    maps,
    metric,
    model,
    timing,
)
from hansbench.bench.engine.nodes.base import Node, NodeType, node_types

__all__ = ["Node", "NodeType", "node_types"]
