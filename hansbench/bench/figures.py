"""Figures for the report, and ``hansbench explain``.

- :func:`ordering_curves`: from the rows alone (a metric that stores a mean curve as JSON ``{"curve": [...]}``
  in ``detail`` gets curves, e.g. relevance ordering / deletion, PRP Fig. 8 and 10), one line per
  explainer, the metric's reference explainer (``reference_explainer``) dashed.
- :func:`session_figures`: from the run's cached models, maps and clusterings (never trained for a figure):
  the gallery of maps per method, explained for the class the scenario's rule says (the target on
  backdoor images), the artifact's mask outlined; "this looks like that" for ProtoPNet (a test image, its
  top prototypes, their source training patches and each prototype-view explainer's maps, PRP Fig. 11);
  cluster embeddings (2-D spectral embedding of the clusterers' inputs) coloured by the true poisoned flag
  and by each clusterer's clusters; for concept explainers (an explainer object with ``concepts_``,
  e.g. CRP): reference images of the inspected class's top concepts masked by their conditional maps
  (CRP paper Fig. 2).
- :func:`explain_image`: the maps of one image from every named method, from a finished run's cache.

Which explainers get which figure is decided by their declared attributes (``views == "prototypes"``,
``concepts_``), never by their names.
"""

# ruff: noqa: B023  (session_figures: each closure is called in the loop iteration that defines it)

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402


@dataclass
class Figure:
    """A figure file in the results directory, the scenario it belongs to, and what it shows."""

    scenario: str
    file: str
    caption: str


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))


def _style():
    import seaborn as sns

    return sns.axes_style("whitegrid")


def _curve(detail: str) -> list[float] | None:
    """The mean curve a row stores in ``detail`` (JSON with a ``curve`` list)."""
    try:
        value = json.loads(detail)
    except (TypeError, ValueError):
        return None
    curve = value.get("curve") if isinstance(value, dict) else value
    return curve if isinstance(curve, list) and curve else None


def _reference(family: str) -> str:
    from hansbench.bench.leaderboard import presentation

    return presentation(family).reference_explainer


def ordering_curves(rows: pd.DataFrame, out: Path) -> list[Figure]:
    """One PNG per scenario x model x value with curves: the mean curve per explainer and split."""
    if rows.empty or "detail" not in rows:
        return []
    rows = rows.fillna({c: "" for c in ("explainer", "clusterer", "split", "family", "detail")})
    d = rows[rows.clusterer == ""]
    d = d.assign(curve=d.detail.map(_curve)).dropna(subset=["curve"])
    files = []
    for (scenario, model, family, metric), g in d.groupby(["scenario", "model", "family", "metric"], sort=False):
        ref = _reference(family)
        splits = list(dict.fromkeys(g.split))
        with _style():
            fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 3.6), squeeze=False)
            palette = plt.get_cmap("tab10")
            others = [e for e in dict.fromkeys(g.explainer) if e != ref]
            for ax, split in zip(axes[0], splits):
                for explainer, e in g[g.split == split].groupby("explainer", sort=False):
                    lengths = {len(c) for c in e.curve}
                    if len(lengths) != 1:
                        continue
                    curves = np.array(list(e.curve), dtype=float)
                    y, x = curves.mean(0), np.linspace(0, 1, curves.shape[1])
                    if explainer == ref:
                        ax.plot(x, y, color="black", ls="--", lw=2, label=f"{explainer} (reference)")
                    else:
                        ax.plot(x, y, color=palette(others.index(explainer) % 10), lw=1.6, label=explainer)
                    if len(curves) > 1:
                        ax.fill_between(x, curves.min(0), curves.max(0), alpha=0.12,
                                        color="black" if explainer == ref else palette(others.index(explainer) % 10))
                ax.set(title=split or "all", xlabel="share of pixels, most relevant first", ylabel=metric)
            axes[0][-1].legend(fontsize=7, loc="best")
            note = "" if (g.explainer == ref).any() else f" (no '{ref}' reference in this run)"
            fig.suptitle(f"{scenario} · {model} · {metric}{note}", fontsize=10)
            fig.tight_layout()
            name = f"curves-{_safe(scenario)}-{_safe(model)}-{_safe(metric)}.png"
            fig.savefig(out / name, dpi=90)
            plt.close(fig)
        files.append(Figure(str(scenario), name, f"{family}: mean {metric} curve per explainer ({model}), "
                                                  f"reference dashed; band = range over seeds"))
    return files


