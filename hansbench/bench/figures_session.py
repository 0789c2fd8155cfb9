"""Figures drawn from a finished run's cache (models, maps, clusterings; nothing is trained for a figure):
"this looks like that" for ProtoPNet (PRP Fig. 11), cluster embeddings, CRP concepts (CRP Fig. 2), and
:func:`session_figures`, which draws them with the gallery per (scenario, model kind) for the first seed.
"""

# ruff: noqa: B023  (session_figures: each closure is called in the loop iteration that defines it)

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hansbench.bench.figures import Figure, _class_name, _clear, _figure, _outline, _safe, _show_map, gallery
from hansbench.bench.styles import (
    FLAGGED_COLOR,
    OTHER_CLUSTER_COLORS,
    PAGE_WIDTH,
    TRUTH_COLORS,
    TRUTH_MARKERS,
    method_style,
    page_style,
    plt,
    save,
)

PROTOTYPE_NOTE = ("score × w = contribution to the class logit: score = the prototype's largest similarity "
                  "log((d+1)/(d+ε)) to a patch of the test image (yellow box), w = its last-layer weight for the "
                  "explained class; prototypes in descending contribution. Second row: the training image the "
                  "prototype was pushed onto, the patch boxed. Green: the artifact.")


def prototype_figure(scenario: str, kind: str, model, data, image_index: int, maps: dict[str, torch.Tensor],
                     out: Path, top: int = 3, seed: int | None = None) -> str | None:
    """PRP Fig. 11: a test image, its top prototypes of the explained class, their source training patches
    (``push_image_index``, ``push_location``) and each prototype-view explainer's map of that prototype."""
    split = data.artifact_test
    target = int(data.explain_targets("artifact_test", torch.tensor([image_index]))[0])
    protos = model.prototypes_of(target).cpu()
    if protos.numel() == 0:
        return None
    device = next(model.parameters()).device
    x = split.images[image_index:image_index + 1]
    with torch.no_grad():
        xn = model.normalize(x.to(device))
        sim = model.similarity_maps(xn)[0].cpu()  # [P, h, w]
        scores = model.scores(xn)[0].cpu()
        weights = model.last_layer.weight[target].detach().cpu()
    h = sim.shape[-1]
    contrib = scores[protos] * weights[protos]
    order = torch.argsort(contrib, descending=True)[:top]
    cell = x.shape[-1] / h
    image = x[0].permute(1, 2, 0).clamp(0, 1).numpy()

    def box(ax, r: int, c: int, color: str) -> None:
        ax.add_patch(plt.Rectangle((c * cell - 0.5, r * cell - 0.5), cell, cell, fill=False, ec=color, lw=1.5))

    with page_style():
        fig, axes = plt.subplots(2 + len(maps), len(order) + 1, figsize=(min(PAGE_WIDTH, 1.6 * (len(order) + 1)),
                                 1.6 * (2 + len(maps)) + 0.9), squeeze=False, layout="constrained")
        axes[0][0].imshow(image)
        _outline(axes[0][0], split.masks[image_index])
        axes[0][0].set_title(f"test image\nexplained: {_class_name(data, target)}", fontsize=8)
        for ax in axes[1:, 0]:
            ax.axis("off")
        for col, v in enumerate(order.tolist(), start=1):
            j = int(protos[v])
            ax = axes[0][col]
            ax.set_title(f"prototype {j}: {float(scores[j] * weights[j]):.2f}\n= score {float(scores[j]):.2f} × "
                         f"w {float(weights[j]):.2f}", fontsize=8)
            ax.imshow(image)
            r, c = divmod(int(sim[j].argmax()), h)
            box(ax, r, c, "yellow")
            ax = axes[1][col]
            src = int(model.push_image_index[j])
            if 0 <= src < len(data.train):
                ax.imshow(data.train.images[src].permute(1, 2, 0).clamp(0, 1).numpy())
                _outline(ax, data.train.masks[src])
                box(ax, *(int(t) for t in model.push_location[j].tolist()), "yellow")
                ax.set_title(f"source: train {src}{chr(10) + '(poisoned)' if bool(data.train.poisoned[src]) else ''}",
                             fontsize=7)
            else:
                ax.set_title("not pushed", fontsize=7)
            for row, (method, m) in enumerate(maps.items(), start=2):
                _show_map(axes[row][col], m[0, v])
                _outline(axes[row][col], split.masks[image_index])
                if col == 1:
                    axes[row][0].text(0.5, 0.5, method, ha="center", va="center", fontsize=8,
                                      color=method_style(method).color)
        axes[1][0].text(0.5, 0.5, "source patch", ha="center", va="center", fontsize=8)
        _clear(axes)
        fig.suptitle(f"{scenario} · {kind}{'' if seed is None else f' · seed {seed}'}: this looks like that")
        fig.supxlabel(_wrap(PROTOTYPE_NOTE, 110), fontsize=7)
        name = save(fig, out, f"prototypes-{_safe(scenario)}-{_safe(kind)}.png")
    return name


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width))


