"""The driver: plan the graph, skip what is done, execute the rest, record every node.

A row node (metric, timing) whose key is ``done`` in the store is skipped; a resource node
(data, model, maps, clustering) whose output is in the cache is loaded when needed, never
recomputed. So a second run recomputes nothing, an interrupted run resumes where it
stopped, and a changed setting reruns exactly the nodes whose keys it changes. Only the
driver writes the store: each node's status, time and rows in one transaction (the process pool writes the
results that arrived together in one transaction, before it waits for more: nothing finished waits on work
still running).

Every node computes with the suite's fixed thread count (``[suite] threads``, default 1); the cores are used by
running ``jobs`` nodes side by side (default: the cores divided by the threads). A store whose finished jobs ran
on another device or thread count is refused (:class:`MixedSettings`) unless the run is told to mix them.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from hansbench.bench.engine.cache import entry_path
from hansbench.bench.engine.device import resolve_device
from hansbench.bench.engine.execute import EnvSpec, NodeEnv
from hansbench.bench.engine.executors import run_nodes
from hansbench.bench.engine.executors.ray import RAY_MISSING
from hansbench.bench.engine.keys import digest
from hansbench.bench.engine.nodes import node_types
from hansbench.bench.engine.planner import Node, Plan, Planner
from hansbench.bench.engine.store import ResultsStore
from hansbench.bench.suite.config import Suite
from hansbench.bench.suite.record import to_record
from hansbench.metrics import memo_counts


class ResultsLocked(RuntimeError):
    """Another run is writing to the same results directory."""


class MixedSettings(RuntimeError):
    """The results directory holds results of another device or thread count than this run's."""


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the platform says, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_jobs(threads: int | None) -> int:
    """Nodes side by side when the suite names none: the cores divided by each node's threads, at least 1."""
    return max(1, usable_cores() // max(1, threads or 1))


@dataclass
class RunSummary:
    """What a run did: its row nodes, how many were done, skipped and failed, and its time."""
    out: Path
    job_keys: list[str]  # every row node of the plan (the rows of this suite)
    done: int = 0
    skipped: int = 0  # already done before this run
    failed: list[tuple[dict, str]] = field(default_factory=list)
    dependency_skipped: list[tuple[dict, str]] = field(default_factory=list)
    resources: dict[str, int] = field(default_factory=dict)  # resource nodes computed, per type
    seconds: float = 0.0
    interrupted: bool = False
    run_id: int | None = None
    counts: dict[str, int] = field(default_factory=dict)  # shared-work accounting (local executor)

    def shared_work(self) -> str:
        """One line: how much work the map bank and the metric memos served again instead of recomputing."""
        c = self.counts
        asked, computed = c.get("maps asked", 0), c.get("maps computed", 0)
        parts = [f"maps: {asked:,} asked for, {computed:,} computed ({asked - computed:,} served from the map bank)"
                 ] if asked else []
        for what in ("logits", "interventions"):
            again, done = c.get(f"{what} served again", 0), c.get(f"{what} computed", 0)
            if again or done:
                parts.append(f"{what}: {done:,} computed, {again:,} served again")
        return "shared work: " + "; ".join(parts)


class DirectoryLock:
    """An exclusive lock on a results directory (``<out>/.lock``), held for the whole run."""

    def __init__(self, out: Path, wait: bool = False):
        self.path, self.wait, self.fd = out / ".lock", wait, None

    def __enter__(self) -> DirectoryLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip()
            os.close(self.fd)
            raise ResultsLocked(f"another hansbench run{f' (pid {holder})' if holder else ''} is writing to "
                                f"{self.path.parent}; wait for it, use another --out, or pass --wait") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class Runner:
    """Runs a validated suite into a results directory.

    The store is opened (and migrated) under the directory's lock, as the run is: a second runner on a
    directory another run is writing raises :class:`ResultsLocked` before it touches the store.
    """

    def __init__(self, suite: Suite, out: str | Path, *, progress: bool = True,
                 log: Callable[[str], None] | None = None, executor: str = "local", address: str | None = None,
                 wait_for_lock: bool = False, allow_mixed: bool = False):
        if executor == "ray":
            if importlib.util.find_spec("ray") is None:  # before anything is written
                raise RuntimeError(RAY_MISSING)
        self.suite = suite
        self.out = Path(out)
        self.device = resolve_device(suite.device)
        self.progress = progress
        self.executor, self.address, self.threads = executor, address, suite.threads
        self.jobs = suite.jobs or default_jobs(suite.threads)  # the local executor's (Ray places tasks itself)
        self.allow_mixed = allow_mixed
        self.node_timeout_s = suite.node_timeout_s  # the record's (``--node-timeout`` goes into load_suite)
        self.wait_for_lock = wait_for_lock
        self._log = log or (lambda msg: tqdm.write(msg))
        self.out.mkdir(parents=True, exist_ok=True)
        with DirectoryLock(self.out, wait_for_lock):  # a run in progress keeps its store: not migrated under it
            self.store = ResultsStore(self.out / "results.sqlite")
        self._env = None
        self.last_plan: Plan | None = None

    def log(self, msg: str) -> None:
        """Log one line, prefixed ``[hansbench]``."""
        self._log(f"[hansbench] {msg}")

    @property
    def env(self):
        """The in-process node environment (also used by figures to reach cached models and maps)."""
        if self._env is None:
            self._env = NodeEnv(self.env_spec(), log=self.log)
        return self._env

    @property
    def ws(self):
        """The run's cache (:class:`hansbench.bench.engine.workspace.Workspace`)."""
        return self.env.ws

    def env_spec(self):
        """What a worker needs to rebuild this run's node environment."""
        return EnvSpec(out=str(self.out), device=str(self.device), progress=self.progress, threads=self.threads)

    def plan(self) -> Plan:
        """Plan the suite's graph (kept as ``last_plan``)."""
        self.last_plan = Planner(self.suite, self.device.type).plan()
        return self.last_plan

    def pending(self, plan: Plan) -> list[Node]:
        """Row nodes not done and figure-input nodes not cached, preceded by the cached-output nodes they need
        that are not in the cache."""
        done = self.store.done_keys()
        rows = [n for n in plan.nodes if n.key not in done]
        missing = lambda a: not entry_path(self.out / "cache", a.type, a.key).is_file()  # noqa: E731
        figures = [n for n in plan.figures if missing(n)]  # what the figures draw, computed in the run
        needed: dict[str, Node] = {}
        for node in rows + figures:  # checked on disk, without building a node environment (a warm rerun loads nothing)
            for a in node.ancestors():
                if node_types.get(a.type).cached and missing(a):
                    needed.setdefault(a.key, a)
        return sorted(needed.values(), key=lambda n: node_types.order(n.type)) + rows + figures

    def run(self) -> RunSummary:
        """Run the suite under the results directory's lock; returns the summary."""
        with DirectoryLock(self.out, self.wait_for_lock):
            return self._run()

    def _counts(self) -> dict[str, int]:
        """This process's shared-work counters so far (a run reports its own as the difference)."""
        return {**(self._env.counts if self._env is not None else {}), **memo_counts()}

    def _run(self) -> RunSummary:
        t0 = time.perf_counter()
        counts0 = self._counts()
        stale = self.store.mark_stale_runs()
        if stale:
            self.log(f"{stale} earlier run(s) had ended without finishing (crash or kill): marked 'crashed'")
        plan = self.plan()
        todo = self.pending(plan)
        keys = [n.key for n in plan.nodes]
        summary = RunSummary(self.out, keys)
        summary.skipped = len(plan.nodes) - sum(n.produces_rows for n in todo)
        self._refuse_mixed()
        run_id = self.store.start_run(self.suite.name, to_record(self.suite), str(self.device), threads=self.threads,
                                      jobs=self.jobs if self.executor == "local" else None, executor=self.executor)
        summary.run_id = run_id
        with self.store.batch():  # the planner's facts, written together (one commit, not one per combination)
            for om in plan.omitted:
                self.store.record_not_applicable(omitted_key(om.ids), run_id, {"node_type": "metric", **om.ids},
                                                 om.reason)
        status = "interrupted"
        bar = tqdm(total=len(todo), desc="nodes", disable=not self.progress, unit="node")

        def on_result(node: Node, result) -> None:
            ids = {"node_type": node.type, **node.ids}
            with self.store.batch():  # the node and the sub-nodes it computed: one commit
                if result.records:
                    self.store.record_nodes(run_id, result.records)
                    for r in result.records:
                        summary.resources[r["type"]] = summary.resources.get(r["type"], 0) + 1
                self.store.record_job(node.key, run_id, ids, result.rows, seconds=result.seconds,
                                      error=(result.traceback or result.error) or None, status=result.status)
            if result.status == "done":
                if node.produces_rows:
                    summary.done += 1
                else:
                    summary.resources[node.type] = summary.resources.get(node.type, 0) + 1
            elif result.status == "failed":
                summary.failed.append((node.ids | {"node": node.type}, result.error))
                self.log(f"FAILED {node.label()}: {result.error}")
            else:
                summary.dependency_skipped.append((node.ids | {"node": node.type}, result.error))
            bar.set_postfix_str(node.label()[:60])
            bar.update()

        try:
            if todo:
                run_nodes(self.executor, todo, self.env_spec(), on_result, log=self.log, address=self.address,
                          node_timeout_s=self.node_timeout_s, env=self.env if self.executor == "local" else None,
                          jobs=self.jobs, batch=self.store.batch)
            status = "done" if not (summary.failed or summary.dependency_skipped) else "failed"
        except KeyboardInterrupt:
            summary.interrupted = True
            with ignoring_interrupts():
                self.log("interrupted: finished nodes are saved; run the same command again to resume")
        finally:
            with ignoring_interrupts():  # a second Ctrl-C must not cut the status write
                bar.close()
                self.store.finish_run(run_id, status)
            summary.seconds = time.perf_counter() - t0
            if self.executor == "local" and self.jobs == 1:  # (worker processes keep their own)
                summary.counts = {k: v - counts0.get(k, 0) for k, v in self._counts().items()}
        return summary


    def _refuse_mixed(self) -> None:
        """Raise :class:`MixedSettings` when the store's finished jobs ran on another device or thread count
        (their rows would sit beside this run's in one table, and their cached models would be reused)."""
        other = None if self.allow_mixed else self.store.mixed_with(str(self.device), self.threads)
        if other:
            from hansbench.bench.engine.provenance import accelerator, cpu_model, setting

            here = setting(str(self.device), accelerator(str(self.device)), self.threads, cpu_model())
            raise MixedSettings(f"{self.out} holds results computed on {other}, this run is {here}: use another "
                                "--out, or pass --allow-mixed to add this run's rows to them")


@contextmanager
def ignoring_interrupts():
    """Ctrl-C is ignored inside (main thread only): for the few writes that finish an interrupted run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def omitted_key(ids: dict) -> str:
    """The job key of a combination the planner left out: ``n/a-`` + a digest of its ids, ``family`` digested
    under its former name ``metric`` so the keys of entries stored before the rename stay the same."""
    return "n/a-" + digest({("metric" if k == "family" else k): v for k, v in ids.items()}, 20)