def _class_name(data, c: int) -> str:
    names = getattr(data, "class_names", None) or []
    return names[c] if 0 <= c < len(names) else str(c)


def _outline(ax, mask: torch.Tensor | None) -> None:
    if mask is not None and bool(mask.any()):
        ax.contour(mask.float().numpy(), levels=[0.5], colors="lime", linewidths=0.9)


def _show_map(ax, m: torch.Tensor) -> None:
    lim = float(m.abs().max()) or 1.0
    ax.imshow(m.numpy(), cmap="bwr", vmin=-lim, vmax=lim)


def _clear(axes) -> None:
    for ax in np.asarray(axes).flat:
        ax.set_xticks([])
        ax.set_yticks([])


def gallery(scenario: str, model: str, images: torch.Tensor, maps: dict[str, torch.Tensor], out: Path,
            masks: torch.Tensor | None = None, titles: list[str] | None = None, name: str | None = None,
            suptitle: str | None = None) -> str:
    """Images (top row) and each explainer's map (summed over views), the artifact mask outlined."""
    n = images.shape[0]
    fig, axes = plt.subplots(len(maps) + 1, n, figsize=(1.4 * n + 0.8, 1.4 * (len(maps) + 1)), squeeze=False)
    for j in range(n):
        axes[0][j].imshow(images[j].permute(1, 2, 0).clamp(0, 1).numpy())
        _outline(axes[0][j], None if masks is None else masks[j])
        if titles:
            axes[0][j].set_title(titles[j], fontsize=6)
    axes[0][0].set_ylabel("image", fontsize=7)
    for i, (method, m) in enumerate(maps.items(), start=1):
        m = m.sum(1)
        for j in range(n):
            _show_map(axes[i][j], m[j])
            _outline(axes[i][j], None if masks is None else masks[j])
        axes[i][0].set_ylabel(method, fontsize=7, rotation=0, ha="right")
    _clear(axes)
    fig.suptitle(suptitle or f"{scenario} · {model}: maps of artifact-test images (green: the artifact)", fontsize=9)
    fig.tight_layout()
    name = name or f"gallery-{_safe(scenario)}-{_safe(model)}.png"
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def prototype_figure(scenario: str, kind: str, model, data, image_index: int, maps: dict[str, torch.Tensor],
                     out: Path, top: int = 3) -> str | None:
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
        scores = model.scores(xn)[0].cpu()
        weights = model.last_layer.weight[target].detach().cpu()
        h = model.latent(xn).shape[-1]
    contrib = scores[protos] * weights[protos]
    order = torch.argsort(contrib, descending=True)[:top]
    H = x.shape[-1]
    cell = H / h
    fig, axes = plt.subplots(2 + len(maps), len(order) + 1, figsize=(1.9 * (len(order) + 1), 1.9 * (2 + len(maps))),
                             squeeze=False)
    axes[0][0].imshow(x[0].permute(1, 2, 0).clamp(0, 1).numpy())
    _outline(axes[0][0], split.masks[image_index])
    axes[0][0].set_title(f"test image\nexplained: {_class_name(data, target)}", fontsize=7)
    for ax in axes[1:, 0]:
        ax.axis("off")
    for col, v in enumerate(order.tolist(), start=1):
        j = int(protos[v])
        src = int(model.push_image_index[j])
        ax = axes[0][col]
        ax.set_title(f"prototype {j}\nscore {float(scores[j]):.2f} × w {float(weights[j]):.2f}", fontsize=7)
        ax.imshow(x[0].permute(1, 2, 0).clamp(0, 1).numpy(), alpha=0.35)
        ax = axes[1][col]
        if 0 <= src < len(data.train):
            r, c = (int(t) for t in model.push_location[j].tolist())
            ax.imshow(data.train.images[src].permute(1, 2, 0).clamp(0, 1).numpy())
            _outline(ax, data.train.masks[src])
            ax.add_patch(plt.Rectangle((c * cell - 0.5, r * cell - 0.5), cell, cell, fill=False, ec="yellow", lw=1.5))
            ax.set_title(f"source: train {src}{' (poisoned)' if bool(data.train.poisoned[src]) else ''}", fontsize=6)
        else:
            ax.set_title("not pushed", fontsize=6)
        for row, (method, m) in enumerate(maps.items(), start=2):
            _show_map(axes[row][col], m[0, v])
            _outline(axes[row][col], split.masks[image_index])
            if col == 1:
                axes[row][0].text(0.5, 0.5, method, ha="center", va="center", fontsize=8)
    axes[1][0].text(0.5, 0.5, "source patch", ha="center", va="center", fontsize=8)
    _clear(axes)
    fig.suptitle(f"{scenario} · {kind}: this looks like that (top prototypes, their sources, their maps)",
                 fontsize=9)
    fig.tight_layout()
    name = f"prototypes-{_safe(scenario)}-{_safe(kind)}.png"
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def _embed(views: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D spectral embedding of ``[N, V, D]`` (flattened per sample); PCA if the graph is too small."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import SpectralEmbedding

    x = views.reshape(views.shape[0], -1).astype(np.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-12)
    if x.shape[0] > 12:
        try:
            return SpectralEmbedding(2, n_neighbors=min(10, x.shape[0] - 1), random_state=seed).fit_transform(x)
        except Exception:  # disconnected or degenerate graph: a linear view still shows the structure
            pass
    return PCA(2, random_state=seed).fit_transform(x) if min(x.shape) >= 2 else np.c_[x[:, :1], np.zeros(len(x))]


def embedding_figure(scenario: str, kind: str, panels: dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]],
                     out: Path) -> str:
    """Per clusterer input (an explainer's maps or activations): its 2-D embedding coloured by the true
    poisoned flag, then by each clusterer's found clusters."""
    ncols = 1 + max(len(p[2]) for p in panels.values())
    fig, axes = plt.subplots(len(panels), ncols, figsize=(2.4 * ncols, 2.3 * len(panels)), squeeze=False)
    for row, (source, (emb, truth, found)) in enumerate(panels.items()):
        ax = axes[row][0]
        ax.scatter(emb[:, 0], emb[:, 1], c=np.where(truth, "crimson", "steelblue"), s=8)
        ax.set_title(f"{source}: poisoned (red)", fontsize=7)
        for col, (clusterer, labels) in enumerate(found.items(), start=1):
            axes[row][col].scatter(emb[:, 0], emb[:, 1], c=labels, cmap="tab10", s=8, vmin=0, vmax=9)
            axes[row][col].set_title(f"{source} × {clusterer}", fontsize=7)
        for col in range(1 + len(found), ncols):
            axes[row][col].axis("off")
    _clear(axes)
    fig.suptitle(f"{scenario} · {kind}: clusterer inputs, 2-D spectral embedding", fontsize=9)
    fig.tight_layout()
    name = f"embedding-{_safe(scenario)}-{_safe(kind)}.png"
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def concept_figure(scenario: str, kind: str, explainer: str, data, index: torch.Tensor, maps: torch.Tensor,
                   channels: list[int], out: Path, n_concepts: int = 4, n_refs: int = 5) -> str:
    """CRP Fig. 2: per top concept (view) of the inspected class, the training images with the most
    relevance for it, masked by its conditional map."""
    pos = maps.clamp(min=0)
    strength = pos.flatten(2).sum(-1)  # [N, V]
    concepts = torch.argsort(strength.mean(0), descending=True)[:n_concepts].tolist()
    fig, axes = plt.subplots(len(concepts), n_refs, figsize=(1.4 * n_refs + 0.8, 1.5 * len(concepts)), squeeze=False)
    for row, v in enumerate(concepts):
        refs = torch.argsort(strength[:, v], descending=True)[:n_refs].tolist()
        for col, i in enumerate(refs):
            m = pos[i, v]
            alpha = (m / (m.max() + 1e-12)).clamp(0, 1).sqrt()
            img = data.train.images[int(index[i])].permute(1, 2, 0).clamp(0, 1) * alpha[..., None]
            axes[row][col].imshow(img.numpy())
            _outline(axes[row][col], data.train.masks[int(index[i])])
        label = f"channel {channels[v]}" if v < len(channels) else f"view {v}"
        axes[row][0].set_ylabel(label, fontsize=7, rotation=0, ha="right")
    _clear(axes)
    fig.suptitle(f"{scenario} · {kind} · {explainer}: top concepts of {_class_name(data, data.inspect_class)} "
                 "(reference images masked by the conditional map)", fontsize=8)
    fig.tight_layout()
    name = f"concepts-{_safe(scenario)}-{_safe(kind)}-{_safe(explainer)}.png"
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
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
    for (scenario, _seed, kind), nodes in _groups(plan).items():
        if (scenario, kind) in seen:
            continue
        seen.add((scenario, kind))
        model_node = _model_node(nodes)
        if model_node is None or not env.ws.has("model", model_node.key):
            continue  # never train for a figure
        data = env.output(model_node.inputs["data"])
        idx = data.artifact_test.of_class(data.affected_class, by="true_labels")[:n_images]
        idx = idx[data.artifact_test.poisoned[idx]] if data.artifact_test.poisoned[idx].any() else idx

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
                           masks=data.artifact_test.masks[idx], titles=titles)
            rule = data.explain_rule("artifact_test", idx)
            return Figure(scenario, name, f"{kind}: maps of artifact-test images of the affected class, explained for "
                                          f"{'the backdoor target' if rule == 'target' else 'their label'} "
                                          "(views summed; green outline: the artifact)")

        def draw_prototypes() -> Figure | None:
            model = env.output(model_node)
            proto_nodes = [n for n in exp_nodes if getattr(explainers.get(n.params["name"]), "views", "") == "prototypes"]
            if not proto_nodes or not hasattr(model, "push_image_index") or idx.numel() == 0:
                return None
            i = idx[:1]
            maps = {n.ids["explainer"]: env.explain_fn(n)("artifact_test", i) for n in proto_nodes}
            name = prototype_figure(scenario, kind, model, data, int(i[0]), maps, out)
            return None if name is None else Figure(
                scenario, name, f"{kind}: this looks like that: a test image, its top prototypes of the explained "
                                "class, their source training patches (yellow box) and each method's map per prototype")

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
                    panels[source] = (_embed(env.views(n), seed=int(_seed)), truth, {})
                panels[source][2][n.ids["clusterer"]] = np.asarray(env.output(n).labels)
            if not panels:
                return None
            name = embedding_figure(scenario, kind, panels, out)
            return Figure(scenario, name, f"{kind}: what the clusterers saw (the inspected class's training maps or "
                                          "activations, 2-D spectral embedding), coloured by the true poisoned flag "
                                          "and by each clusterer's clusters")

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
                exp = env.output(n)
                channels = list(exp.concepts_.get(int(data.inspect_class), []))
                name = concept_figure(scenario, kind, n.ids["explainer"], data, index, maps, channels, out)
                return Figure(scenario, name, f"{kind} · {n.ids['explainer']}: the inspected class's top concepts, "
                                              "reference images masked by each concept's conditional map")
            return draw

        attempt("gallery", draw_gallery)
        attempt("prototype", draw_prototypes)
        attempt("embedding", draw_embeddings)
        for n in exp_nodes:
            if hasattr(explainers.get(n.params["name"]), "concepts_"):
                attempt("concept", draw_concepts(n))
    return figs


