"""SVG twins stay light: a dense scatter is embedded as an image, a sparse one stays vector paths."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hansbench.bench.report.figures.styles import DENSE_POINTS, save  # noqa: E402


def _figure(n: int, split: int = 2):
    fig, ax = plt.subplots()
    xy = np.random.default_rng(0).normal(size=(n, 2))
    for part in np.array_split(xy, split):  # the embedding panels draw clean and poisoned as two scatters
        ax.scatter(part[:, 0], part[:, 1], s=4)
    ax.set_title("a panel")
    return fig


def test_a_dense_panel_is_an_image_in_the_svg_and_a_sparse_one_stays_vector(tmp_path):
    save(_figure(4 * DENSE_POINTS), tmp_path, "dense.png")
    dense = (tmp_path / "dense.svg").read_text()
    assert "<image" in dense
    save(_figure(DENSE_POINTS // 2), tmp_path, "sparse.png")
    sparse = (tmp_path / "sparse.svg").read_text()
    assert "<image" not in sparse
    # the dense figure's SVG is no heavier than a handful of sparse ones, though it has 8x the points
    assert len(dense) < 4 * len(sparse)
    assert (tmp_path / "dense.png").stat().st_size > 0
