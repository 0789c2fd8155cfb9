"""The local executor: nodes in order, in this process (inputs always before their dependants)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from hansbench.bench.engine.execute import EnvSpec, NodeEnv, NodeResult
from hansbench.bench.engine.executors import OnResult, failed_input
from hansbench.bench.engine.nodes import Node


class NodeTimeout(Exception):
    """A node ran past the suite's per-node time limit."""


@contextmanager
def time_limit(seconds: float | None, label: str):
    """Raise :class:`NodeTimeout` in this thread after ``seconds`` (SIGALRM; main thread on POSIX only)."""
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise NodeTimeout(f"{label} ran past the per-node time limit of {seconds:g} s "
                          "(raise [suite] node_timeout_s or --node-timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_limited(env: NodeEnv, node: Node, seconds: float | None) -> NodeResult:
    """``env.run(node)`` under the per-node time limit (a node past it is a failed result, never a crash)."""
    try:
        with time_limit(seconds, node.label()):
            return env.run(node)
    except NodeTimeout as exc:  # raised outside env.run's own handler when the alarm hit late
        return NodeResult(node.key, "failed", error=str(exc))


def run_local(nodes: list[Node], spec: EnvSpec, on_result: OnResult, *, log=print,
              node_timeout_s: float | None = None, env: NodeEnv | None = None) -> None:
    """Run ``nodes`` in order in this process; a node whose input failed is skipped with the reason."""
    env = env or NodeEnv(spec, log=log)
    failed: dict[str, str] = {}
    for node in nodes:
        result = failed_input(node, failed)
        if result is None:
            result = run_limited(env, node, node_timeout_s)
        if result.status == "failed":
            failed[node.key] = result.error
            env.failed[node.key] = result.error
        on_result(node, result)