# -- hansbench explain ---------------------------------------------------------------------------------
class ExplainError(RuntimeError):
    """What ``hansbench explain`` cannot do, in one line for the user."""


def _load_image(path: Path, size: int) -> torch.Tensor:
    from PIL import Image

    try:
        img = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    except OSError as exc:
        raise ExplainError(f"cannot read image {str(path)!r}: {exc}") from None
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def explain_image(image: str, *, results: str | None = None, scenario: str | None = None, model: str | None = None,
                  methods: list[str] | None = None, out: str | None = None, seed: int | None = None,
                  split: str = "artifact_test") -> Path:
    """One figure of the maps of ``image`` (a file, or an index into ``split`` of the scenario) by every
    named method, from the cached models of the finished run in ``results``. Never trains."""
    from hansbench.bench.config import SuiteError, validate
    from hansbench.bench.device import resolve_device
    from hansbench.bench.execute import EnvSpec, NodeEnv
    from hansbench.bench.graph import Planner
    from hansbench.bench.store import ResultsStore
    from hansbench.datasets.base import Split

    results_dir = Path(results or "hansbench-out/quick")
    db = results_dir / "results.sqlite"
    if not db.is_file():
        raise ExplainError(f"no results store at {str(db)!r}; run `hansbench run --out {results_dir}` first "
                           "(or give --results DIR of a finished run)")
    store = ResultsStore(db)
    try:
        row = store.conn.execute("SELECT suite, config, device FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        store.close()
    if row is None:
        raise ExplainError(f"{str(db)!r} records no run; run `hansbench run --out {results_dir}` first")
    try:
        suite = validate(json.loads(row[1]))
    except (SuiteError, ValueError) as exc:
        raise ExplainError(f"the suite of the latest run in {str(results_dir)!r} no longer validates: {exc}") from None
    scenarios = [s["name"] for s in suite.scenarios]
    scenario = scenario or scenarios[0]
    if scenario not in scenarios:
        raise ExplainError(f"scenario {scenario!r} is not in suite {suite.name!r} ({', '.join(scenarios)})")
    seed = suite.seeds[0] if seed is None else seed
    suite.seeds = [seed]
    device_type = torch.device(str(row[2] or "cpu")).type
    plan = Planner(suite, device_type).plan()
    nodes = [n for n in plan.all_nodes() if n.type == "explainer" and n.ids["scenario"] == scenario
             and (model is None or n.ids["model"] == model)]
    if model is not None and model not in suite.models:
        raise ExplainError(f"model kind {model!r} is not in suite {suite.name!r} ({', '.join(suite.models)})")
    known = sorted({n.ids["explainer"] for n in nodes})
    if methods:
        unknown = [m for m in methods if m not in known]
        if unknown:
            raise ExplainError(f"method(s) {', '.join(unknown)} not in the run for {scenario}"
                               f"{' ' + model if model else ''}; known: {', '.join(known) or '(none)'}")
        nodes = [n for n in nodes if n.ids["explainer"] in methods]
    if not nodes:
        raise ExplainError(f"no explainer of suite {suite.name!r} applies to {scenario} {model or ''}".rstrip())
    env = NodeEnv(EnvSpec(out=str(results_dir), device=str(resolve_device("auto"))))
    missing = [n.inputs["model"] for n in nodes if not env.ws.has("model", n.inputs["model"].key)]
    if missing:
        kinds = ", ".join(sorted({m.ids["model"] for m in missing}))
        raise ExplainError(f"no cached {kinds} model for {scenario} seed {seed} in {str(results_dir)!r}: run "
                           f"`hansbench run --suite {suite.name} --out {results_dir}` first (explain never trains)")
    data = env.output(nodes[0].inputs["model"].inputs["data"])
    mask = None
    if Path(image).is_file():
        x = _load_image(Path(image), data.train.images.shape[-1])
        label = Path(image).name
    else:
        try:
            i = int(image)
        except ValueError:
            raise ExplainError(f"{image!r} is neither an image file nor an index into {split}") from None
        s = data.split(split)
        if not 0 <= i < len(s):
            raise ExplainError(f"index {i} is outside {scenario}'s {split} (0..{len(s) - 1})")
        x, mask = s.images[i:i + 1], s.masks[i]
        label = f"{scenario} {split}[{i}]"
    maps, titles = {}, []
    for n in nodes:
        m = env.output(n.inputs["model"])
        if mask is not None:
            t = env.targets(data, split, torch.tensor([int(image)]))
        else:
            with torch.no_grad():
                t = m(m.normalize(x.to(env.device))).argmax(1).cpu()
        one = Split(x, t, t, torch.zeros(1, dtype=torch.bool), torch.zeros(1, *x.shape[-2:], dtype=torch.bool))
        maps[f"{n.ids['model']}: {n.ids['explainer']}"] = env.compute_maps(n, one, torch.arange(1), t)
        titles.append(_class_name(data, int(t[0])))
    target_out = Path(out or f"explain-{_safe(Path(image).stem if Path(image).is_file() else image)}.png")
    target_out.parent.mkdir(parents=True, exist_ok=True)
    explained = ", ".join(dict.fromkeys(titles))
    n = len(maps)
    fig, axes = plt.subplots(1, n + 1, figsize=(2.2 * (n + 1), 2.6), squeeze=False)
    axes[0][0].imshow(x[0].permute(1, 2, 0).clamp(0, 1).numpy())
    _outline(axes[0][0], mask)
    axes[0][0].set_title(label, fontsize=7)
    for ax, (name, m) in zip(axes[0][1:], maps.items()):
        _show_map(ax, m[0].sum(0))
        _outline(ax, mask)
        ax.set_title(name, fontsize=7)
    _clear(axes)
    fig.suptitle(f"explained class: {explained} (red: positive relevance)", fontsize=8)
    fig.tight_layout()
    fig.savefig(target_out, dpi=110)
    plt.close(fig)
    return target_out
