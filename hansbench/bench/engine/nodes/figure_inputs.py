"""The figure-inputs node: everything the session figures of one (scenario, model kind) draw, computed in the run.

Publishing only reads (issue 20): the gallery's maps, the prototype figure's similarities and scores, the
concept figure's maps and relevance shares, and the clusterers' 2-D embeddings are computed here, on the first
seed of each scenario, timed and cached like any node; :mod:`hansbench.bench.report.figures.session` loads this
node's cache entry and draws. Each part is computed on its own: one that fails is kept as its error message
(logged when the figures are drawn), so a figure never fails the run. The inputs are only nodes the run's rows
need anyway (the planner passes no explainer or clustering that no metric asked for), so figures train and
cluster nothing of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy.sparse.csgraph import connected_components
from sklearn.decomposition import PCA
from sklearn.manifold import SpectralEmbedding
from sklearn.neighbors import kneighbors_graph

from hansbench.bench.engine.nodes import clustering, maps
from hansbench.bench.engine.nodes.base import Node, NodeType, node_types
from hansbench.bench.engine.seeding import seed_everything
from hansbench.registry import explainers

if TYPE_CHECKING:
    from hansbench.bench.engine.execute import NodeEnv
    from hansbench.bench.engine.planner import Planner

N_IMAGES = 6  # artifact-test images in the gallery
CONCEPT_IMAGES = 64  # training images of the concept figure when the explainer's cluster maps are not computed


@node_types.register("figure-inputs")
class FigureInputsNode(NodeType):
    """What the figures of one (scenario, first seed, model kind) need: maps, prototypes, concepts, embeddings."""

    cached = True
    gpu = True
    order = 8  # after the clusterings it embeds

    @classmethod
    def plan(cls, planner: Planner, model: Node, explainer_nodes: list[Node], clustering_nodes: list[Node],
             n_images: int = N_IMAGES) -> Node:
        inputs = {"model": model, **{f"explainer:{n.params['name']}": n for n in explainer_nodes},
                  **{f"clustering:{n.params['source']}|{n.params['clusterer']}": n for n in clustering_nodes}}
        return planner.once(("figure-inputs", model.key, tuple(sorted(n.key for n in inputs.values()))),
                            lambda: cls.node({"n_images": int(n_images)}, inputs, cls.code_version(),
                                             dict(model.ids)))

    @classmethod
    def plan_after(cls, planner: Planner, rows: list[Node]) -> list[Node]:
        """Per scenario and model kind, on the first seed: what its figures draw, from the explainers and
        clusterings the rows of that model need (figures compute no clustering of their own). Each row's inputs
        are grouped under the row's own model, not by ids: a clustering that ignores the model (the pixels
        control) is one node shared by every model kind, and each kind's figures show it."""
        groups: dict[str, dict] = {}
        for r in rows:
            model = r.inputs.get("model") or next((a for a in r.ancestors() if a.type == "model"), None)
            if model is None:
                continue
            g = groups.setdefault(model.key, {"model": model, "explainer": {}, "clustering": {}})
            for a in r.ancestors():
                if a.type in ("explainer", "clustering"):
                    g[a.type].setdefault(a.key, a)
        first: dict[tuple, int] = {}
        for g in groups.values():
            ids = g["model"].ids
            first.setdefault((ids["scenario"], ids["model"]), ids["seed"])
        return [cls.plan(planner, g["model"], list(g["explainer"].values()), list(g["clustering"].values()))
                for g in groups.values()
                if first[(g["model"].ids["scenario"], g["model"].ids["model"])] == g["model"].ids["seed"]]

    @classmethod
    def required(cls, node: Node) -> Iterator[Node]:
        """Only the model and its data: an explainer or clustering that failed leaves out its own parts."""
        model = node.inputs["model"]
        yield from model.ancestors()
        yield model

    @classmethod
    def compute(cls, node: Node, env: NodeEnv) -> tuple[dict, dict]:
        model_node = node.inputs["model"]
        data, model = env.output(model_node.inputs["data"]), env.output(model_node)
        exp_nodes = [n for r, n in node.inputs.items() if r.startswith("explainer:")]
        clu_nodes = [n for r, n in node.inputs.items() if r.startswith("clustering:")]
        idx = gallery_index(data, node.params["n_images"])
        out: dict[str, Any] = {"index": idx, "maps": {}, "concepts": {}, "embeddings": {}, "errors": {}}

        def attempt(part: str, fn) -> None:
            try:
                fn()
            except Exception as exc:  # a figure's input must never cost the run
                out["errors"][part] = f"{type(exc).__name__}: {exc}".splitlines()[0]

        for n in exp_nodes:
            attempt(f"gallery {n.params['name']}",
                    lambda n=n: out["maps"].__setitem__(n.params["name"], maps.explain_fn(env, n)("artifact_test", idx)))
        if hasattr(model, "push_image_index") and idx.numel():
            attempt("prototypes", lambda: out.__setitem__("prototypes", prototype_panel(model, data, int(idx[0]))))
        for n in exp_nodes:
            if hasattr(explainers.get(n.params["name"]), "concepts_"):
                attempt(f"concepts {n.params['name']}",
                        lambda n=n: out["concepts"].__setitem__(n.params["name"],
                                                                concept_panel(env, n, clu_nodes, data, model)))
        seed = model_node.seed
        for n in clu_nodes:
            attempt(f"embedding {n.params['source']} {n.params['clusterer']}",
                    lambda n=n: _embed_into(out["embeddings"], env, n, seed))
        return out, out

    @classmethod
    def from_state(cls, node: Node, state: dict, env: NodeEnv) -> dict:
        return state


