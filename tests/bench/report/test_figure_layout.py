"""Figures that stay readable where they are shown: a critical-difference diagram fits a page's width whatever
its names (an HTML page shows figures at most 600 px wide: 11 in of names shrank to unreadable), an embedding
figure flows its panels instead of one row per input (1400 x 4250 px) and starts with its legend."""

from __future__ import annotations

import numpy as np
from PIL import Image

from hansbench.bench.report.figures.cd_diagram import WIDTH_IN, draw_cd, layout
from hansbench.bench.report.figures.session import embedding_figure
from hansbench.bench.report.figures.styles import PAGE_WIDTH

LONG = [f"activations-{i} × activation-clustering-with-a-long-name" for i in range(18)]


def test_a_cd_diagram_is_page_wide_whatever_its_names_and_lists_them_best_first(tmp_path):
    ranks = np.linspace(1.5, 17.0, 18)[::-1]
    png, svg = draw_cd(LONG, ranks, 3.0, tmp_path / "cd.png", "Detection: classifier", friedman_p=0.001)
    with Image.open(png) as img:
        width_in = img.size[0] / img.info["dpi"][0]
    assert width_in <= PAGE_WIDTH + 0.05 and WIDTH_IN <= PAGE_WIDTH
    order, runs, _ = layout(LONG, ranks, 3.0)
    assert list(order) == list(range(17, -1, -1))  # best (lowest) rank in the first row
    assert runs and all(ranks[order[j]] - ranks[order[i]] < 3.0 for i, j in runs)  # rows the test cannot part
    text = svg.read_text()
    assert LONG[-1] in text and "CD = 3.00" in text


def test_an_embedding_figure_flows_its_panels_and_opens_with_its_legend(tmp_path):
    import matplotlib.figure

    kept = []
    real = matplotlib.figure.Figure.savefig
    matplotlib.figure.Figure.savefig = lambda self, *a, **k: (kept.append(self), real(self, *a, **k))[1]
    try:
        g = np.random.default_rng(0)
        emb, truth = g.normal(size=(30, 2)), np.arange(30) < 10
        panels = {f"source-{i}": (emb, truth, {"spray": (truth.astype(int), 1), "coreg": truth.astype(int)})
                  for i in range(12)}  # 12 inputs x (truth + 2 clusterers) = 36 panels
        name = embedding_figure("CH-50", "classifier", panels, tmp_path, seed=0, columns=5)
    finally:
        matplotlib.figure.Figure.savefig = real
    fig = kept[0]
    used = [ax for ax in fig.axes if ax.axison]
    assert len(used) == 36 and len(fig.axes) == 40  # 8 rows of 5: panels flow, no row per input
    with Image.open(tmp_path / name) as img:
        w, h = (s / d for s, d in zip(img.size, img.info["dpi"]))
    assert w <= PAGE_WIDTH + 0.05 and h < 8 * 1.55 + 1.0  # was 12 rows x 1.85 in + 0.9 in
    fig.canvas.draw()
    legend_bottom = fig.legends[0].get_window_extent().y0
    assert legend_bottom > max(ax.get_window_extent().y1 for ax in used)  # the legend is above every panel
    titles = [ax.get_title() for ax in used]
    assert "source-0 × spray" in titles  # a clusterer's panel names its input: it no longer sits in its row
