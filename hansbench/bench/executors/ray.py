"""The Ray executor: ready nodes as Ray tasks, in dependency order (``pip install hansbench[ray]``).

The driver plans, submits a node once all its pending inputs have finished, and writes
every result to the store; workers only compute and write the cache, which lives in the
results directory (on a cluster: a filesystem every node mounts at the same path). A node
asks for one GPU when the run's device is CUDA and the node uses the model.
"""

from __future__ import annotations

from hansbench.bench.execute import EnvSpec, NodeEnv, NodeResult
from hansbench.bench.executors import OnResult, failed_input
from hansbench.bench.graph import Node

_ENVS: dict[str, NodeEnv] = {}  # one environment per worker process and spec


def _run_in_worker(node: Node, spec: EnvSpec, node_timeout_s: float | None) -> NodeResult:
    from hansbench.bench.executors.local import run_limited

    key = repr(spec)
    if key not in _ENVS:
        _ENVS[key] = NodeEnv(spec)
    return run_limited(_ENVS[key], node, node_timeout_s)


RAY_MISSING = ("--executor ray needs Ray, which the plain install leaves out: "
               "pip install 'hansbench[ray]' (or use --executor local)")


def run_ray(nodes: list[Node], spec: EnvSpec, on_result: OnResult, *, log=print, address: str | None = None,
            node_timeout_s: float | None = None) -> None:
    try:
        import ray
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

        def submit_ready() -> None:
            for key in list(pending):
                node = pending[key]
                if deps[key] - finished:
                    continue
                del pending[key]
                skipped = failed_input(node, failed)
                if skipped is not None:
                    finished.add(key)
                    on_result(node, skipped)
                    continue
                opts = {"num_cpus": 1, "num_gpus": 1 if gpu and node.gpu and node.type != "data" else 0}
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
                if result.status == "failed":
                    failed[node.key] = result.error
                finished.add(node.key)
                on_result(node, result)
            submit_ready()
    finally:
        if started:
            ray.shutdown()
