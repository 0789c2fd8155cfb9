"""Executors run a plan's pending nodes in dependency order and hand each result to the driver.

``local`` (default) runs them in this process, one at a time (``jobs`` 1), or side by side in ``jobs`` worker
processes (:mod:`.pool`); every node computes with the run's fixed thread count either way. ``ray``
submits ready nodes as Ray tasks (GPU nodes request a GPU when the run's device is CUDA);
workers write the shared cache, only the driver writes the results store. Both call
``on_result(node, result)`` once per node, in the driver process.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from hansbench.bench.engine.execute import EnvSpec, NodeResult
from hansbench.bench.engine.nodes import Node, node_types

OnResult = Callable[[Node, NodeResult], None]

EXECUTORS = ("local", "ray")


def failed_input(node: Node, failed: dict[str, str]) -> NodeResult | None:
    """A ``skipped`` result when one of the inputs the node's type requires failed in this run."""
    for inp in node_types.get(node.type).required(node):
        if inp.key in failed:
            return NodeResult(node.key, "skipped", error=f"input {inp.label()} failed: {failed[inp.key]}")
    return None


def run_nodes(executor: str, nodes: list[Node], spec: EnvSpec, on_result: OnResult, *, log=print,
              address: str | None = None, node_timeout_s: float | None = None, env=None, jobs: int = 1,
              batch: Callable[[], AbstractContextManager] = nullcontext) -> None:
    """Run ``nodes`` with the named executor (``local`` or ``ray``), calling ``on_result`` per node; ``jobs``:
    the local executor's worker processes (1: in this process, sharing its memo and map banks). ``batch``: a
    context the process pool wraps around the ``on_result`` calls of the results that arrived together (the
    store's one transaction for them), left before it waits for more."""
    if executor == "local" and jobs > 1:  # lazy: the executors import this module (OnResult, failed_input)
        from hansbench.bench.engine.executors.pool import run_pool

        run_pool(nodes, spec, on_result, jobs=jobs, log=log, node_timeout_s=node_timeout_s, env=env, batch=batch)
    elif executor == "local":
        from hansbench.bench.engine.executors.local import run_local

        run_local(nodes, spec, on_result, log=log, node_timeout_s=node_timeout_s, env=env)
    elif executor == "ray":
        from hansbench.bench.engine.executors.ray import run_ray

        run_ray(nodes, spec, on_result, log=log, address=address, node_timeout_s=node_timeout_s)
    else:
        raise ValueError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
