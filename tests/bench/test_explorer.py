"""The cluster explorer (issue 32) writes what the run's nodes computed, and nothing else: its points are the
inspected class's training images, its clusters the clustering node's labels, its flagged sets the flagging node's;
every name is escaped, and the leaderboard's detection cells link to views that exist.

One tiny run of the smoke suite whose scenario is named like an attack (``</script><img ...>``) serves every test.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from hansbench.bench.cli import main
from hansbench.bench.report.explorer import links, page, sprites, views
from hansbench.bench.suite.files import builtin_suites

HOSTILE = "</script><img src=x onerror=alert(1)>&'\"CH"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """The smoke suite, its first scenario renamed to :data:`HOSTILE`, run once (figures on: the explorer reuses
    the figure inputs' embeddings)."""
    assert "smoke" in builtin_suites()
    base = tmp_path_factory.mktemp("explorer")
    text = (Path(__file__).parents[2] / "hansbench" / "suites" / "smoke.toml").read_text()
    text, n = re.subn(r'(\[\[scenarios\]\]\s*\nname\s*=\s*)"[^"]*"', lambda m: m.group(1) + _toml_string(HOSTILE),
                      text, count=1)
    assert n == 1, "the smoke suite has no [[scenarios]] name to rename"
    suite = base / "hostile.toml"
    suite.write_text(text)
    out = base / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--no-progress"]) == 0
    return out


def page_json(path: Path) -> dict:
    """The data a page embeds (its one ``application/json`` block), parsed as the browser parses it."""
    text = path.read_text()
    m = re.search(r"<script type='application/json' id='explorer-data'>(.*?)</script>", text, re.S)
    assert m is not None, f"{path} embeds no data"
    return json.loads(m.group(1))


def pages(out: Path) -> list[Path]:
    return sorted((out / links.EXPLORER_DIR).glob("*/*.html"))


def _plan_env(out: Path):
    from hansbench.bench.engine.execute import EnvSpec, NodeEnv
    from hansbench.bench.report.explorer.slots import plan_of_results, slots

    return slots(plan_of_results(out)), NodeEnv(EnvSpec(out=str(out), device="cpu"))


def test_every_page_shows_the_inspected_class_and_the_nodes_labels_and_flagged_sets(smoke_run):
    from hansbench.bench.engine.nodes.maps import cluster_index

    found, env = _plan_env(smoke_run)
    assert len(found) == 2 and len(pages(smoke_run)) == 2, "one page per (scenario, model kind, seed)"
    checked_rules = 0
    for slot in found:
        d = page_json(smoke_run / links.EXPLORER_DIR / links.page_path(slot.scenario, slot.model, slot.seed))
        data = env.cached_output(slot.data_node)
        index = cluster_index(data)
        assert d["scenario"] == HOSTILE and d["index"] == index.tolist(), "points = the inspected class's images"
        assert d["poisoned"] == data.train.poisoned[index].int().tolist()
        assert set(data.train.labels[torch_index(d["index"])].tolist()) == {int(data.inspect_class)}
        assert len(d["detectors"]) == len(slot.clusterings)
        for node in slot.clusterings.values():
            det = next(x for x in d["detectors"] if x["id"] == links.detector_id(node.params["source"],
                                                                                 node.params["clusterer"]))
            labels = np.asarray(env.cached_output(node).labels)
            assert det["labels"] == labels.tolist(), "cluster labels = the clustering node's"
            assert len(d["sources"][det["source"]]["xy"]) == 2 * len(index)
            for c in det["clusters"]:
                members = labels == c["label"]
                assert c["size"] == members.sum() and c["share"] == pytest.approx(members.mean())
                assert set(c["typical"]) <= set(np.flatnonzero(members).tolist()), "typical images are members"
            for rule, fnode in slot.rules[node.key].items():
                answer = env.cached_output(fnode)
                shown = next(r for r in det["rules"] if r["rule"] == rule)
                assert shown["flagged"] == np.flatnonzero(answer.flagged).tolist(), "flagged set = the node's"
                assert shown["abstained"] == answer.abstained and shown["reason"] == answer.reason
                for c in det["clusters"]:
                    said = next(r for r in c["rules"] if r["rule"] == rule)["decision"]
                    inside = answer.flagged[labels == c["label"]]
                    expected = ("abstained" if answer.abstained else "flagged" if inside.all()
                                else "not flagged" if not inside.any() else f"{inside.sum()} of {inside.size} flagged")
                    assert said == expected
                checked_rules += 1
    assert checked_rules > 0


def torch_index(index: list[int]):
    import torch

    return torch.as_tensor(index, dtype=torch.long)


def test_cluster_colours_follow_the_labels():
    colors = views.cluster_colors([0, 1, 2, 5], flagged=2)
    assert colors[2] == views.FLAGGED_COLOR, "the clusterer's own flagged cluster is orange, as in the figures"
    assert len(set(colors.values())) == 4, "one colour per cluster"
    assert views.cluster_colors([5, 1, 0, 2], flagged=2) == colors, "by label, not by order of appearance"


def test_the_pages_colours_are_one_per_cluster(smoke_run):
    for p in pages(smoke_run):
        for det in page_json(p)["detectors"]:
            cols = [c["color"] for c in det["clusters"]]
            assert len(set(cols)) == len(cols)
            assert [c["label"] for c in det["clusters"]] == sorted(set(det["labels"]))


class _Texts(HTMLParser):
    """Every element and text node of a page, as a browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.tags, self.texts = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.texts.append(data)


def test_every_string_is_escaped_and_nothing_comes_from_the_network(smoke_run):
    files = [*pages(smoke_run), smoke_run / links.EXPLORER_DIR / links.INDEX]
    for f in files:
        text = f.read_text()
        assert HOSTILE not in text and "<img" not in text, f"{f.name}: the scenario's name is markup"
        parser = _Texts()
        parser.feed(text)
        assert {t for t, _ in parser.tags} <= {"html", "head", "meta", "title", "link", "body", "header", "a", "h1",
                                               "p", "div", "main", "aside", "script", "strong", "table", "thead",
                                               "tbody", "tr", "th", "td"}, "no element the page did not write"
        scripts = [a for t, a in parser.tags if t == "script"]
        assert all("src" not in a or not re.match(r"[a-z]+:|//", a["src"]) for a in scripts)
        assert not re.search(r"""(src|href)=['"](https?:)?//""", text), "nothing from the network"
        if f.name != links.INDEX:
            assert sum(1 for a in scripts if a.get("type") == "application/json") == 1
            assert any(HOSTILE in t for t in parser.texts), "the name is shown as the text it is"
    js = (smoke_run / links.EXPLORER_DIR / "explorer.js").read_text()
    assert "innerHTML" not in js and "http://" not in js.replace("http://www.w3.org/2000/svg", "")


def test_json_block_cannot_end_its_script_and_round_trips():
    data = {"name": "</script><!--<script>&\u2028", "x": [1.5, float("nan")]}
    text = page.json_block(data)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"name": data["name"], "x": [1.5, None]}


def test_leaderboard_cells_link_to_views_that_exist(smoke_run):
    html = (smoke_run / "leaderboard.html").read_text()
    hrefs = set(re.findall(r"<a href='(explorer/[^']+)'>", html))
    assert hrefs, "the detection matrix links into the explorer"
    for href in hrefs:
        path, _, fragment = href.replace("&amp;", "&").partition("#")
        assert (smoke_run / path).is_file(), href
        ids = {d["id"] for d in page_json(smoke_run / path)["detectors"]}
        assert fragment.removeprefix("a=") in ids, f"{href}: no such detector on the page"
    assert "../../leaderboard.html" in pages(smoke_run)[0].read_text(), "the view links back"


def test_sprite_tiles_are_the_images_and_written_once(smoke_run):
    from PIL import Image

    from hansbench.bench.report.explorer.write import write_explorer

    p = pages(smoke_run)[0]
    d = page_json(p)
    sheet_path = smoke_run / links.EXPLORER_DIR / d["images"]["file"]
    found, env = _plan_env(smoke_run)
    data = env.cached_output(found[0].data_node)
    tiles = sprites.image_tiles(data.train.images[torch_index(d["index"])])
    sheet = np.asarray(Image.open(sheet_path).convert("RGB"))
    w, h, cols = d["images"]["w"], d["images"]["h"], d["images"]["cols"]
    for i in (0, len(tiles) - 1):
        r, c = divmod(i, cols)
        assert np.array_equal(sheet[r * h:(r + 1) * h, c * w:(c + 1) * w], tiles[i]), f"tile {i} is image {i}"
    before = {f: f.stat().st_mtime_ns for f in sheet_path.parent.iterdir()}
    write_explorer(smoke_run, log=lambda m: None)
    assert {f: f.stat().st_mtime_ns for f in sheet_path.parent.iterdir()} == before, "sheets are written once"


def test_explore_prints_the_index_and_refuses_a_folder_without_a_run(smoke_run, tmp_path, capsys):
    assert main(["explore", "--results", str(smoke_run)]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{links.EXPLORER_DIR}/{links.INDEX}")
    assert main(["explore", "--results", str(tmp_path)]) == 2
    assert "no results store" in capsys.readouterr().err
    assert main(["explore", "--results", str(smoke_run), "--seeds", "first"]) == 0
    assert main(["report", "--out", str(smoke_run), "--explorer-seeds", "first"]) == 0
    assert len(pages(smoke_run)) == 2


# -- item 1: which seeds get pages -----------------------------------------------------------------------------------


def test_seeds_first_writes_one_page_per_scenario_and_model_and_links_only_to_written_seeds(smoke_run, monkeypatch):
    """The smoke run's one seed is shown twice (its slots again as seed + 7): ``all`` writes both pages, each linking
    to the other; ``first`` writes only the first seed's, removes the other's page and links to no seed without one."""
    import dataclasses

    from hansbench.bench.report.explorer import write

    real = write.slots
    monkeypatch.setattr(write, "slots", lambda plan: [*real(plan), *(dataclasses.replace(s, seed=s.seed + 7)
                                                                       for s in real(plan))])
    found, _ = _plan_env(smoke_run)
    folder = smoke_run / links.EXPLORER_DIR
    try:
        write.write_explorer(smoke_run, seeds="all", log=lambda m: None)
        assert len(pages(smoke_run)) == 2 * len(found)
        s = found[0]
        other = links.page_path(s.scenario, s.model, s.seed + 7)
        assert f"href='../{other}'" in (folder / links.page_path(s.scenario, s.model, s.seed)).read_text()
        write.write_explorer(smoke_run, seeds="first", log=lambda m: None)
        assert sorted(p.relative_to(folder).as_posix() for p in pages(smoke_run)) == sorted(
            links.page_path(x.scenario, x.model, x.seed) for x in found), "only the first seed's pages are left"
        for p in [*pages(smoke_run), folder / links.INDEX]:
            for href in re.findall(r"href='([^'#]+\.html)", p.read_text()):
                if not href.endswith(page.LEADERBOARD):
                    assert (p.parent / href).resolve().is_file(), f"{p.name} links to {href}, which has no page"
        with pytest.raises(ValueError, match="explorer seeds 'some'"):
            write.write_explorer(smoke_run, seeds="some", log=lambda m: None)
    finally:
        monkeypatch.undo()
        write.write_explorer(smoke_run, log=lambda m: None)
    assert len(pages(smoke_run)) == len(found)


def test_the_suite_setting_chooses_the_seeds_and_is_checked():
    from hansbench.bench.report.explorer.write import seeds_setting
    from hansbench.bench.suite.config import SuiteError, validate

    base = {"models": {"classifier": {}}, "scenarios": [dict(name="CH", poisoning="CH", fraction=0.5)]}
    assert seeds_setting(validate({**base, "suite": {"seeds": [1]}})) == "all", "a user's own run: every seed"
    assert seeds_setting(validate({**base, "suite": {"seeds": [1], "explorer_seeds": "first"}})) == "first"
    with pytest.raises(SuiteError, match="suite.explorer_seeds: 'none'; expected 'first'"):
        validate({**base, "suite": {"seeds": [1], "explorer_seeds": "none"}})


# -- item 2: one drawing of a map ------------------------------------------------------------------------------------


def _tile(sheet: np.ndarray, meta: dict, i: int) -> np.ndarray:
    r, c = divmod(i, meta["cols"])
    return sheet[r * meta["h"]:(r + 1) * meta["h"], c * meta["w"]:(c + 1) * meta["w"]]


def test_map_tiles_are_the_figures_drawing_of_what_the_clusterer_saw(smoke_run):
    """A map tile is the clusterer's own input (the maps average-pooled to ``map_size``, views summed), coloured by
    the figures' :func:`map_rgb`; its stated scale is its largest |value|, as ``hansbench explain`` states it."""
    import torch
    from PIL import Image

    from hansbench.bench.report.figures.image_maps import scale_label
    from hansbench.bench.report.figures.maps import map_rgb
    from hansbench.methods.inputs import Maps

    found, env = _plan_env(smoke_run)
    checked = 0
    for slot in found:
        d = page_json(smoke_run / links.EXPLORER_DIR / links.page_path(slot.scenario, slot.model, slot.seed))
        for node in slot.clusterings.values():
            maps_node = node.inputs.get("maps")
            if maps_node is None:
                continue
            maps = env.cached_output(maps_node)
            side = int(round(Maps.from_maps(maps[:1], node.params["views"]).shape[-1] ** 0.5))
            seen = torch.as_tensor(Maps.from_maps(maps, node.params["views"])).reshape(len(maps), -1, side, side)
            seen = seen.sum(1)  # the clusterer's views, summed as every map panel sums them
            src = d["sources"][node.params["source"]]
            assert (src["maps"]["w"], src["maps"]["h"]) == (side, side) and side < maps.shape[-1]
            sheet = np.asarray(Image.open(smoke_run / links.EXPLORER_DIR / src["maps"]["file"]).convert("RGB"))
            for i in (0, len(seen) // 2, len(seen) - 1):
                assert np.array_equal(_tile(sheet, src["maps"], i), map_rgb(seen[i])), f"map tile {i}"
                assert "±" + src["scales"][i] == scale_label(seen[i]) or (
                    src["scales"][i] == "0" and scale_label(seen[i]).startswith("±0")), "the scale explain states"
            checked += 1
    assert checked > 0, "the smoke run has a clustering of maps"


def test_the_figures_draw_a_map_in_map_rgb_colours():
    """``show_map`` (the galleries, ``hansbench explain``) and :func:`map_rgb` (the explorer's tiles) give one map
    the same colours: one colour map, each map scaled to its own largest |value|, white zero."""
    import matplotlib.pyplot as plt
    import torch

    from hansbench.bench.report.figures.maps import map_rgb, show_map

    gen = torch.Generator().manual_seed(0)
    for m in (torch.randn(11, 11, generator=gen), 1e-6 * torch.rand(7, 9, generator=gen), torch.zeros(4, 4)):
        fig, ax = plt.subplots()
        try:
            show_map(ax, m)
            im = ax.images[0]
            assert np.array_equal(im.to_rgba(im.get_array(), bytes=True)[..., :3], map_rgb(m))
        finally:
            plt.close(fig)
    assert (map_rgb(torch.zeros(3, 3)) >= 250).all(), "zero is white (bwr's middle entry)"
    both = map_rgb(torch.stack([torch.ones(2, 2), 5 * torch.ones(2, 2)]))
    assert np.array_equal(both[0], both[1]), "each map on its own scale"


# -- item 3: from the summary's best detector into the explorer ------------------------------------------------------

_BASE = dict(scenario="CH-50", model="classifier", explainer="", clusterer="", rule="", split="", stage="", detail="",
             unit="", family="cluster-detection", higher_is_better=True)
_SEEDS = (3, 4, 5)  # the first seed is 3, not 0: the link must name the run's own first seed


def _split(e, c, ari):
    return [dict(explainer=e, clusterer=c, metric=m, value=ari, seed=s) for s in _SEEDS
            for m in ("cluster-ari", "cluster-f1")]


def _flags(e, c, rule, f1):
    fam = dict(family="flag-detection", explainer=e, clusterer=c, rule=rule)
    return [dict(**fam, **x, seed=s) for s in _SEEDS for x in (
        dict(metric="flag-f1", value=f1), dict(metric="abstained", value=0, unit="bool", higher_is_better=False),
        dict(metric="flagged-fraction", value=0.3, higher_is_better=False),
        dict(metric="flagged-fraction", value=0.1, scenario="clean", higher_is_better=False))]


def test_the_summarys_best_detector_links_to_its_view():
    """gradcam x spray separates best (ARI 0.9 against lrp's 0.4) and flags best: its summary cells link to its
    view on seed 3; activation clustering, the best baseline, to its own."""
    import pandas as pd

    from hansbench.bench.engine.store import ROW_COLUMNS
    from hansbench.bench.report.leaderboard import build_sections
    from hansbench.bench.report.page import _summary
    from hansbench.bench.report.render.html import html_table
    from hansbench.bench.report.summary import LINKS_KEY
    from hansbench.bench.suite.config import validate
    from hansbench.bench.suite.record import to_record

    recs = (_split("lrp", "spray", 0.4) + _split("gradcam", "spray", 0.9) + _split("activations",
            "activation-clustering", 0.6) + _flags("lrp", "spray", "smaller-cluster", 0.3)
            + _flags("gradcam", "spray", "smaller-cluster", 0.8))
    rows = pd.DataFrame([{**_BASE, **r} for r in recs])[list(ROW_COLUMNS)]
    config = to_record(validate({"suite": {"seeds": list(_SEEDS)}, "models": {"classifier": {}},
                                 "scenarios": [dict(name="CH-50", poisoning="CH", fraction=0.5),
                                               dict(name="clean", poisoning="none", fraction=0.0)]}))
    sections = build_sections(rows, config=config)
    row = next(s for s in sections if s.scenario == "CH-50").summary[0]
    best = links.explorer_href("CH-50", "classifier", 3, "gradcam", "spray")
    assert "gradcam × spray" in row["best explanation detector"]
    assert row[LINKS_KEY]["best explanation detector"] == best
    assert row[LINKS_KEY]["best baseline"] == links.explorer_href("CH-50", "classifier", 3, "activations",
                                                                  "activation-clustering")
    blocks = _summary(sections, "t")[0].blocks
    first, second = (html_table(b.table, "x", prose=True) for b in blocks)
    cell = re.search(r"<a href='([^']+)'>([^<]*gradcam × spray[^<]*)</a>", first)
    assert cell is not None and cell.group(1).replace("&amp;", "&") == best, "the best detector's cell is a link"
    assert f"<a href='{best}'>gradcam × spray</a>" in second.replace("&amp;", "&"), "the flag table's best detector"
    path, _, fragment = best.partition("#")
    assert path == f"{links.EXPLORER_DIR}/{links.page_path('CH-50', 'classifier', 3)}"
    assert fragment == "a=" + links.detector_id("gradcam", "spray")
