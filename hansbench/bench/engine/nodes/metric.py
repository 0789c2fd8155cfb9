"""The metric node: a metric's rows, from the :class:`~hansbench.metrics.base.EvalContext` assembled here.

The context hands a metric what it may use and nothing else: the data, the model, maps on
demand (``ctx.explain``, from the map bank), the clustering, a retrainer (``ctx.train_model``)
and a fresh explainer for a changed model (``ctx.explain_model``). Work done on demand is
recorded as its own sub-node, so a metric's seconds are its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from hansbench.bench.engine import checks, keys
from hansbench.bench.engine.nodes.base import ModelPlan, Node, NodeType, Omitted, node_types
from hansbench.bench.engine.nodes.clustering import ClusteringNode
from hansbench.bench.engine.nodes.explainer import ExplainerNode, set_up
from hansbench.bench.engine.nodes.flagging import FlaggingNode, rules_for
from hansbench.bench.engine.nodes.maps import cluster_index, explain_fn
from hansbench.bench.engine.nodes.model import ModelNode, model_from_state, train
from hansbench.bench.engine.seeding import seed_everything
from hansbench.bench.suite.config import input_kind_rows
from hansbench.datasets.base import Split
from hansbench.metrics.base import EvalContext
from hansbench.registry import explainers, metrics

if TYPE_CHECKING:
    from hansbench.bench.engine.execute import NodeEnv
    from hansbench.bench.engine.planner import Planner


def retrainer(env: NodeEnv, model_node: Node) -> Callable[[Split, str], torch.nn.Module]:
    """``ctx.train_model``: a fresh model of the node's kind and recipe on another training set (cached)."""

    def train_on(split: Split, tag: str = "") -> torch.nn.Module:
        data = env.output(model_node.inputs["data"])
        kind, config = model_node.params["model_kind"], model_node.params["raw"]
        params = {**model_node.params, "retrain_on": {"images": split.images, "labels": split.labels}}
        node = ModelNode.node(params, {"data": model_node.inputs["data"]}, model_node.code, model_node.ids)
        state = env.ws.load("model", node.key)
        if state is not None:
            return model_from_state(kind, config, data, state, env.device)
        with env.sub_node(node):
            model = train(env, kind, config, split, data, model_node.seed, f"{kind} ({tag or 'retrained'})")
            env.ws.save("model", node.key, model.state_dict())
        return model

    return train_on


def explain_model_fn(env: NodeEnv, explainer_node: Node) -> Callable[[torch.nn.Module, torch.Tensor, torch.Tensor],
                                                                    torch.Tensor]:
    """``ctx.explain_model(model, x, target)``: the node's explainer, built fresh, explaining another model.

    For checks that change the model (model randomisation). A new explainer is built from the
    node's options for each model object passed (the metric passes a new one per changed
    model) and its ``setup`` runs on that model, with the scenario data without ground truth:
    what ``setup`` derives from the model (CRP's concept channels) must come from the changed
    model, or the trained model's learned state would leak into the check. ``setup`` that
    trains a model of its own (ClaDec's decoder) is as expensive as it sounds: the metric says
    whether it applies. ``x`` is normalised; maps are computed on the run's device, uncached.
    """
    held: dict[str, Any] = {}
    name = explainer_node.params["name"]

    def fn(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if held.get("model") is not model:
            seed_everything(explainer_node.seed)
            held.update(model=model, explainer=set_up(env, explainer_node, model))
        seed_everything(explainer_node.seed)
        maps = held["explainer"].explain(model, x.to(env.device), target.to(env.device)).detach().float()
        checks.check_maps(maps.cpu(), n=len(x), height=x.shape[-2], width=x.shape[-1],
                          views=held["explainer"].expected_views(model), explainer=name)
        return maps

    return fn


@node_types.register("metric")
class MetricNode(NodeType):
    """One metric on a model, an explainer or a clustering: its rows go to the results store."""

    gpu = True
    produces_rows = True
    order = 6

    @classmethod
    def plan_for_model(cls, planner: Planner, at: ModelPlan) -> tuple[list[Node], list[Omitted]]:
        """Every metric of the suite at its level (model, explainer, clustering) for this model, each
        combination the metric says does not apply left out with its reason."""
        suite, kind, scenario = planner.suite, at.kind, at.scenario
        row_kinds = set(input_kind_rows())
        rows: list[Node] = []
        omitted: list[Omitted] = []
        for mname, entry in suite.metrics.items():
            if not suite.allows("metrics", mname, model=kind) or not scenario.runs_in("metrics", mname):
                continue
            metric = metrics.get(mname)(**entry.options)
            combos = {"model": [("", "", "")], "explainer": [(e, "", "") for e in at.explainers],
                      "clustering": [(e, c, "") for e, c in at.pairs],
                      "flagging": [(e, c, r) for e, c in at.pairs for r in rules_for(planner, kind, e, c)]}[metric.level]
            for e, c, r in combos:
                if not suite.allows("metrics", mname, explainer=e, clusterer=c, rule=r):
                    continue
                ids = {**at.model.ids, "explainer": e, "clusterer": c, "rule": r, "family": mname}
                reason = metric.not_applicable(
                    model_kind=kind, scenario=scenario,
                    explainer=explainers.get(e) if e and e not in row_kinds else None,
                    explainer_name=e, clusterer_name=c)
                if reason:
                    omitted.append(Omitted(ids, reason))
                    continue
                inputs: dict[str, Node] = {"model": at.model}
                if e and e not in row_kinds:
                    inputs["explainer"] = ExplainerNode.plan(planner, at.model, e)
                if c:
                    inputs["clustering"] = ClusteringNode.plan(planner, at.model, e, c)
                if r:
                    inputs["flagging"] = FlaggingNode.plan(planner, inputs["clustering"], r)
                rows.append(cls.plan(planner, mname, inputs, ids))
        return rows, omitted

    @classmethod
    def plan(cls, planner: Planner, name: str, inputs: dict[str, Node], ids: dict) -> Node:
        options = planner.suite.metrics[name].options
        return cls.node({"metric": name, "options": options, "files": keys.with_file_digests(options)}, inputs,
                        cls.code_version(keys.code_version(metrics.get(name))), {**ids, "family": name})

    @classmethod
    def compute(cls, node: Node, env: NodeEnv) -> list[dict]:
        model_node = node.inputs["model"]
        data = env.output(model_node.inputs["data"])
        model = env.output(model_node)
        exp_node, clu_node = node.inputs.get("explainer"), node.inputs.get("clustering")
        clustering = env.output(clu_node) if clu_node is not None else None
        flag_node = node.inputs.get("flagging")
        metric = metrics.get(node.params["metric"])(**node.params["options"])
        seed = node.seed
        seed_everything(seed)
        ctx = EvalContext(
            data=data, model=model, seed=seed, device=env.device,
            explainer=clu_node.params["source"] if clu_node is not None else
            exp_node.params["name"] if exp_node is not None else "",
            clusterer=clu_node.params["clusterer"] if clu_node is not None else "",
            explain=explain_fn(env, exp_node) if exp_node is not None else None,
            clustering=clustering, cluster_index=cluster_index(data) if clu_node is not None else None,
            train_model=retrainer(env, model_node),
            explain_model=explain_model_fn(env, exp_node) if exp_node is not None else None,
            flagging=env.output(flag_node) if flag_node is not None else None,
            rule=flag_node.params["rule"] if flag_node is not None else "",
        )
        return checks.check_rows(metric.evaluate(ctx), node.params["metric"])