def embed(views: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D embedding of ``[N, V, D]`` (flattened, standardised per feature) and a note for the title.

    Spectral (what SpRAy clusters) when the kNN graph is connected; PCA otherwise, since a spectral
    embedding maps each connected component to (nearly) one point, which is how a method's maps
    "collapse to three dots". Identical inputs are counted and, if any, jittered (1 % of the range,
    seeded), both said in the note.
    """
    from scipy.sparse.csgraph import connected_components
    from sklearn.decomposition import PCA
    from sklearn.manifold import SpectralEmbedding
    from sklearn.neighbors import kneighbors_graph

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


def _flag_colors(labels: np.ndarray, flagged: int | None) -> list[str]:
    others = [c for c in dict.fromkeys(labels.tolist()) if c != flagged]
    table = {c: OTHER_CLUSTER_COLORS[i % len(OTHER_CLUSTER_COLORS)] for i, c in enumerate(sorted(others))}
    return [FLAGGED_COLOR if c == flagged else table[c] for c in labels.tolist()]


def _scatter_truth(ax, emb: np.ndarray, truth: np.ndarray, colors) -> None:
    for poisoned in (False, True):
        sel = truth == poisoned
        if sel.any():
            ax.scatter(emb[sel, 0], emb[sel, 1], c=np.asarray(colors, dtype=object)[sel].tolist(),
                       marker=TRUTH_MARKERS[poisoned], s=12, lw=0.3, edgecolors="white")


def embedding_figure(scenario: str, kind: str, panels: dict[str, tuple], out: Path, seed: int | None = None,
                     columns: int = 4) -> str:
    """Per clusterer input (an explainer's maps, activations, ...): its 2-D embedding coloured by the true
    poisoned flag, then by each clusterer's clusters (the flagged cluster orange) with the truth as marker.

    ``panels``: source -> ``(embedding, truth, {clusterer: labels or (labels, flagged)}[, note])``.
    At most ``columns`` panels a row (page width); a source with more clusterers continues on the next row.
    """
    cells: list[list[tuple]] = []
    for source, panel in panels.items():
        emb, truth, found = panel[:3]
        note = panel[3] if len(panel) > 3 else ""
        items = [("truth", source, emb, truth, None, note)] + [("found", f"× {c}", emb, truth, f, "")
                                                              for c, f in found.items()]
        cells += [items[i:i + columns] for i in range(0, len(items), columns)]
    ncols = min(columns, max(len(r) for r in cells))
    with page_style():
        fig, axes = plt.subplots(len(cells), ncols, figsize=(1.75 * ncols, 1.85 * len(cells) + 0.9), squeeze=False,
                                 layout="constrained")
        for r, row in enumerate(cells):
            for c, (what, title, emb, truth, found, note) in enumerate(row):
                ax = axes[r][c]
                if what == "truth":
                    _scatter_truth(ax, emb, truth, [TRUTH_COLORS[bool(t)] for t in truth])
                    ax.set_title("\n".join([title] + textwrap.wrap(f"({note})", 26)), fontsize=9,
                                 color=method_style(title).color)
                else:
                    labels, flagged = found if isinstance(found, tuple) else (found, None)
                    labels = np.asarray(labels)
                    _scatter_truth(ax, emb, truth, _flag_colors(labels, flagged))
                    ax.set_title(title, fontsize=9)
            for c in range(len(row), ncols):
                axes[r][c].axis("off")
        _clear(axes)
        from matplotlib.lines import Line2D

        def mark(color, marker, label):
            return Line2D([], [], ls="", marker=marker, color=color, markersize=6, label=label)

        handles = [mark(TRUTH_COLORS[False], TRUTH_MARKERS[False], "clean (truth)"),
                   mark(TRUTH_COLORS[True], TRUTH_MARKERS[True], "poisoned (truth)"),
                   mark(FLAGGED_COLOR, "s", "flagged cluster"),
                   mark(OTHER_CLUSTER_COLORS[0], "s", "other cluster(s)")]
        fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False)
        fig.suptitle(f"{scenario} · {kind}{'' if seed is None else f' · seed {seed}'}: what the clusterers saw "
                     "(2-D embedding)")
        name = save(fig, out, f"embedding-{_safe(scenario)}-{_safe(kind)}.png")
    return name


def concept_figure(scenario: str, kind: str, explainer: str, data, index: torch.Tensor, maps: torch.Tensor,
                   channels: list[int], out: Path, n_concepts: int = 4, n_refs: int = 5, layer: str = "",
                   shares: torch.Tensor | None = None, seed: int | None = None) -> str:
    """CRP Fig. 2: per top concept (view) of the inspected class, the training images with the most
    relevance for it, masked by its conditional map; the row names the channel and, given ``shares``
    (per view: its share of the relevance at ``layer`` over the class's images), its relevance share."""
    pos = maps.clamp(min=0)
    strength = pos.flatten(2).sum(-1)  # [N, V]
    rank = shares if shares is not None else strength.mean(0)
    concepts = torch.argsort(rank, descending=True)[:n_concepts].tolist()
    with page_style():
        fig, axes = plt.subplots(len(concepts), n_refs, figsize=(min(PAGE_WIDTH, 1.5 + 1.05 * n_refs),
                                 1.1 * len(concepts) + 0.9), squeeze=False, layout="constrained")
        for row, v in enumerate(concepts):
            refs = torch.argsort(strength[:, v], descending=True)[:n_refs].tolist()
            for col, i in enumerate(refs):
                m = pos[i, v]
                alpha = (m / (m.max() + 1e-12)).clamp(0, 1).sqrt()
                img = data.train.images[int(index[i])].permute(1, 2, 0).clamp(0, 1) * alpha[..., None]
                axes[row][col].imshow(img.numpy())
                _outline(axes[row][col], data.train.masks[int(index[i])])
            label = f"channel {channels[v]}" if v < len(channels) else f"view {v}"
            if shares is not None:
                label += f"\n{100 * float(shares[v]):.1f} % of\nthe relevance"
            axes[row][0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
        _clear(axes)
        at = f" at layer {layer}" if layer else ""
        fig.suptitle(f"{scenario} · {kind} · {explainer}{'' if seed is None else f' · seed {seed}'}: top concepts"
                     f"{at} of {_class_name(data, data.inspect_class)}")
        share_note = (f"share: the channel's relevance{at}, summed over the class's {len(index)} training "
                      "images, over the sum of |that| over all channels (negative: the concept speaks against "
                      "the class). " if shares is not None else "")
        fig.supxlabel(_wrap(f"{share_note}Each row: the training images with the most relevance for the concept, "
                            "masked by its conditional map (dark: no relevance); green: the artifact.", 90),
                      fontsize=7)
        name = save(fig, out, f"concepts-{_safe(scenario)}-{_safe(kind)}-{_safe(explainer)}.png")
    return name


def _groups(plan) -> dict[tuple, dict[str, list]]:
    """(scenario, seed, model kind) -> explainer and clustering nodes of the plan."""
    groups: dict[tuple, dict[str, list]] = {}
    for node in plan.all_nodes():
        if node.type in ("explainer", "clustering"):
            k = (node.ids["scenario"], node.ids["seed"], node.ids["model"])
            groups.setdefault(k, {"explainer": [], "clustering": []})[node.type].append(node)
    return groups


def _model_node(nodes: dict[str, list]):
    for n in nodes["explainer"] + nodes["clustering"]:
        if "model" in n.inputs:
            return n.inputs["model"]
    return None


def _layer_name(exp, model) -> str:
    """The module name of a concept explainer's layer (``layer``, else the model's ``cam_layer``)."""
    if getattr(exp, "layer", None):
        return str(exp.layer)
    target = getattr(model, "cam_layer", None)
    return next((name for name, module in model.named_modules() if module is target), "")


def _concept_shares(exp, model, data, index: torch.Tensor, channels: list[int], batch: int = 64):
    """Per concept channel its share of the relevance at the explainer's layer (CRP Fig. 2's
    "relevance share"): the channel's relevance summed over the class's images ``index``, over the
    sum of |that| over all channels (signed; the |shares| of all channels sum to 1). None when the
    explainer cannot give the layer relevance (``layer_relevance(model, x, target) -> [B, C]``)."""
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


def session_figures(runner, out: Path, n_images: int = 6, log: Callable[[str], None] = print) -> list[Figure]:
    """Gallery, prototypes, embeddings and concepts per (scenario, first seed, model kind) from the cache.

    Nothing is trained for a figure: a model missing from the cache (its node failed or was not
    needed) skips its figures. Each figure is drawn on its own; one that fails is logged and skipped.
    """
    from hansbench.registry import explainers

    plan = runner.last_plan
    if plan is None:
        return []
    env, figs, seen = runner.env, [], set()
    for (scenario, seed, kind), nodes in _groups(plan).items():
        if (scenario, kind) in seen:
            continue
        seen.add((scenario, kind))
        model_node = _model_node(nodes)
        if model_node is None or not env.ws.has("model", model_node.key):
            continue  # never train for a figure
        data = env.output(model_node.inputs["data"])
        idx = data.artifact_test.of_class(data.affected_class, by="true_labels")[:n_images]
        idx = idx[data.artifact_test.poisoned[idx]] if data.artifact_test.poisoned[idx].any() else idx
        at = f"seed {seed}"

        def attempt(what: str, fn: Callable[[], Figure | None]) -> None:
            try:
                fig = fn()
                if fig is not None:
                    figs.append(fig)
            except Exception as exc:  # a figure must never cost the results
                log(f"{what} figure for {scenario} {kind} skipped: {type(exc).__name__}: {exc}")

        exp_nodes = nodes["explainer"]

        def draw_gallery() -> Figure | None:
            if not exp_nodes or idx.numel() == 0:
                return None
            maps = {n.ids["explainer"]: env.explain_fn(n)("artifact_test", idx) for n in exp_nodes}
            targets = env.targets(data, "artifact_test", idx)
            titles = [f"explained: {_class_name(data, int(t))}" for t in targets]
            name = gallery(scenario, kind, data.artifact_test.images[idx], maps, out,
                           masks=data.artifact_test.masks[idx], titles=titles,
                           suptitle=f"{scenario} · {kind} · {at}: maps of artifact-test images")
            rule = data.explain_rule("artifact_test", idx)
            return _figure(scenario, name, f"{kind} ({at}): maps of artifact-test images of the affected class, "
                                           f"explained for {'the backdoor target' if rule == 'target' else 'their label'}"
                                           " (views summed; each map scaled to its own largest |relevance|; green "
                                           "outline: the artifact)")

        def draw_prototypes() -> Figure | None:
            model = env.output(model_node)
            proto_nodes = [n for n in exp_nodes if getattr(explainers.get(n.params["name"]), "views", "") == "prototypes"]
            if not proto_nodes or not hasattr(model, "push_image_index") or idx.numel() == 0:
                return None
            i = idx[:1]
            maps = {n.ids["explainer"]: env.explain_fn(n)("artifact_test", i) for n in proto_nodes}
            name = prototype_figure(scenario, kind, model, data, int(i[0]), maps, out, seed=seed)
            return None if name is None else _figure(
                scenario, name, f"{kind} ({at}): this looks like that: a test image, its top prototypes of the "
                                "explained class (titles: similarity score × last-layer weight = contribution to the "
                                "class logit; yellow box: the most similar patch), their source training patches and "
                                "each method's map per prototype")

        def draw_embeddings() -> Figure | None:
            panels: dict[str, tuple] = {}
            index = env.cluster_index(data)
            truth = data.train.poisoned[index].numpy().astype(bool)
            for n in nodes["clustering"]:
                if not env.ws.has("clustering", n.key):
                    continue
                source = n.ids["explainer"]
                if source not in panels:
                    maps_node = n.inputs.get("maps")
                    if maps_node is not None and not env.ws.has("maps", maps_node.key):
                        continue
                    emb, note = embed(env.views(n), seed=int(seed))
                    panels[source] = (emb, truth, {}, note)
                result = env.output(n)
                panels[source][2][n.ids["clusterer"]] = (np.asarray(result.labels), getattr(result, "flagged", None))
            if not panels:
                return None
            name = embedding_figure(scenario, kind, panels, out, seed=seed)
            return _figure(scenario, name, f"{kind} ({at}): what the clusterers saw (the inspected class's training "
                                           "maps, activations or pixels; 2-D spectral embedding, PCA where the kNN "
                                           "graph falls apart), coloured by the true poisoned flag, then by each "
                                           "clusterer's clusters (orange: the cluster it flags), marker = truth")

        def draw_concepts(n) -> Callable[[], Figure | None]:
            def draw() -> Figure | None:
                maps_node = next((c.inputs["maps"] for c in nodes["clustering"]
                                  if c.inputs.get("maps") is not None and c.inputs["maps"].inputs["explainer"] is n), None)
                index = env.cluster_index(data)
                if maps_node is not None and env.ws.has("maps", maps_node.key):
                    maps = env.output(maps_node)
                else:
                    index = index[:64]
                    maps = env.explain_fn(n)("train", index)
                exp, model = env.output(n), env.output(model_node)
                channels = list(exp.concepts_.get(int(data.inspect_class), []))
                layer = _layer_name(exp, model)
                shares = _concept_shares(exp, model, data, index, channels)
                name = concept_figure(scenario, kind, n.ids["explainer"], data, index, maps, channels, out,
                                      layer=layer, shares=shares, seed=seed)
                return _figure(scenario, name, f"{kind} · {n.ids['explainer']} ({at}): the inspected class's top "
                                               f"concepts (channels of layer {layer or '?'}, each with its share of "
                                               "the relevance there), reference images masked by each concept's "
                                               "conditional map")
            return draw

        attempt("gallery", draw_gallery)
        attempt("prototype", draw_prototypes)
        attempt("embedding", draw_embeddings)
        for n in exp_nodes:
            if hasattr(explainers.get(n.params["name"]), "concepts_"):
                attempt("concept", draw_concepts(n))
    return figs
