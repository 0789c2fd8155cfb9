"""The explorer's HTML: one page per (scenario, model kind, seed) and the index, every name escaped
(:func:`~hansbench.bench.report.escape.html_text`) and the page's data embedded as JSON that cannot end its
``<script>`` block (:func:`json_block`)."""

from __future__ import annotations

import json
import math
from typing import Any

from hansbench.bench.report.escape import html_text
from hansbench.bench.report.explorer.links import INDEX, detector_id, page_path

LEADERBOARD = "leaderboard.html"
DATA_ID = "explorer-data"


def _finite(x: Any) -> Any:
    """``x`` with every non-finite float as None (JSON has no NaN)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def json_block(data: Any) -> str:
    """``data`` as JSON safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&`` as ``\\u``
    escapes (no ``</script>`` or ``<!--`` can appear), everything else ASCII."""
    text = json.dumps(_finite(data), ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _head(title: str, depth: int) -> str:
    up = "../" * depth
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
            f"content='width=device-width'><title>{html_text(title)}</title>"
            f"<link rel='stylesheet' href='{up}explorer.css'></head><body>")


def view_page(data: dict, seeds: list[int]) -> str:
    """One (scenario, model kind, seed)'s page: links back to the leaderboard, to the index and to the other
    seeds, the controls, the panels the script fills, and the data."""
    sc, model, seed = data["scenario"], data["model"], data["seed"]
    title = f"{sc} · {model} · seed {seed}: what the detectors grouped"
    others = " ".join(f"<a href='../{html_text(page_path(sc, model, s))}'>{int(s)}</a>" if s != seed
                      else f"<strong>{int(s)}</strong>" for s in seeds)
    n = data.get("n", 0)
    about = (f"The {n} training images of the inspected class {html_text(data.get('class', '?'))} that the "
             "detectors cluster. Pick a detector (an explainer's maps or another input, times a clusterer); colour "
             "its 2-D embedding by its clusters or by the ground truth; hover over or click a point to see its "
             "image and map; click a cluster to show only its points. Each cluster lists its share of the class, "
             "its most typical images (nearest the cluster's centre in what the clusterer saw) with their maps, its "
             "mean map and what every flagging rule decided about it, and why. 'compare with' puts a second "
             "detector beside the first: the same image is highlighted in both.")
    return "\n".join([
        _head(title, 1),
        f"<header><a href='../../{LEADERBOARD}'>← leaderboard</a><a href='../{INDEX}'>all explorer pages</a>"
        f"seeds: {others}</header>",
        f"<h1>{html_text(title)}</h1>", f"<p class='about'>{about}</p>",
        "<div id='controls'></div><p id='legend'></p><main><div id='panels'></div><aside id='detail'></aside></main>",
        f"<script type='application/json' id='{DATA_ID}'>{json_block(data)}</script>",
        "<script src='../explorer.js'></script></body></html>"])


def index_page(title: str, pages: list[dict]) -> str:
    """The explorer's index: per page its scenario, model kind, seed and a link per detector."""
    rows = []
    for d in pages:
        path = page_path(d["scenario"], d["model"], d["seed"])
        links = " · ".join(f"<a href='{html_text(path)}#a={html_text(detector_id(x['source'], x['clusterer']))}'>"
                           f"{html_text(x['source'])} × {html_text(x['clusterer'])}</a>" for x in d["detectors"])
        rows.append(f"<tr><td>{html_text(d['scenario'])}</td><td>{html_text(d['model'])}</td>"
                    f"<td><a href='{html_text(path)}'>{int(d['seed'])}</a></td>"
                    f"<td>{links or html_text(d.get('missing', 'no detector in the cache'))}</td></tr>")
    return "\n".join([
        _head(title, 0), f"<header><a href='../{LEADERBOARD}'>← leaderboard</a></header>",
        f"<h1>{html_text(title)}</h1>",
        "<p class='about'>One page per scenario, model kind and seed; each shows every detector of that model on "
        "the inspected class's training images (docs/explorer.md).</p>",
        "<table class='index'><thead><tr><th>scenario</th><th>model</th><th>seed</th><th>detectors</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>"])
