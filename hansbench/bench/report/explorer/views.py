"""One explorer page's data, from the cached outputs of its nodes (:mod:`.slots`): the class's training images,
per source (an explainer's maps, activations, pixels, ...) their 2-D embedding, per detector its clusters (size,
share, colour, most typical images, mean map) and what every flagging rule decided about each and why.

Reading only, with one exception cached like a node output: where the figure inputs hold no embedding (every
seed but the first), the same :func:`~hansbench.bench.engine.nodes.figure_inputs.embed` computes one, and the
typical images (nearest their cluster's centre in the clusterer's own views) are found once; both are stored in
the workspace under a key of the clusterings and this code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hansbench.bench.engine import keys
from hansbench.bench.engine.nodes import clustering as clustering_node
from hansbench.bench.engine.nodes.figure_inputs import embed
from hansbench.bench.engine.nodes.maps import cluster_index
from hansbench.bench.report.explorer import sprites
from hansbench.bench.report.explorer.links import detector_id
from hansbench.bench.report.explorer.slots import Slot
from hansbench.bench.report.figures.maps import class_name
from hansbench.bench.report.figures.styles import FLAGGED_COLOR, TRUTH_COLORS

VERSION = "1"  # bump when what the cached geometry holds changes
TYPICAL = 8  # images per cluster gallery
GRID = 1000  # embedding coordinates as integers 0..GRID (small JSON)
# the clusterer's own flagged cluster is orange, as in the embedding figure; the others in Paul Tol's muted colours
CLUSTER_COLORS = ("#332288", "#44AA99", "#882255", "#DDCC77", "#117733", "#88CCEE", "#AA4499", "#999933", "#777777")


def cluster_colors(ids: list[int], flagged: int | None) -> dict[int, str]:
    """A colour per cluster label: the clusterer's own flagged cluster orange, the others in label order."""
    others = [c for c in sorted(ids) if c != flagged]
    table = {c: CLUSTER_COLORS[i % len(CLUSTER_COLORS)] for i, c in enumerate(others)}
    return {c: FLAGGED_COLOR if c == flagged else table[c] for c in ids}


def decision(flagged: np.ndarray, members: np.ndarray, abstained: bool) -> str:
    """What a rule decided about one cluster: abstained, flagged, not flagged, or k of n flagged."""
    if abstained:
        return "abstained"
    k, n = int((flagged & members).sum()), int(members.sum())
    return "flagged" if k == n and n else "not flagged" if k == 0 else f"{k} of {n} flagged"


def typical(x: np.ndarray, labels: np.ndarray, k: int = TYPICAL) -> dict[int, list[int]]:
    """Per cluster the ``k`` members nearest its centre in ``x`` (``[N, D]``), nearest first."""
    out = {}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        d = ((x[members] - x[members].mean(0)) ** 2).sum(1)
        out[int(c)] = members[np.argsort(d, kind="stable")[:k]].tolist()
    return out


def geometry(env, nodes: list, results: dict, figure: dict | None, seed: int) -> dict:
    """A source's embedding (the figure inputs' where they hold it, else :func:`embed`) and every clustering's
    typical images; computed once, cached in the workspace."""
    source = nodes[0].params["source"]
    key = keys.digest({"explorer": VERSION, "clusterings": sorted(n.key for n in nodes),
                       "code": keys.code_version(embed, typical)})

    def compute() -> dict:
        views = clustering_node.views(env, nodes[0])
        x = views.reshape(views.shape[0], -1).astype(np.float64)
        x = (x - x.mean(0)) / (x.std(0) + 1e-12)
        found = (figure or {}).get("embeddings", {}).get(source)
        if found is not None and len(found["embedding"]) == len(x):
            emb, note = found["embedding"].numpy(), found["note"]
        else:
            emb, note = embed(views, seed=seed)
        return {"embedding": torch.as_tensor(np.asarray(emb, dtype=np.float64)), "note": note,
                "typical": {n.params["clusterer"]: typical(x, np.asarray(results[n.key].labels)) for n in nodes}}

    return env.ws.cached("explorer", key, compute)


def grid_xy(emb: np.ndarray) -> list[int]:
    """``[N, 2]`` as flat integers 0..GRID per axis (y up), the page's coordinates."""
    lo, span = emb.min(0), np.ptp(emb, axis=0)
    scaled = (emb - lo) / np.where(span > 0, span, 1.0)
    scaled[:, 1] = 1 - scaled[:, 1]
    return np.rint(scaled * GRID).astype(int).ravel().tolist()


def rule_entry(rule: str, flagging) -> dict:
    """One rule's answer as the page shows it: flagged points, abstained, the reason, the threshold it used."""
    info = dict(flagging.info or {})
    silhouette = info.get("silhouette_threshold", info.get("threshold"))
    return {"rule": rule, "abstained": bool(flagging.abstained), "reason": str(flagging.reason),
            "flagged": np.flatnonzero(np.asarray(flagging.flagged, dtype=bool)).tolist(),
            "size_threshold": info.get("size_threshold"),
            "silhouette": (info.get("silhouette"), silhouette) if silhouette is not None else None}


def against(answer: dict, share: float) -> str:
    """The numbers a rule weighed for one cluster: its share against the size threshold, the split's silhouette
    against the silhouette threshold ("" where the rule used neither)."""
    out = []
    if answer["silhouette"] is not None and answer["silhouette"][0] is not None:
        out.append(f"silhouette {float(answer['silhouette'][0]):.3f} vs threshold {float(answer['silhouette'][1]):g}")
    if answer["size_threshold"] is not None:
        out.append(f"share {share:.2f} vs threshold {float(answer['size_threshold']):g}")
    return "; ".join(out)