def gallery_index(data, n_images: int) -> torch.Tensor:
    """The gallery's artifact-test images: the affected class's, the poisoned ones where there are any."""
    idx = data.artifact_test.of_class(data.affected_class, by="true_labels")[:n_images]
    return idx[data.artifact_test.poisoned[idx]] if data.artifact_test.poisoned[idx].any() else idx


def prototype_panel(model, data, image_index: int) -> dict | None:
    """PRP Fig. 11's numbers for one test image: the explained class's prototypes, their similarity maps,
    scores, last-layer weights and push sources (None: the class has no prototype)."""
    target = int(data.explain_targets("artifact_test", torch.tensor([image_index]))[0])
    protos = model.prototypes_of(target).cpu()
    if protos.numel() == 0:
        return None
    device = next(model.parameters()).device
    with torch.no_grad():
        xn = model.normalize(data.artifact_test.images[image_index:image_index + 1].to(device))
        sim = model.similarity_maps(xn)[0].cpu()
        scores = model.scores(xn)[0].cpu()
        weights = model.last_layer.weight[target].detach().cpu()
    return {"image_index": image_index, "target": target, "protos": protos, "sim": sim, "scores": scores,
            "weights": weights, "push_image_index": model.push_image_index.detach().cpu().clone(),
            "push_location": model.push_location.detach().cpu().clone()}


def concept_panel(env: NodeEnv, n: Node, clu_nodes: list[Node], data, model) -> dict:
    """CRP Fig. 2's inputs: the inspected class's training maps (from its cluster maps when computed), the
    concept channels, the layer's name and each channel's share of the relevance there."""
    maps_node = next((c.inputs["maps"] for c in clu_nodes
                      if c.inputs.get("maps") is not None and c.inputs["maps"].inputs["explainer"] is n), None)
    index = maps.cluster_index(data)
    if maps_node is not None:
        m = env.output(maps_node)
    else:
        index = index[:CONCEPT_IMAGES]
        m = maps.explain_fn(env, n)("train", index)
    exp = env.output(n)
    channels = [int(c) for c in exp.concepts_.get(int(data.inspect_class), [])]
    shares = concept_shares(exp, model, data, index, channels)
    return {"index": index, "maps": m, "channels": torch.tensor(channels, dtype=torch.long),
            "layer": layer_name(exp, model), "shares": shares}


