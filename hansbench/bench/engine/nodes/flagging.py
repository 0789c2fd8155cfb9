"""The flagging node: a registered flagging rule turns one detection's split into a flagged set, or abstains.

A detector answers two questions (PAPERS.md §9): whether it separates the poison (its clustering, scored by the
``clustering``-level metrics) and whether it can flag the poison unaided (a rule, here). The rule sees the
clustering without ground truth, plus the one count the papers' budgets use (the true poison rate, stated as such
in the rule's reason) and, for exclusionary reclassification, a retrainer. ``flagging``-level metrics
(``flag-detection``, ``data-cleaning``) run once per clustering x rule; their rows carry the rule in the ``rule``
column.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import torch

from hansbench.bench.engine import keys
from hansbench.bench.engine.nodes.base import Node, NodeType, node_types
from hansbench.bench.engine.nodes.maps import cluster_index
from hansbench.methods.flagging.base import Flagging, Split, apply_rule
from hansbench.models.evaluation import predict
from hansbench.registry import clusterers, flagging_rules

if TYPE_CHECKING:
    from collections.abc import Callable

    from hansbench.bench.engine.execute import NodeEnv
    from hansbench.bench.engine.planner import Planner

SILHOUETTE = "silhouette"  # the key of the split's silhouette in a clustering's info (the clustering node adds it)


def rules_for(planner: Planner, kind: str, source: str, clusterer: str) -> list[str]:
    """The suite's rules that apply to ``clusterer``'s kind of detection and that its filters let run here."""
    detects_by = clusterers.get(clusterer).detects_by
    suite = planner.suite
    return [r for r in suite.flagging
            if flagging_rules.get(r)(**suite.flagging[r].options).not_applicable(detects_by) is None
            and suite.allows("flagging", r, model=kind, explainer=source, clusterer=clusterer)]


def reclassifier(env: NodeEnv, model_node: Node, index: torch.Tensor) -> Callable[[np.ndarray], np.ndarray]:
    """``Split.reclassify``: retrain without a candidate cluster's images (cached by content, as data cleaning's
    retrainings are) and return the new model's predicted classes for those images."""
    from hansbench.bench.engine.nodes.metric import retrainer  # (the metric node imports this module's node type)

    train_on = retrainer(env, model_node)
    data = env.output(model_node.inputs["data"])

    def reclassify(mask: np.ndarray) -> np.ndarray:
        removed = index[torch.as_tensor(np.asarray(mask, dtype=bool))]
        keep = torch.ones(len(data.train), dtype=torch.bool)
        keep[removed] = False
        tag = "exclusionary-" + keys.digest(sorted(int(i) for i in removed), 12)
        model = train_on(data.train.subset(keep), tag)
        logits = predict(model, data.train.images[removed], device=env.device)
        return logits.argmax(1).cpu().numpy()

    return reclassify


@node_types.register("flagging")
class FlaggingNode(NodeType):
    """One rule's flagged set (or abstention) for one clustering; cached (a retraining rule is not cheap)."""

    cached = True
    gpu = True  # exclusionary reclassification retrains
    order = 5

    @classmethod
    def plan(cls, planner: Planner, clustering: Node, rule: str) -> Node:
        """The rule ``rule`` (with the suite's options) applied to the ``clustering`` node's split."""

        def make() -> Node:
            options = planner.suite.flagging[rule].options
            params = {"rule": rule, "options": options, "files": keys.with_file_digests(options)}
            code = cls.code_version(keys.code_version(flagging_rules.get(rule)))
            return cls.node(params, {"clustering": clustering}, code, {**clustering.ids, "rule": rule})

        return planner.once(("flagging", clustering.key, rule), make)

    @classmethod
    def compute(cls, node: Node, env: NodeEnv) -> tuple[Flagging, dict]:
        clu_node = node.inputs["clustering"]
        clustering = env.output(clu_node)
        model_node = _model_of(clu_node)
        data = env.output(next(n for n in clu_node.ancestors() if n.type == "data"))
        index = cluster_index(data)
        poisoned = data.train.poisoned[index].cpu().numpy().astype(bool)
        rule = flagging_rules.get(node.params["rule"])(**node.params["options"])
        split = Split(labels=np.asarray(clustering.labels), scores=clustering.scores,
                      detects_by=clusterers.get(clu_node.params["clusterer"]).detects_by,
                      own_flagged=int(clustering.flagged), silhouette=(clustering.info or {}).get(SILHOUETTE),
                      true_rate=float(poisoned.mean()) if poisoned.size else 0.0,
                      reclassify=reclassifier(env, model_node, index) if model_node is not None and
                      rule.needs_retraining else None,
                      inspected_class=int(data.inspect_class))
        out = apply_rule(rule, split)
        state = {"flagged": torch.as_tensor(out.flagged), "abstained": bool(out.abstained), "reason": out.reason,
                 "info": json.dumps(out.info, default=str)}
        return out, state

    @classmethod
    def from_state(cls, node: Node, state: dict, env: NodeEnv) -> Flagging:
        info = state["info"]
        return Flagging(state["flagged"].numpy().astype(bool), bool(state["abstained"]), str(state["reason"]),
                        json.loads(info) if isinstance(info, str) else dict(info))


def _model_of(clustering: Node) -> Node | None:
    """The model node behind a clustering (its own input, or through maps -> explainer -> model); None for an
    input kind that reads only the data."""
    for n in clustering.ancestors():
        if n.type == "model":
            return n
    return None