def detector(node, result, rules: dict, geo: dict, poisoned: np.ndarray, means: Callable) -> dict:
    """One detector's view: its labels, clusters (colour, size, share, truth count, typical images, mean tile,
    every rule's decision) and rules."""
    labels = np.asarray(result.labels).astype(int)
    flagged = int(result.flagged) if int(result.flagged) >= 0 else None
    ids = sorted(int(c) for c in np.unique(labels))
    colors = cluster_colors(ids, flagged)
    answers = {r: rule_entry(r, f) for r, f in rules.items() if f is not None}
    masks = {r: np.asarray(f.flagged, dtype=bool) for r, f in rules.items() if f is not None}
    clusters = []
    for c in ids:
        members = labels == c
        clusters.append({"label": c, "size": int(members.sum()), "share": float(members.mean()), "color": colors[c],
                         "poisoned": int((members & poisoned).sum()), "own_flagged": c == flagged,
                         "typical": geo["typical"].get(node.params["clusterer"], {}).get(c, []),
                         "mean": means(members),
                         "rules": [{"rule": r, "decision": decision(masks[r], members, a["abstained"]),
                                    "reason": a["reason"], "against": against(a, float(members.mean()))}
                                   for r, a in answers.items()]})
    return {"id": detector_id(node.params["source"], node.params["clusterer"]), "source": node.params["source"],
            "clusterer": node.params["clusterer"], "labels": labels.tolist(), "clusters": clusters,
            "rules": list(answers.values()), "silhouette": (result.info or {}).get("silhouette")}


def page_data(slot: Slot, env, folder: Path, log: Callable[[str], None] = print) -> dict:
    """The page of ``slot``: every detector whose clustering is cached; sprite sheets written into ``folder``."""
    base = {"scenario": slot.scenario, "model": slot.model, "seed": slot.seed, "detectors": [], "sources": {}}
    data = env.cached_output(slot.data_node)
    if data is None:
        return {**base, "missing": "the scenario's data is not in the cache (the run did not get this far)"}
    index = cluster_index(data)
    poisoned = data.train.poisoned[index].numpy().astype(bool)
    images = data.train.images[index]
    sheets = folder / sprites.SHEETS
    img = sprites.write_sheet(sheets, f"img-{keys.digest([slot.data_node.key, VERSION], 16)}.png",
                              sprites.image_tiles(images))
    figure = env.cached_output(slot.figure) if slot.figure is not None else None
    mean_tiles: dict[str, list[np.ndarray]] = {}  # per kind (a map's mean, an image's mean): one sheet each
    by_source: dict[str, list] = {}
    for n in slot.clusterings.values():
        by_source.setdefault(n.params["source"], []).append(n)
    out = {**base, "n": len(index), "index": index.tolist(), "poisoned": poisoned.astype(int).tolist(),
           "class": class_name(data, int(data.inspect_class)), "images": img, "truth_colors": {
               "clean": TRUTH_COLORS[False], "poisoned": TRUTH_COLORS[True]}}
    for source, nodes in by_source.items():
        try:
            out["sources"][source], dets = _source(env, slot, source, nodes, figure, images, poisoned, sheets,
                                                   mean_tiles)
            out["detectors"] += dets
        except Exception as exc:  # one source's view must never cost the page
            log(f"explorer: {slot.scenario} {slot.model} seed {slot.seed} {source} skipped: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}")
    out["means"] = {}
    for kind, found in mean_tiles.items():
        tiles = np.stack(found)
        out["means"][kind] = sprites.write_sheet(sheets, f"mean-{_tiles_key(tiles)}.png", tiles)
    return out


def _tiles_key(tiles: np.ndarray) -> str:
    """The mean sheet's key: its own content (what it shows is computed here, from the page's clusterings)."""
    import hashlib

    return hashlib.sha256(VERSION.encode() + tiles.tobytes()).hexdigest()[:16]


def _source(env, slot, source, nodes, figure, images, poisoned, sheets, mean_tiles) -> tuple[dict, list]:
    """One source's embedding and map sheet, and its detectors."""
    results = {n.key: env.cached_output(n) for n in nodes}
    nodes = [n for n in nodes if results[n.key] is not None]
    if not nodes:
        return {"missing": "no clustering of this input is in the cache"}, []
    geo = geometry(env, nodes, results, figure, slot.seed)
    maps_node = nodes[0].inputs.get("maps")
    maps = env.cached_output(maps_node) if maps_node is not None else None
    entry = {"xy": grid_xy(geo["embedding"].numpy()), "note": geo["note"], "maps": None}
    if maps is not None:
        settings = dict(nodes[0].params.get("views") or {})
        pooled = sprites.pooled_maps(maps, settings)
        unit = sprites.unit_maps(pooled)
        name = f"map-{keys.digest([maps_node.key, settings, sprites.VERSION], 16)}.png"
        entry["maps"] = sprites.write_sheet(sheets, name, sprites.map_tiles(pooled))
        entry["scales"] = sprites.scales(pooled)

    kind = "map" if maps is not None else "image"

    def means(members: np.ndarray) -> int:
        sel = torch.as_tensor(members)
        if maps is not None:
            tile = sprites.map_tiles(unit[sel].mean(0, keepdim=True))[0]
        else:
            tile = sprites.image_tiles(images[sel].mean(0, keepdim=True))[0]
        mean_tiles.setdefault(kind, []).append(tile)
        return len(mean_tiles[kind]) - 1

    dets = [detector(n, results[n.key], {r: env.cached_output(f) for r, f in slot.rules.get(n.key, {}).items()},
                     geo, poisoned, means) for n in nodes]
    entry["mean_kind"] = kind
    return entry, dets