def layer_name(exp, model) -> str:
    """The module name of a concept explainer's layer (``layer``, else the model's ``cam_layer``)."""
    if getattr(exp, "layer", None):
        return str(exp.layer)
    target = getattr(model, "cam_layer", None)
    return next((name for name, module in model.named_modules() if module is target), "")


def concept_shares(exp, model, data, index: torch.Tensor, channels: list[int], batch: int = 64):
    """Per concept channel its share of the relevance at the explainer's layer (CRP Fig. 2's "relevance
    share"): the channel's relevance summed over the class's images ``index``, over the sum of |that| over
    all channels (signed; the |shares| of all channels sum to 1). None when the explainer cannot give the
    layer relevance (``layer_relevance(model, x, target) -> [B, C]``)."""
    fn = getattr(exp, "layer_relevance", None)
    if fn is None and hasattr(exp, "_lrp"):  # CRP: the relevance at the layer, summed over space
        def fn(m, x, t):
            return exp._lrp(m, x, t, layer_relevance=True)
    if fn is None or not channels:
        return None
    device = next(model.parameters()).device
    total = None
    for s in range(0, len(index), batch):
        idx = index[s:s + batch]
        x = model.normalize(data.train.images[idx].to(device, torch.float32))
        t = data.explain_targets("train", idx).to(device)
        rel = fn(model, x, t).detach().sum(0).cpu().double()
        total = rel if total is None else total + rel
    whole = float(total.abs().sum())  # of |relevance|: a signed total can be ~0 or negative
    return None if whole == 0 else (total[torch.as_tensor(channels)] / whole).float()


def _embed_into(found: dict, env: NodeEnv, n: Node, seed: int) -> None:
    """One clustering's panel: its input's 2-D embedding (once per input) and its labels and flagged cluster."""
    source = n.params["source"]
    if source not in found:
        seed_everything(seed)
        emb, note = embed(clustering.views(env, n), seed=seed)
        found[source] = {"embedding": torch.as_tensor(emb), "note": note, "clusterers": {}}
    result = env.output(n)
    found[source]["clusterers"][n.params["clusterer"]] = {
        "labels": torch.as_tensor(np.asarray(result.labels).astype(np.int64)),
        "flagged": -1 if getattr(result, "flagged", None) is None else int(result.flagged)}


def embed(views: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D embedding of ``[N, V, D]`` (flattened, standardised per feature) and a note for the title.

    Spectral (what SpRAy clusters) when the kNN graph is connected; PCA otherwise, since a spectral
    embedding maps each connected component to (nearly) one point, which is how a method's maps
    "collapse to three dots". Identical inputs are counted and, if any, jittered (1 % of the range,
    seeded), both said in the note.
    """
    x = views.reshape(views.shape[0], -1).astype(np.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-12)
    n, notes = x.shape[0], []
    distinct = len(np.unique(np.round(x, 6), axis=0))
    emb = None
    if n > 12:
        k = min(10, n - 1)
        parts, _ = connected_components(kneighbors_graph(x, k, include_self=False), directed=False)
        if parts == 1:
            try:
                emb, method = SpectralEmbedding(2, n_neighbors=k, random_state=seed).fit_transform(x), "spectral"
            except Exception:  # a degenerate graph: the linear view still shows the structure
                emb = None
        else:
            notes.append(f"kNN graph in {parts} parts")
    if emb is None:
        method = "PCA"
        emb = (PCA(2, random_state=seed).fit_transform(x) if min(x.shape) >= 2
               else np.c_[x[:, :1], np.zeros(len(x))])
    if distinct < n:
        notes.append(f"{distinct} distinct of {n}, jittered")
        span = np.ptp(emb, axis=0)
        emb = emb + np.random.default_rng(seed).normal(scale=0.01 * np.where(span > 0, span, 1.0), size=emb.shape)
    return emb, method + (f" ({'; '.join(notes)})" if notes else "")
