"""Figures drawn from a finished run's cache: "this looks like that" for ProtoPNet (PRP Fig. 11), cluster
embeddings, CRP concepts (CRP Fig. 2) and the map gallery, per (scenario, model kind) on the first seed.

Publishing only reads: what these figures show was computed in the run by the figure-input nodes
(:mod:`hansbench.bench.engine.nodes.figure_inputs`: timed, cached, recorded like any node); :func:`session_figures` loads
their cache entries and draws.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hansbench.bench.report.escape import slug
from hansbench.bench.report.figures.base import Figure, new_figure
from hansbench.bench.report.figures.maps import class_name, clear_axes, gallery, outline, show_map
from hansbench.bench.report.figures.styles import (
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


def prototype_figure(scenario: str, kind: str, panel: dict, data, maps: dict[str, torch.Tensor],
                     out: Path, top: int = 3, seed: int | None = None) -> str | None:
    """PRP Fig. 11: a test image, its top prototypes of the explained class, their source training patches
    and each prototype-view explainer's map of that prototype. ``panel``: the numbers the run computed
    (:func:`hansbench.bench.engine.nodes.figure_inputs.prototype_panel`)."""
    split = data.artifact_test
    image_index, target = int(panel["image_index"]), int(panel["target"])
    protos, sim, scores, weights = panel["protos"], panel["sim"], panel["scores"], panel["weights"]
    x = split.images[image_index:image_index + 1]
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
        outline(axes[0][0], split.masks[image_index])
        axes[0][0].set_title(f"test image\nexplained: {class_name(data, target)}", fontsize=8)
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
            src = int(panel["push_image_index"][j])
            if 0 <= src < len(data.train):
                ax.imshow(data.train.images[src].permute(1, 2, 0).clamp(0, 1).numpy())
                outline(ax, data.train.masks[src])
                box(ax, *(int(t) for t in panel["push_location"][j].tolist()), "yellow")
                ax.set_title(f"source: train {src}{chr(10) + '(poisoned)' if bool(data.train.poisoned[src]) else ''}",
                             fontsize=7)
            else:
                ax.set_title("not pushed", fontsize=7)
            for row, (method, m) in enumerate(maps.items(), start=2):
                show_map(axes[row][col], m[0, v])
                outline(axes[row][col], split.masks[image_index])
                if col == 1:
                    axes[row][0].text(0.5, 0.5, method, ha="center", va="center", fontsize=8,
                                      color=method_style(method).color)
        axes[1][0].text(0.5, 0.5, "source patch", ha="center", va="center", fontsize=8)
        clear_axes(axes)
        fig.suptitle(f"{scenario} · {kind}{'' if seed is None else f' · seed {seed}'}: this looks like that")
        fig.supxlabel(_wrap(PROTOTYPE_NOTE, 110), fontsize=7)
        name = save(fig, out, f"prototypes-{slug(scenario)}-{slug(kind)}.png")
    return name


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width))


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
                     columns: int = 5) -> str:
    """Per clusterer input (an explainer's maps, activations, ...): its 2-D embedding coloured by the true
    poisoned flag, then by each clusterer's clusters (the flagged cluster orange) with the truth as marker.

    ``panels``: source -> ``(embedding, truth, {clusterer: labels or (labels, flagged)}[, note])``. The panels
    flow in reading order, ``columns`` a row (page width), each clusterer's panel titled "source × clusterer",
    so a figure of 12 inputs stays about a page tall; the legend is on top, where the reader starts.
    """
    items: list[tuple] = []
    for source, panel in panels.items():
        emb, truth, found = panel[:3]
        note = panel[3] if len(panel) > 3 else ""
        items += [("truth", source, emb, truth, None, note)]
        items += [("found", f"{source} × {c}", emb, truth, f, "") for c, f in found.items()]
    ncols = max(1, min(columns, len(items)))
    nrows = -(-len(items) // ncols)
    with page_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(min(PAGE_WIDTH, 1.4 * ncols), 1.55 * nrows + 0.8),
                                 squeeze=False, layout="constrained")
        for ax, (what, title, emb, truth, found, note) in zip(axes.flat, items):
            if what == "truth":
                _scatter_truth(ax, emb, truth, [TRUTH_COLORS[bool(t)] for t in truth])
                ax.set_title("\n".join(textwrap.wrap(title, 22) + textwrap.wrap(f"({note})", 24)), fontsize=7.5,
                             color=method_style(title).color, fontweight="bold")
            else:
                labels, flagged = found if isinstance(found, tuple) else (found, None)
                _scatter_truth(ax, emb, truth, _flag_colors(np.asarray(labels), flagged))
                ax.set_title("\n".join(textwrap.wrap(title, 22)), fontsize=7.5)
        for ax in list(axes.flat)[len(items):]:
            ax.axis("off")
        clear_axes(axes)
        from matplotlib.lines import Line2D

        def mark(color, marker, label):
            return Line2D([], [], ls="", marker=marker, color=color, markersize=6, label=label)

        handles = [mark(TRUTH_COLORS[False], TRUTH_MARKERS[False], "clean (truth)"),
                   mark(TRUTH_COLORS[True], TRUTH_MARKERS[True], "poisoned (truth)"),
                   mark(FLAGGED_COLOR, "s", "flagged cluster"),
                   mark(OTHER_CLUSTER_COLORS[0], "s", "other cluster(s)")]
        # the title heads the legend: a suptitle and a legend both "outside upper center" overlap
        fig.legend(handles=handles, loc="outside upper center", ncols=4, frameon=False, title_fontsize=10,
                   title=f"{scenario} · {kind}{'' if seed is None else f' · seed {seed}'}: what the clusterers "
                         "saw (2-D embedding)")
        name = save(fig, out, f"embedding-{slug(scenario)}-{slug(kind)}.png")
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
                outline(axes[row][col], data.train.masks[int(index[i])])
            label = f"channel {channels[v]}" if v < len(channels) else f"view {v}"
            if shares is not None:
                label += f"\n{100 * float(shares[v]):.1f} % of\nthe relevance"
            axes[row][0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
        clear_axes(axes)
        at = f" at layer {layer}" if layer else ""
        fig.suptitle(f"{scenario} · {kind} · {explainer}{'' if seed is None else f' · seed {seed}'}: top concepts"
                     f"{at} of {class_name(data, data.inspect_class)}")
        share_note = (f"share: the channel's relevance{at}, summed over the class's {len(index)} training "
                      "images, over the sum of |that| over all channels (negative: the concept speaks against "
                      "the class). " if shares is not None else "")
        fig.supxlabel(_wrap(f"{share_note}Each row: the training images with the most relevance for the concept, "
                            "masked by its conditional map (dark: no relevance); green: the artifact.", 90),
                      fontsize=7)
        name = save(fig, out, f"concepts-{slug(scenario)}-{slug(kind)}-{slug(explainer)}.png")
    return name


def session_figures(runner, out: Path, log: Callable[[str], None] = print) -> list[Figure]:
    """Gallery, prototypes, embeddings and concepts per (scenario, first seed, model kind), drawn from the
    cache: the run's figure-input nodes (:mod:`hansbench.bench.engine.nodes.figure_inputs`) computed what they show.

    Nothing is computed here: a figure whose inputs are not in the cache (the run was interrupted, or its
    node failed) is skipped; each figure is drawn on its own and one that fails is logged and skipped.
    """
    plan = runner.last_plan
    if plan is None:
        return []
    env, figs = runner.env, []
    for node in plan.figures:
        found = env.cached_output(node)
        data = env.cached_output(node.inputs["model"].inputs["data"])
        scenario, seed, kind = node.ids["scenario"], node.ids["seed"], node.ids["model"]
        if found is None or data is None:
            log(f"figures for {scenario} {kind} skipped: their inputs are not in the cache")
            continue
        for part, err in found["errors"].items():
            log(f"{part} figure input for {scenario} {kind} failed: {err}")
        for what, draw in (("gallery", _gallery), ("prototype", _prototypes), ("embedding", _embeddings),
                           ("concept", _concepts)):
            try:
                figs += [f for f in draw(scenario, kind, seed, found, data, out) if f is not None]
            except Exception as exc:  # a figure must never cost the results
                log(f"{what} figure for {scenario} {kind} skipped: {type(exc).__name__}: {exc}")
    return figs


def _gallery(scenario, kind, seed, found, data, out) -> list[Figure | None]:
    idx, maps = found["index"], found["maps"]
    if not maps or idx.numel() == 0:
        return []
    targets = data.explain_targets("artifact_test", idx)
    titles = [f"explained: {class_name(data, int(t))}" for t in targets]
    name = gallery(scenario, kind, data.artifact_test.images[idx], maps, out, masks=data.artifact_test.masks[idx],
                   titles=titles, suptitle=f"{scenario} · {kind} · seed {seed}: maps of artifact-test images")
    rule = data.explain_rule("artifact_test", idx)
    return [new_figure(scenario, name, f"{kind} (seed {seed}): maps of artifact-test images of the affected class, "
                                    f"explained for {'the backdoor target' if rule == 'target' else 'their label'}"
                                    " (views summed; each map scaled to its own largest |relevance|; green "
                                    "outline: the artifact)")]


def _prototypes(scenario, kind, seed, found, data, out) -> list[Figure | None]:
    from hansbench.registry import explainers  # plugins register on first use of the registry

    panel = found.get("prototypes")
    maps = {e: m[:1] for e, m in found["maps"].items()
            if getattr(explainers.get(e), "views", "") == "prototypes"}
    if panel is None or not maps:
        return []
    name = prototype_figure(scenario, kind, panel, data, maps, out, seed=seed)
    return [None if name is None else new_figure(
        scenario, name, f"{kind} (seed {seed}): this looks like that: a test image, its top prototypes of the "
                        "explained class (titles: similarity score × last-layer weight = contribution to the "
                        "class logit; yellow box: the most similar patch), their source training patches and "
                        "each method's map per prototype")]


def _embeddings(scenario, kind, seed, found, data, out) -> list[Figure | None]:
    if not found["embeddings"]:
        return []
    truth = data.train.poisoned[data.train.of_class(data.inspect_class)].numpy().astype(bool)
    panels = {source: (p["embedding"].numpy(), truth,
                       {c: (f["labels"].numpy(), None if f["flagged"] < 0 else f["flagged"])
                        for c, f in p["clusterers"].items()}, p["note"])
              for source, p in found["embeddings"].items()}
    name = embedding_figure(scenario, kind, panels, out, seed=seed)
    return [new_figure(scenario, name, f"{kind} (seed {seed}): what the clusterers saw (the inspected class's training "
                                    "maps, activations or pixels; 2-D spectral embedding, PCA where the kNN "
                                    "graph falls apart), coloured by the true poisoned flag, then by each "
                                    "clusterer's clusters (orange: the cluster it flags), marker = truth")]


def _concepts(scenario, kind, seed, found, data, out) -> list[Figure | None]:
    figs = []
    for explainer, c in found["concepts"].items():
        name = concept_figure(scenario, kind, explainer, data, c["index"], c["maps"], c["channels"].tolist(), out,
                              layer=c["layer"], shares=c["shares"], seed=seed)
        figs.append(new_figure(scenario, name, f"{kind} · {explainer} (seed {seed}): the inspected class's top "
                                            f"concepts (channels of layer {c['layer'] or '?'}, each with its share "
                                            "of the relevance there), reference images masked by each concept's "
                                            "conditional map"))
    return figs
