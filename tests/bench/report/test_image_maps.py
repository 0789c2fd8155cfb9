"""The per-image figure (``hansbench explain``, the explorer's image view): a grid a row per model kind and a column
per explainer, the image first; an explainer a kind lacks is an "n/a" cell; each map's scale is stated; and no text
runs off the figure or into its neighbour (the old one-row figure printed "classifierclassifier..." cut at both
edges)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from hansbench.bench.report.figures.image_maps import draw_image_maps, scale_label  # noqa: E402
from hansbench.bench.report.figures.styles import page_style, plt  # noqa: E402

LONG = "integrated-gradients-smoothgrad-squared"  # a plugin's long name must wrap, not overflow


def _figure(extra: int = 0, rows: int = 2):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 16, 16, generator=g)
    a = torch.randn(16, 16, generator=g) * 0.12
    maps = {"classifier": {"gradcam": a, LONG: torch.randn(2, 16, 16, generator=g), "lrp": -a * 3},
            "protopnet": {"gradcam": a * 2, LONG: None}}  # protopnet has no lrp; LONG explicitly unsupported
    for i in range(extra):  # more long-named plugins: their titles compete for the width
        maps["classifier"][f"{LONG}-variant-{i}"] = torch.randn(16, 16, generator=g)
    maps = dict(list(maps.items())[:rows])
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[4:8, 4:8] = True
    with page_style():
        fig = draw_image_maps(image, maps, explained_class={"classifier": "stop", "protopnet": "yield"},
                              predicted={"classifier": "stop", "protopnet": "stop"}, mask=mask,
                              title="CH-33 artifact_test[0] (seed 3): maps by model kind and explainer, "
                                    "a long title that has to wrap to stay inside the figure")
    return fig, maps


def _texts(fig):
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def test_grid_image_first_na_cells_and_scales():
    fig, maps = _figure()
    try:
        axes = fig.get_axes()
        assert len(axes) == 8
        grid = {ax.get_subplotspec().get_geometry()[:2] for ax in axes}
        assert grid == {(2, 4)}
        by_pos = {(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start): ax for ax in axes}
        assert by_pos[0, 0].get_title() == "image" and by_pos[0, 0].get_ylabel() == "classifier"
        assert "explained: stop" in by_pos[0, 0].get_xlabel() and "explained: yield" in by_pos[1, 0].get_xlabel()
        assert "predicted: stop" in by_pos[1, 0].get_xlabel()
        assert by_pos[0, 0].images and by_pos[0, 0].images[0].get_array().shape[-1] == 3  # RGB image first
        na = [pos for pos, ax in by_pos.items() if any(t.get_text() == "n/a" for t in ax.texts)]
        assert sorted(na) == [(1, 2), (1, 3)]  # protopnet: LONG (None) and lrp (missing)
        a = maps["classifier"]["gradcam"]
        assert by_pos[0, 1].get_xlabel() == f"±{float(a.abs().max()):.2g}"
        assert by_pos[0, 3].get_xlabel() == f"±{3 * float(a.abs().max()):.2g}"
        assert by_pos[0, 2].get_xlabel() == scale_label(maps["classifier"][LONG].sum(0))
        im = by_pos[0, 3].images[0]
        lo, hi = im.get_clim()
        assert lo == -hi and hi > 0  # symmetric: white is zero
        assert fig.get_figwidth() >= 4 * 1.6 and fig.get_figheight() >= 2 * 1.6  # grows with the grid
    finally:
        plt.close(fig)


@pytest.mark.parametrize("rows", [2, 1])
def test_no_text_overflows_the_figure_or_its_neighbour(rows):
    fig, _ = _figure(extra=6, rows=rows)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box = fig.bbox
        for t in _texts(fig):
            e = t.get_window_extent(renderer)
            assert box.x0 - 1 <= e.x0 and e.x1 <= box.x1 + 1 and box.y0 - 1 <= e.y0 and e.y1 <= box.y1 + 1, \
                f"{t.get_text()!r} runs off the figure: {e} not in {box}"
            assert t.get_fontsize() >= 7, f"{t.get_text()!r} is below 7 pt"
        titles = sorted((ax.title.get_window_extent(renderer) for ax in fig.get_axes() if ax.get_title()),
                        key=lambda e: e.x0)
        assert len(titles) == 10
        for left, right in zip(titles, titles[1:]):
            assert left.x1 <= right.x0, "two column titles overlap"
        top = fig._suptitle.get_window_extent(renderer)
        # constrained layout sets them edge to edge; a text's extent includes its line spacing, hence 2 px
        assert all(top.y0 >= e.y1 - 2 for e in titles), "the figure's title runs into the column titles"
        for ax in fig.get_axes():  # no cell squeezed to make room for its title: a map stays readable
            e = ax.get_window_extent(renderer)
            assert min(e.width, e.height) / fig.dpi >= 0.9, f"a cell shrank to {e.width / fig.dpi:.2f} in"
    finally:
        plt.close(fig)


def test_no_models_is_a_clear_error():
    with pytest.raises(ValueError, match="at least one model kind"):
        draw_image_maps(torch.rand(3, 4, 4), {}, explained_class={}, title="x")
