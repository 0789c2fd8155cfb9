"""The process-pool executor: ready nodes side by side in ``jobs`` worker processes, in dependency order.

The cores are used by running nodes at once, each with the run's fixed thread count, never by giving one
node more threads: so a run's rows are the same on 2 cores and on 64 (``--jobs 1`` and ``--jobs 8`` agree
exactly). As under Ray, the driver submits a node once its pending inputs have finished and is the only
writer of the results store; workers compute and write the cache (atomic entries, so two workers that need
the same on-demand input at once both compute it, and the later write wins with the same bytes). A type
that ``runs_on_driver`` (data) is computed in the driver, into the cache the workers read.

How workers start depends on the thread count. At 1 thread (the default) on Linux they are forked from the
driver: they start at once and know every plugin and node type the driver registered, even at run time. At
more threads a forked worker would hang in its first parallel region (GNU OpenMP is not fork-safe once the
driver used it: measured), so they come from a fork server that imported the engine once; there, node types
and plugins must register on import (built-ins, or a plugin's entry point).
"""

from __future__ import annotations

import heapq
import multiprocessing
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager, nullcontext

from hansbench.bench.engine.execute import EnvSpec, NodeEnv, NodeResult
from hansbench.bench.engine.executors import OnResult, failed_input
from hansbench.bench.engine.executors.local import run_limited
from hansbench.bench.engine.nodes import Node, node_types

_PRELOAD = ["hansbench.bench.engine.executors.pool"]  # imported once by the fork server, not per worker
_WORKER: dict[str, NodeEnv] = {}  # the worker process's one node environment
_LOGS: list[str] = []  # the worker's log lines since its last result


def _init_worker(spec: EnvSpec) -> None:
    """In each worker, once: plugins registered, the run's thread count applied (by the env), the env built."""
    from hansbench.registry import load_all

    load_all()
    _LOGS.clear()
    _WORKER["env"] = NodeEnv(spec, log=_LOGS.append)


def _run_in_worker(node: Node, node_timeout_s: float | None) -> NodeResult:
    """Run one node in this worker; what it logged travels back with its result, for the driver to print."""
    result = run_limited(_WORKER["env"], node, node_timeout_s)
    result.logs = list(_LOGS)
    _LOGS.clear()
    return result


def _context(threads: int | None):
    """Fork at one thread on Linux (safe: no OpenMP team is ever started), else a fork server."""
    if threads == 1 and sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _result(future: Future, node: Node) -> NodeResult:
    """A finished future's result, or a failed one when the worker died or the result could not travel back."""
    try:
        return future.result()
    except BrokenProcessPool as exc:  # a worker died (out of memory, killed): the pool is gone
        return NodeResult(node.key, "failed", error=f"worker process died: {exc}")
    except Exception as exc:  # the result could not travel back (unpicklable)
        return NodeResult(node.key, "failed", error=f"worker error: {type(exc).__name__}: {exc}")


class _Ready:
    """Which pending nodes have every input finished, kept as counts (a finished node readies its dependants) rather
    than found by scanning every pending node after each result: a quick plan has thousands of nodes. Ready nodes
    come out in plan order."""

    def __init__(self, nodes: list[Node]):
        self.nodes = {n.key: n for n in nodes}
        self.index = {n.key: i for i, n in enumerate(nodes)}
        self.waiting: dict[str, int] = {}
        self.dependants: dict[str, list[str]] = {}
        for n in nodes:
            deps = {a.key for a in n.ancestors() if a.key in self.nodes}
            self.waiting[n.key] = len(deps)
            for d in deps:
                self.dependants.setdefault(d, []).append(n.key)
        self.heap = [(self.index[k], k) for k, w in self.waiting.items() if w == 0]
        heapq.heapify(self.heap)

    def finished(self, key: str) -> None:
        for k in self.dependants.pop(key, ()):
            self.waiting[k] -= 1
            if self.waiting[k] == 0:
                heapq.heappush(self.heap, (self.index[k], k))

    def pop(self) -> Node | None:
        return self.nodes.pop(heapq.heappop(self.heap)[1]) if self.heap else None


def run_pool(nodes: list[Node], spec: EnvSpec, on_result: OnResult, *, jobs: int, log=print,
             node_timeout_s: float | None = None, env: NodeEnv | None = None,
             batch: Callable[[], AbstractContextManager] = nullcontext) -> None:
    """Run ``nodes`` in ``jobs`` worker processes in dependency order; only the driver calls ``on_result``.
    ``env``: the driver's node environment, for the types that run on the driver (built when needed). ``batch``:
    entered around the results that arrived together (no node computes inside it) and left before the driver
    submits or waits again, so nothing finished waits on work still running."""
    ready = _Ready(nodes)
    failed: dict[str, str] = {}
    running: dict[Future, Node] = {}
    driver = [env] if env is not None else []

    def finish(node: Node, result: NodeResult) -> None:
        for line in result.logs:
            log(line)
        if result.status == "failed":
            failed[node.key] = result.error
            if driver:
                driver[0].failed[node.key] = result.error
        ready.finished(node.key)
        on_result(node, result)

    def submit_ready(pool: ProcessPoolExecutor) -> None:
        """Submit ready nodes in plan order until ``8 * jobs`` are in flight (enough that no worker idles while the
        driver writes; fewer futures to wait on, and a node readied later may go first if the plan says so); those
        finished here (skipped, run on the driver) ready others."""
        while len(running) < 8 * jobs and (node := ready.pop()) is not None:
            skipped = failed_input(node, failed)
            if skipped is not None or node_types.get(node.type).runs_on_driver:
                if skipped is None and not driver:
                    driver.append(NodeEnv(spec, log=log))
                finish(node, skipped or run_limited(driver[0], node, node_timeout_s))
                continue
            try:
                running[pool.submit(_run_in_worker, node, node_timeout_s)] = node
            except BrokenProcessPool as exc:  # a worker died earlier: nothing more runs in this pool
                finish(node, NodeResult(node.key, "failed", error=f"worker process died: {exc}"))

    with ProcessPoolExecutor(max_workers=jobs, mp_context=_context(spec.threads), initializer=_init_worker,
                             initargs=(spec,)) as pool:
        try:
            submit_ready(pool)
            while running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                with batch():  # one transaction for the results that arrived together: nothing computes inside
                    for future in done:
                        node = running.pop(future)
                        finish(node, _result(future, node))
                submit_ready(pool)  # (a node the driver runs is written on its own, before the next wait)
        except BaseException:  # Ctrl-C: no new node starts; the workers' own SIGINT stops the ones in flight
            pool.shutdown(wait=False, cancel_futures=True)
            raise
