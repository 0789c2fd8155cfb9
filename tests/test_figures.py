"""Figures: curves from the rows (reference explainer from metric metadata), gallery, prototypes, embeddings."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import torch

from hansbench.bench import figures
from hansbench.bench.figures import Figure, _curve, _embed, embedding_figure, gallery, ordering_curves
from hansbench.bench.store import ROW_COLUMNS


def row(explainer, curve, split, seed=0):
    return dict(scenario="BD-30", seed=seed, model="classifier", explainer=explainer, clusterer="",
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
    monkeypatch.setattr(figures, "_outline", lambda ax, mask: outlined.append(mask is not None and bool(mask.any())))
    images, masks = torch.rand(3, 3, 8, 8), torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[:, 5:7, 5:7] = True
    name = gallery("CH-50", "classifier", images, {"a": torch.randn(3, 1, 8, 8), "b": torch.randn(3, 2, 8, 8)},
                   tmp_path, masks=masks, titles=["explained: stop"] * 3)
    assert (tmp_path / name).is_file() and outlined.count(True) == 9  # image row + 2 map rows


def test_embedding_separates_planted_groups_and_draws_one_panel_per_clusterer(tmp_path):
    g = np.random.default_rng(0)
    truth = np.arange(60) < 20
    views = g.normal(size=(60, 2, 5)) + truth[:, None, None] * 6.0
    emb = _embed(views)
    assert emb.shape == (60, 2)
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
    name = figures.prototype_figure("CH-50", "protopnet", tiny_protopnet, data, 0, {"m": torch.randn(1, 3, 16, 16)},
                                    tmp_path, top=2)
    assert name == "prototypes-CH-50-protopnet.png" and (tmp_path / name).stat().st_size > 1000


def test_figure_is_a_plain_record():
    assert Figure("s", "f.png", "c") == Figure("s", "f.png", "c")
