"""The Ray executor: ready nodes as Ray tasks, in dependency order (``pip install hansbench[ray]``).

The driver plans, submits a node once all its pending inputs have finished, and writes
every result to the store; workers only compute and write the cache, which lives in the
results directory (on a cluster: a filesystem every node mounts at the same path). A node
asks for one GPU when the run's device is CUDA and its type uses the accelerator, and as many CPUs as the
run's threads (each worker's :class:`NodeEnv` applies that thread count before a node computes); a type that
``runs_on_driver`` (data) is computed in the driver process, into the cache the workers read.
"""

from __future__ import annotations

from hansbench.bench.engine.execute import EnvSpec, NodeEnv, NodeResult
from hansbench.bench.engine.executors import OnResult, failed_input
from hansbench.bench.engine.executors.local import run_limited
from hansbench.bench.engine.nodes import Node, node_types

_ENVS: dict[str, NodeEnv] = {}  # one environment per worker process and spec


def _run_in_worker(node: Node, spec: EnvSpec, node_timeout_s: float | None) -> NodeResult:
    key = repr(spec)
    if key not in _ENVS:
        _ENVS[key] = NodeEnv(spec)
    return run_limited(_ENVS[key], node, node_timeout_s)


RAY_MISSING = ("--executor ray needs Ray, which the plain install leaves out: "
               "pip install 'hansbench[ray]' (or use --executor local)")


def run_ray(nodes: list[Node], spec: EnvSpec, on_result: OnResult, *, log=print, address: str | None = None,
            node_timeout_s: float | None = None) -> None:
    """Run ``nodes`` as Ray tasks in dependency order; only the driver calls ``on_result``."""
    try:
        import ray  # lazy: an optional extra (hansbench[ray]), needed only when this executor runs
    except ImportError:
        raise RuntimeError(RAY_MISSING) from None
    started = False
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, include_dashboard=False) if address else \
            ray.init(log_to_driver=False, include_dashboard=False)
        started = True
    try:
        remote = ray.remote(_run_in_worker)
        gpu = spec.device.startswith("cuda")
        pending = {n.key: n for n in nodes}
        deps = {n.key: {a.key for a in n.ancestors() if a.key in pending} for n in nodes}
        failed: dict[str, str] = {}
        finished: set[str] = set()
        running: dict = {}
        envs: list[NodeEnv] = []

        def driver_env() -> NodeEnv:
            if not envs:
                envs.append(NodeEnv(spec, log=log))
            return envs[0]

        def finish(node: Node, result: NodeResult) -> None:
            if result.status == "failed":
                failed[node.key] = result.error
            finished.add(node.key)
            on_result(node, result)

        def submit_ready() -> None:
            """Submit every ready node; those finished here (skipped, run on the driver) may ready others."""
            progressed = True
            while progressed:
                progressed = False
                for key in [k for k in pending if not deps[k] - finished]:
                    node = pending.pop(key)
                    skipped = failed_input(node, failed)
                    kind = node_types.get(node.type)
                    if skipped is not None or kind.runs_on_driver:  # runs_on_driver: into the cache workers read
                        finish(node, skipped or run_limited(driver_env(), node, node_timeout_s))
                        progressed = True
                        continue
                    opts = {"num_cpus": spec.threads or 1, "num_gpus": 1 if gpu and kind.gpu else 0}
                    running[remote.options(**opts).remote(node, spec, node_timeout_s)] = node

        submit_ready()
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                node = running.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # the worker died (out of memory, lost node)
                    result = NodeResult(node.key, "failed", error=f"Ray task failed: {type(exc).__name__}: {exc}")
                finish(node, result)
            submit_ready()
    finally:
        if started:
            ray.shutdown()
