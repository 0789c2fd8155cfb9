"""The timing node: an explainer's cost on one batch of clean test images (rows, not cached).

Three values per explainer: milliseconds per image, the time in gradient units (one
forward plus one backward to the input, :func:`hansbench.bench.engine.kernel_timer.gradient_pass`) and
the peak memory above the level before the timed calls. The timer itself is
:mod:`hansbench.bench.engine.kernel_timer`, whose code enters this type's version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hansbench.bench.engine import kernel_timer as timer
from hansbench.bench.engine import keys
from hansbench.bench.engine.nodes.base import ModelPlan, Node, NodeType, node_types
from hansbench.bench.engine.nodes.explainer import ExplainerNode

if TYPE_CHECKING:
    from hansbench.bench.engine.execute import NodeEnv
    from hansbench.bench.engine.planner import Planner

TIMING_VALUES = {  # metric -> (unit, higher is better)
    "ms-per-image": ("ms", False),
    "gradient-units": ("x fwd+bwd", False),
    "peak-memory-mb": ("MB", False),
}


@node_types.register("timing")
class TimingNode(NodeType):
    """The ``[timing]`` settings' measurement of one explainer node."""

    gpu = True
    produces_rows = True
    order = 7

    @classmethod
    def plan_for_model(cls, planner: Planner, at: ModelPlan) -> tuple[list[Node], list]:
        """One timing node per explainer of the model."""
        return [cls.plan(planner, ExplainerNode.plan(planner, at.model, e)) for e in at.explainers], []

    @classmethod
    def plan(cls, planner: Planner, explainer: Node) -> Node:
        return cls.node({"timing": dict(planner.suite.timing)}, {"explainer": explainer},
                        cls.code_version(keys.code_version(timer)), {**explainer.ids, "family": "timing"})

    @classmethod
    def compute(cls, node: Node, env: NodeEnv) -> list[dict]:
        exp_node = node.inputs["explainer"]
        model_node = exp_node.inputs["model"]
        data, model, exp = env.output(model_node.inputs["data"]), env.output(model_node), env.output(exp_node)
        settings = node.params["timing"]
        n = int(settings.get("batch_size", 16))
        x = model.normalize(data.clean_test.images[:n].to(env.device))
        t = data.clean_test.labels[:n].to(env.device)
        reps = dict(warmup=int(settings.get("warmup", 1)), repeats=int(settings.get("repeats", 3)))
        t_exp = timer.time_call(lambda: exp.explain(model, x, t), env.device, **reps)
        t_grad = timer.time_call(timer.gradient_pass(model, x, t), env.device, **reps)
        values = {
            "ms-per-image": t_exp.per_item_ms(len(x)),
            "gradient-units": t_exp.median_s / max(t_grad.median_s, 1e-12),
            "peak-memory-mb": t_exp.peak_memory_bytes / 2**20,
        }
        return [{"metric": k, "value": float(v), "unit": TIMING_VALUES[k][0], "higher_is_better": TIMING_VALUES[k][1],
                 "split": "", "stage": "", "detail": f"batch={len(x)}"} for k, v in values.items()]
