"""The clustering node: a clusterer fitted to the views of the inspected class's training images.

A clustering's source is a registered input kind (:mod:`hansbench.methods.inputs`): an
explainer's ``maps`` (from the maps node), or a kind that is its own baseline (``activations``,
``pixels``, a plugin's). How the source becomes clusterer views ``[N, V, D]`` is written here
(:func:`views`), so editing it changes every clustering key through this module's code version.
"""

from __future__ import annotations

import inspect
import json
from typing import TYPE_CHECKING

import numpy as np
import torch

from hansbench.bench.engine import checks, keys
from hansbench.bench.engine.nodes.base import Node, NodeType, node_types
from hansbench.bench.engine.nodes.explainer import ExplainerNode
from hansbench.bench.engine.nodes.flagging import SILHOUETTE
from hansbench.bench.engine.nodes.maps import MapsNode, cluster_index
from hansbench.bench.engine.seeding import seed_everything
from hansbench.bench.suite.config import input_kind_rows
from hansbench.methods.base import MAPS, ClusteringResult
from hansbench.methods.flagging.base import silhouette_of
from hansbench.methods.inputs import Maps
from hansbench.registry import clusterer_inputs, clusterers

if TYPE_CHECKING:
    from hansbench.bench.engine.execute import NodeEnv
    from hansbench.bench.engine.planner import Planner


def clustering_options(planner: Planner, name: str, seed: int) -> dict:
    """The clusterer's options with the run's seed and its one device choice filled in."""
    cls = clusterers.get(name)
    opts = {"random_state": seed, **planner.suite.clusterers[name].options}
    if "device" in inspect.signature(cls.__init__).parameters:
        opts.setdefault("device", planner.device_type)
    return opts


def view_settings(planner: Planner) -> dict:
    """The ``[clustering]`` settings that shape the views (the ``pixels`` switch only plans)."""
    return {k: v for k, v in planner.suite.clustering.items() if k != "pixels"}


def input_kind(node: Node) -> str:
    """The clustering node's input kind: its source when that names one, else ``maps`` (an explainer)."""
    return MAPS if "maps" in node.inputs else node.params["source"]


def views(env: NodeEnv, node: Node) -> np.ndarray:
    """Clusterer input ``[N, V, D]`` of the inspected class's training images, from the node's input kind.

    The kind sees the data without ground truth; the map kind gets the explainer's maps from the bank.
    """
    kind = input_kind(node)
    settings = node.params["views"]
    if kind == MAPS:
        return Maps.from_maps(env.output(node.inputs["maps"]), settings)
    obj = clusterer_inputs.get(kind)()
    model_node = node.inputs.get("model")
    data_node = model_node.inputs["data"] if model_node is not None else node.inputs["data"]
    data = env.output(data_node)
    model = env.output(model_node) if model_node is not None and obj.uses_model else None
    index = cluster_index(data)
    seed_everything(node.seed)  # a kind that samples (e.g. blending partners) is seeded per run
    out = obj.views(model=model, data=data.without_ground_truth(), index=index, device=env.device,
                    settings=dict(settings))
    return checks.check_views(out, n=len(index), kind=kind)


@node_types.register("clustering")
class ClusteringNode(NodeType):
    """Cluster labels, the flagged cluster and per-sample scores of one clusterer on one source."""

    cached = True
    gpu = True
    order = 4

    @classmethod
    def plan(cls, planner: Planner, model: Node, source: str, name: str) -> Node:
        """Clustering by ``name`` of ``source``: an explainer (its maps) or a non-map input kind."""

        def make() -> Node:
            kind = source if source in input_kind_rows() else MAPS
            inp = clusterer_inputs.get(kind)
            if inp.needs_explainer:
                inputs = {"maps": MapsNode.plan(planner, ExplainerNode.plan(planner, model, source))}
            else:  # a kind that ignores the model is shared by every model kind of the data (same key)
                inputs = {"model": model} if inp.uses_model else {"data": model.inputs["data"]}
            params = {"clusterer": name, "options": clustering_options(planner, name, model.seed),
                      "files": keys.with_file_digests(planner.suite.clusterers[name].options), "source": source,
                      "views": view_settings(planner) if inp.uses_settings else {}}
            code = cls.code_version(keys.code_version(clusterers.get(name)), keys.code_version(inp))
            return cls.node(params, inputs, code, {**model.ids, "explainer": source, "clusterer": name})

        return planner.once(("clustering", model.key, source, name), make)

    @classmethod
    def compute(cls, node: Node, env: NodeEnv) -> tuple[ClusteringResult, dict]:
        name = node.params["clusterer"]
        est = clusterers.get(name)(**node.params["options"])
        x = views(env, node)
        est.fit_predict(x)
        res = est.result_
        labels = np.asarray(res.labels)
        checks.check_clustering(labels, res.flagged, n=x.shape[0], n_clusters=getattr(est, "n_clusters", None),
                                clusterer=name, detects_by=getattr(est, "detects_by", "clusters"))
        scores = checks.check_scores(getattr(res, "scores", None), n=x.shape[0], clusterer=name)
        info = {**res.info, SILHOUETTE: silhouette_of(x, labels)}
        state = {"labels": torch.as_tensor(labels.astype(np.int64)), "flagged": int(res.flagged),
                 "info": json.dumps(info, default=str)}
        if scores is not None:  # absent key = no scores (entries cached before scores existed load the same)
            state["scores"] = torch.as_tensor(scores, dtype=torch.float64)
        return cls.from_state(node, state, env), state

    @classmethod
    def from_state(cls, node: Node, state: dict, env: NodeEnv) -> ClusteringResult:
        info = state["info"]
        scores = state.get("scores")
        return ClusteringResult(state["labels"].numpy(), int(state["flagged"]),
                                json.loads(info) if isinstance(info, str) else dict(info),
                                scores=None if scores is None else scores.numpy().astype(np.float64))
