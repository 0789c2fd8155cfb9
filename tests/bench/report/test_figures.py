"""Figures: curves from the rows (reference explainer from metric metadata), gallery, prototypes, embeddings,
concepts; every figure printable (PNG >= 200 dpi with an SVG twin) and one style per method everywhere."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import torch

from hansbench.bench.engine.nodes.figure_inputs import concept_shares, embed, layer_name, prototype_panel
from hansbench.bench.engine.store import ROW_COLUMNS
from hansbench.bench.report.figures import maps as figures
from hansbench.bench.report.figures import session as figures_session
from hansbench.bench.report.figures.base import Figure
from hansbench.bench.report.figures.curves import _curve, ordering_curves
from hansbench.bench.report.figures.maps import gallery
from hansbench.bench.report.figures.session import embedding_figure


def row(explainer, curve, split, seed=0):
    return dict(scenario="BD-30", seed=seed, model="classifier", explainer=explainer, clusterer="", rule="",
                family="relevance-ordering", metric="ordering-auc-class", split=split, stage="",
                detail=json.dumps({"n_images": 2, "curve": curve}), value=1.0, unit="", higher_is_better=True)


def test_curves_read_the_detail_and_draw_the_reference_dashed(tmp_path, monkeypatch):
    drawn = []
    real = matplotlib.axes.Axes.plot

    def spy(self, *args, **kwargs):
        drawn.append((kwargs.get("label"), kwargs.get("ls", "-")))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    rows = pd.DataFrame([row("lrp", [0, 1, 2], "clean_test"), row("random", [0, 0.5, 1], "clean_test"),
                         row("lrp", [0, 2, 2], "artifact_test"), row("lrp", [0, 1, 3], "clean_test", seed=1)])
    files = ordering_curves(rows[ROW_COLUMNS], tmp_path)
    assert [f.file for f in files] == ["curves-BD-30-classifier-ordering-auc-class.png"]
    assert files[0].scenario == "BD-30" and (tmp_path / files[0].file).stat().st_size > 1000
    assert ("random (reference)", "--") in drawn and ("lrp", "-") in drawn
    assert _curve("not json") is None and _curve('{"n_images": 3}') is None and _curve("[1, 2]") == [1, 2]


def test_rows_without_curves_draw_nothing(tmp_path):
    rows = pd.DataFrame([{**row("lrp", [0, 1], "clean_test"), "detail": "{}"}])[ROW_COLUMNS]
    assert ordering_curves(rows, tmp_path) == [] and ordering_curves(rows.iloc[:0], tmp_path) == []


def test_gallery_outlines_the_artifact(tmp_path, monkeypatch):
    outlined = []
    monkeypatch.setattr(figures, "outline", lambda ax, mask: outlined.append(mask is not None and bool(mask.any())))
    images, masks = torch.rand(3, 3, 8, 8), torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[:, 5:7, 5:7] = True
    name = gallery("CH-50", "classifier", images, {"a": torch.randn(3, 1, 8, 8), "b": torch.randn(3, 2, 8, 8)},
                   tmp_path, masks=masks, titles=["explained: stop"] * 3)
    assert (tmp_path / name).is_file() and outlined.count(True) == 9  # image row + 2 map rows


def test_embedding_separates_planted_groups_and_draws_one_panel_per_clusterer(tmp_path):
    g = np.random.default_rng(0)
    truth = np.arange(60) < 20
    views = g.normal(size=(60, 2, 5)) + truth[:, None, None] * 6.0
    emb, note = embed(views)
    assert emb.shape == (60, 2) and note == "PCA (kNN graph in 2 parts)"  # two planted groups: no kNN edge between
    gap = abs(emb[truth].mean(0) - emb[~truth].mean(0)).max()
    assert gap > 3 * max(emb[truth].std(0).max(), emb[~truth].std(0).max()) or gap > 0.05
    name = embedding_figure("CH-50", "classifier", {"prp": (emb, truth, {"spray": truth.astype(int)}),
                                                    "activations": (emb, truth, {})}, tmp_path)
    assert (tmp_path / name).stat().st_size > 1000


def test_prototype_figure_shows_sources_of_the_top_prototypes(tmp_path, tiny_protopnet):
    from hansbench.datasets.base import Split

    def split(n):
        masks = torch.zeros(n, 16, 16, dtype=torch.bool)
        masks[:, 10:13, 10:13] = True
        return Split(torch.rand(n, 3, 16, 16), torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long),
                     torch.ones(n, dtype=torch.bool), masks)

    class Data:  # what the figure reads of a ScenarioData
        train, artifact_test, class_names = split(6), split(2), ["a", "b", "c"]

        def explain_targets(self, split_name, index):
            return torch.full((len(index),), 1, dtype=torch.long)  # e.g. a backdoor's target

    data = Data()
    tiny_protopnet.push_image_index[:] = torch.arange(9) % 6
    tiny_protopnet.push_location[:] = 1
    panel = prototype_panel(tiny_protopnet, data, 0)  # what the run's figure-input node computes
    name = figures_session.prototype_figure("CH-50", "protopnet", panel, data, {"m": torch.randn(1, 3, 16, 16)},
                                            tmp_path, top=2)
    assert name == "prototypes-CH-50-protopnet.png" and (tmp_path / name).stat().st_size > 1000


def test_figure_is_a_plain_record():
    assert Figure("s", "f.png", "c") == Figure("s", "f.png", "c")


# -- printable figures, one style per method ---------------------------------------------------------------
def _stub_data(n_train=12, n_test=2, side=16, classes=("a", "b", "c")):
    from hansbench.datasets.base import Split

    def make(n, seed):
        g = torch.Generator().manual_seed(seed)
        masks = torch.zeros(n, side, side, dtype=torch.bool)
        masks[:, 10:13, 10:13] = True
        labels = torch.arange(n) % len(classes)
        return Split(torch.rand(n, 3, side, side, generator=g), labels, labels.clone(),
                     torch.arange(n) % 2 == 0, masks)

    class Data:  # what the figures read of a ScenarioData
        train, artifact_test, class_names, num_classes, inspect_class = (make(n_train, 0), make(n_test, 1),
                                                                        list(classes), len(classes), 0)

        def explain_targets(self, split_name, index):
            return self.split(split_name).labels[index]

        def split(self, name):
            return getattr(self, name)

    return Data()


def _every_figure(tmp_path, tiny_protopnet) -> list[str]:
    """Draw one of each figure kind into ``tmp_path``; the PNG names."""
    g = np.random.default_rng(0)
    rows = pd.DataFrame([row("lrp", [0, 1, 2], "clean_test", seed=s) for s in range(3)]
                        + [row("random", [0, 0.5, 1], "clean_test")])[ROW_COLUMNS]
    names = [f.file for f in ordering_curves(rows, tmp_path)]
    names.append(gallery("CH-50", "classifier", torch.rand(2, 3, 8, 8), {"lrp": torch.randn(2, 1, 8, 8)}, tmp_path))
    emb, truth = g.normal(size=(20, 2)), np.arange(20) < 5
    names.append(embedding_figure("CH-50", "classifier", {"lrp": (emb, truth, {"spray": (truth.astype(int), 1)})},
                                  tmp_path, seed=0))
    data = _stub_data()
    tiny_protopnet.push_image_index[:] = torch.arange(9) % 6
    names.append(figures_session.prototype_figure("CH-50", "protopnet", prototype_panel(tiny_protopnet, data, 0), data,
                                                  {"prp": torch.randn(1, 3, 16, 16)}, tmp_path, top=2))
    names.append(figures_session.concept_figure("CH-50", "classifier", "crp", data, torch.arange(4),
                                                torch.randn(4, 3, 16, 16), [5, 7, 9], tmp_path, n_concepts=2,
                                                n_refs=2, layer="backbone.layers.1",
                                                shares=torch.tensor([0.5, 0.2, 0.1])))
    return names


def test_every_figure_is_a_png_of_at_least_200_dpi_with_an_svg_twin(tmp_path, tiny_protopnet):
    from PIL import Image

    names = _every_figure(tmp_path, tiny_protopnet)
    assert len(names) == 5 and sorted(p.name for p in tmp_path.glob("*.png")) == sorted(names)
    for name in names:
        with Image.open(tmp_path / name) as img:
            assert min(img.info["dpi"]) >= 199.9, (name, img.info.get("dpi"))  # PNG stores dots per metre
        svg = (tmp_path / name).with_suffix(".svg")
        assert svg.is_file() and "<svg" in svg.read_text()[:2000], name


def test_curve_figures_record_their_vector_twin_and_the_y_axis_says_what_is_plotted(tmp_path, monkeypatch):
    labels = []
    real = matplotlib.axes.Axes.set_ylabel
    monkeypatch.setattr(matplotlib.axes.Axes, "set_ylabel",
                        lambda self, text, *a, **k: (labels.append(text), real(self, text, *a, **k))[1])
    prototype = {**row("prp", [3, 2, 1], "clean_test"), "model": "protopnet", "metric": "ordering-auc-prototype"}
    rows = pd.DataFrame([row("lrp", [0, 1, 2], "clean_test"), prototype])[ROW_COLUMNS]
    files = ordering_curves(rows, tmp_path)
    assert [f.vector for f in files] == [f.file[:-4] + ".svg" for f in files]
    assert all((tmp_path / f.vector).is_file() for f in files)
    # the curve is the explained class's logit (the table's value is its area), not "ordering-auc-class"
    assert labels == ["logit of the explained class", "prototype similarity score"]

    from hansbench.metrics.relevance_ordering import RelevanceOrdering

    monkeypatch.setattr(RelevanceOrdering, "curve_labels", {"ordering-auc-class": "declared"}, raising=False)
    labels.clear()
    ordering_curves(rows.iloc[:1], tmp_path)
    assert labels == ["declared"]  # a metric's own declaration wins


def _drawn(monkeypatch):
    """(label, colour, marker, linestyle) of every labelled line drawn."""
    drawn = []
    real = matplotlib.axes.Axes.plot

    def spy(self, *args, **kwargs):
        lines = real(self, *args, **kwargs)
        for line in lines:
            if not line.get_label().startswith("_"):
                drawn.append((line.get_label(), line.get_color(), line.get_marker(), line.get_linestyle()))
        return lines

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    return drawn


def test_a_method_keeps_its_style_across_figures_and_built_ins_are_distinct(tmp_path, monkeypatch):
    from matplotlib.colors import to_rgb

    from hansbench.bench.report.figures.styles import method_style
    from hansbench.registry import explainers

    drawn = _drawn(monkeypatch)
    first = pd.DataFrame([row(e, [0, 1, 2], "clean_test") for e in ("lrp", "crp", "gradcam")])[ROW_COLUMNS]
    second = pd.DataFrame([row(e, [0, 1, 2], "clean_test", seed=1) for e in ("crp", "lrp-epsilon-plus-flat", "lrp")])
    second = second.assign(scenario="CH-50")[ROW_COLUMNS]
    ordering_curves(first, tmp_path)
    ordering_curves(second, tmp_path)
    styles = {}
    for label, *style in drawn:
        styles.setdefault(label, set()).add((to_rgb(style[0]), style[1], style[2]))
    assert {k: len(v) for k, v in styles.items()} == {"lrp": 1, "crp": 1, "gradcam": 1, "lrp-epsilon-plus-flat": 1}
    # lrp, lrp-epsilon-plus-flat and crp: not three shades of one palette slot
    names = explainers.names() + ["activations", "pixels"]
    rgb = np.array([to_rgb(method_style(n).color) for n in names])
    dist = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)[np.triu_indices(len(names), 1)]
    assert dist.min() > 0.15, "two built-in methods have (nearly) the same colour"
    assert len({method_style(n).marker for n in names}) == len(names)


def test_a_plugin_style_is_derived_from_its_name_stably_across_processes():
    import os
    import subprocess
    import sys

    from hansbench.bench.report.figures.styles import method_style

    code = "from hansbench.bench.report.figures.styles import method_style as s; print(s('my-plugin-method'))"
    others = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": str(h)}).stdout.strip()
              for h in (1, 2)}
    assert others == {str(method_style("my-plugin-method"))}  # not Python's per-process salted hash()
    assert method_style("my-plugin-method").linestyle == "-."  # never passes for a built-in


def test_three_seeds_get_a_t_band_and_two_seeds_their_own_thin_lines(tmp_path, monkeypatch):
    from scipy import stats

    bands = []
    real_fill = matplotlib.axes.Axes.fill_between
    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between",
                        lambda self, x, lo, hi, **k: (bands.append((np.asarray(lo), np.asarray(hi))),
                                                      real_fill(self, x, lo, hi, **k))[1])
    plotted = []
    real_plot = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot",
                        lambda self, *a, **k: (plotted.append(k.get("lw")), real_plot(self, *a, **k))[1])
    curves = np.array([[0, 1, 2], [0, 2, 3], [1, 2, 5]], dtype=float)
    three = pd.DataFrame([row("lrp", c.tolist(), "clean_test", seed=s) for s, c in enumerate(curves)])[ROW_COLUMNS]
    ordering_curves(three, tmp_path)
    lo, hi = stats.t.interval(0.95, 2, loc=curves.mean(0), scale=stats.sem(curves, axis=0))  # independent: scipy
    assert len(bands) == 1 and np.allclose(bands[0][0], lo) and np.allclose(bands[0][1], hi)
    bands.clear()
    plotted.clear()
    ordering_curves(three[three.seed < 2], tmp_path)
    assert bands == [] and plotted == [1.6, 0.7, 0.7]  # the mean, then each seed thin


def test_spectral_embedding_collapses_a_disconnected_graph_and_embed_falls_back(tmp_path):
    """Why a method's embedding showed three dots: sklearn's spectral embedding of a kNN graph in three
    parts maps each part to one point; ``embed`` detects the parts and shows PCA instead, and says so."""
    import warnings

    from sklearn.manifold import SpectralEmbedding

    g = np.random.default_rng(0)
    group = np.repeat(np.arange(3), 20)
    views = (g.normal(size=(60, 8)) + 8.0 * np.eye(3)[group].repeat(3, axis=1)[:, :8])[:, None]

    def spread(e):  # within-group spread over the largest distance between group centres
        centres = np.array([e[group == k].mean(0) for k in range(3)])
        between = max(np.linalg.norm(a - b) for a in centres for b in centres)
        return np.mean([e[group == k].std(0).max() for k in range(3)]) / between

    x = views[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns that the graph is not connected
        collapsed = SpectralEmbedding(2, n_neighbors=10, random_state=0).fit_transform((x - x.mean(0)) / x.std(0))
    emb, note = embed(views)
    assert spread(collapsed) < 1e-6 and spread(emb) > 0.01 and note == "PCA (kNN graph in 3 parts)"
    dup = np.repeat(g.normal(size=(10, 1, 4)), 3, axis=0)  # 30 inputs, 10 distinct
    emb, note = embed(dup)
    assert "10 distinct of 30, jittered" in note and len(np.unique(emb.round(9), axis=0)) == 30


def test_prototype_and_concept_figures_explain_their_numbers(tmp_path, tiny_protopnet):
    names = _every_figure(tmp_path, tiny_protopnet)
    proto = (tmp_path / next(n for n in names if n.startswith("prototypes"))).with_suffix(".svg").read_text()
    assert "contribution to the class logit" in proto and "= score" in proto  # matplotlib keeps text as comments
    concept = (tmp_path / next(n for n in names if n.startswith("concepts"))).with_suffix(".svg").read_text()
    assert "at layer backbone.layers.1" in concept and "50.0 % of" in concept
    emb = (tmp_path / next(n for n in names if n.startswith("embedding"))).with_suffix(".svg").read_text()
    assert "seed 0" in emb and "poisoned (truth)" in emb and "flagged cluster" in emb


def test_concept_shares_rank_the_concepts_crp_chose(tiny_classifier):
    """CRP's setup picks the channels with the largest mean relevance at its layer over the class's
    training images; over the same images their relevance shares must be the largest of all channels."""
    from hansbench.methods.explainers.crp import CRP

    data = _stub_data(n_train=12)
    crp = CRP(k=3, images_per_class=4)
    crp.setup(tiny_classifier, data)
    index = data.train.of_class(0)[:4]
    channels = crp.concepts_[0]
    n_channels = crp._lrp(tiny_classifier, tiny_classifier.normalize(data.train.images[:1]),
                          torch.zeros(1, dtype=torch.long), layer_relevance=True).shape[1]
    every = concept_shares(crp, tiny_classifier, data, index, list(range(n_channels)))
    assert abs(float(every.abs().sum()) - 1) < 1e-5
    chosen = concept_shares(crp, tiny_classifier, data, index, channels)
    assert torch.allclose(chosen, every[channels])
    assert set(torch.argsort(every, descending=True)[:3].tolist()) == set(channels)
    name = layer_name(crp, tiny_classifier)
    assert name and tiny_classifier.get_submodule(name) is tiny_classifier.cam_layer
    assert layer_name(CRP(layer="backbone.stem"), tiny_classifier) == "backbone.stem"
