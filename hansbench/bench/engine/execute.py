"""Running one node: the memo, the cache and time accounting around its type's ``compute``.

:class:`NodeEnv` is all a process needs to run any node of a plan (the driver's for the
local executor, each worker's for Ray): the results directory's cache, the device, and a
small in-memory memo. ``output(node)`` serves a node's output from the memo, else the
cache (through its type's ``from_state``), else computes it (an unreadable cache entry is
recomputed: the cache heals). Work done on demand inside a node (maps a metric asks for, an
explainer's setup, a retrained model) is recorded as its own sub-node with its own time
(:meth:`NodeEnv.sub_node`), so every node's seconds are its own. What each type computes is
in its module under :mod:`hansbench.bench.engine.nodes`.

Every node computes with the run's fixed thread count (:func:`apply_threads`, ``[suite] threads``, default 1),
whichever process runs it: a matrix product split over another number of threads sums in another order, and
after a few hundred optimiser steps that is another model. The cores are used by running nodes side by side
(:mod:`hansbench.bench.engine.executors.pool`), never by giving one node more threads than the run says.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import threadpoolctl
import torch

from hansbench.bench.engine.nodes import Node, node_types
from hansbench.bench.engine.workspace import Workspace


@dataclass
class EnvSpec:
    """What a process needs to run nodes (picklable, sent to Ray workers)."""

    out: str
    device: str = "cpu"
    progress: bool = False
    threads: int | None = 1  # torch intra-op threads, and BLAS/OpenMP threads, of every node (None: the libraries' own)


def apply_threads(threads: int | None) -> None:
    """Give torch, and the BLAS and OpenMP pools NumPy, SciPy and scikit-learn call, ``threads`` threads
    (None: leave them as they are). Every executor calls it (through :class:`NodeEnv`) before a node computes."""
    if threads:
        torch.set_num_threads(int(threads))
        threadpoolctl.threadpool_limits(int(threads))


@dataclass
class NodeResult:
    key: str
    status: str  # done | failed | skipped
    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""  # one line
    traceback: str = ""
    records: list[dict] = field(default_factory=list)  # sub-nodes computed on demand: key, type, ids, seconds
    logs: list[str] = field(default_factory=list)  # what a worker process logged while computing it (for the driver)


class DependencyFailed(RuntimeError):
    """An input node failed earlier in this run."""


class _Memo(OrderedDict):
    """A small LRU of loaded outputs (data, models, explainers, clusterings) by node key."""

    def __init__(self, size: int = 32):
        super().__init__()
        self.size = size

    def put(self, key: str, value: Any) -> Any:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
        return value


class NodeEnv:
    """Memo, cache and time accounting around each node type's ``compute`` (one per process)."""

    def __init__(self, spec: EnvSpec, log: Callable[[str], None] | None = None):
        self.spec = spec
        self.device = torch.device(spec.device)
        apply_threads(spec.threads)
        self.log = log or (lambda msg: None)
        self.ws = Workspace(Path(spec.out) / "cache", self.device, log=self.log)
        self.memo = _Memo()
        self.failed: dict[str, str] = {}
        self._records: list[dict] = []
        self.counts: Counter[str] = Counter()  # shared-work accounting (maps asked / computed), per process

    # -- running one node ---------------------------------------------------------------------------
    def run(self, node: Node) -> NodeResult:
        """Compute ``node`` (its inputs loaded or rebuilt as needed); never raises except Ctrl-C."""
        self._records = []
        if self.spec.threads and torch.get_num_threads() != self.spec.threads:  # another env of this process set its own
            apply_threads(self.spec.threads)
        t0 = time.perf_counter()
        try:
            kind = node_types.get(node.type)
            if kind.produces_rows:
                rows = kind.compute(node, self)
            else:
                self.output(node, top=True)
                rows = []
            status, err, tb = "done", "", ""
        except KeyboardInterrupt:
            raise
        except DependencyFailed as exc:
            rows, status, err, tb = [], "skipped", str(exc), ""
        except Exception as exc:
            rows, status = [], "failed"
            err = f"{type(exc).__name__}: {exc}".splitlines()[0]
            tb = "".join(traceback.format_exception(exc))
            self.failed[node.key] = err
        total = time.perf_counter() - t0
        own = max(total - sum(r["seconds"] for r in self._records), 0.0)
        return NodeResult(node.key, status, rows, own, err, tb, list(self._records))

    @contextmanager
    def sub_node(self, node: Node) -> Iterator[None]:
        """Time the block as the sub-node ``node`` (work done on demand inside another node): its seconds
        less those of sub-nodes recorded inside it, so every node's time is its own. Nothing is
        recorded when the block raises."""
        t0 = time.perf_counter()
        n_before = len(self._records)
        yield
        inner = sum(r["seconds"] for r in self._records[n_before:])
        self._records.append({"key": node.key, "type": node.type, "ids": node.ids,
                              "seconds": max(time.perf_counter() - t0 - inner, 0.0)})

    def output(self, node: Node, *, top: bool = False) -> Any:
        """The node's output: memo, else cache, else computed (and recorded as a sub-node unless ``top``)."""
        if node.key in self.failed:
            raise DependencyFailed(f"input {node.label()} failed: {self.failed[node.key]}")
        if node.key in self.memo:
            self.memo.move_to_end(node.key)
            return self.memo[node.key]
        kind = node_types.get(node.type)
        if kind.cached:
            state = self.ws.load(node.type, node.key)
            if state is not None:
                return self.memo.put(node.key, kind.from_state(node, state, self))
        try:
            with nullcontext() if top else self.sub_node(node):
                value, state = kind.compute(node, self)
                if kind.cached:
                    self.ws.save(node.type, node.key, state)
        except DependencyFailed:
            raise
        except Exception as exc:
            if not top:  # an input computed on demand failed: its dependant is skipped because of it
                self.failed[node.key] = f"{type(exc).__name__}: {exc}".splitlines()[0]
                raise DependencyFailed(f"input {node.label()} failed: {self.failed[node.key]}") from exc
            raise
        return self.memo.put(node.key, value)

    def cached_output(self, node: Node) -> Any | None:
        """The node's output from the memo or the cache, or None: never computed (for publishing, which reads)."""
        if node.key in self.memo:
            return self.memo[node.key]
        kind = node_types.get(node.type)
        state = self.ws.load(node.type, node.key) if kind.cached else None
        return None if state is None else self.memo.put(node.key, kind.from_state(node, state, self))
