"""Critical-difference diagrams (Demšar 2006, Fig. 1): average ranks on an axis, the methods that the Nemenyi
test cannot tell apart joined by a bar. Written as PNG (300 dpi) and SVG by :func:`draw_cd`, only for a ranking
whose Friedman test rejects (:attr:`hansbench.bench.report.rankings.Ranking.rejects`; Demšar 2006 Sec. 3.2.2:
the post-hoc test follows a rejected null only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DPI = 300


def cliques(avg_ranks, cd: float) -> list[tuple[int, int]]:
    """Maximal runs (i, j) of methods sorted by rank whose first and last differ by less than ``cd`` (indices
    into the sorted order, i < j): the bars of the diagram."""
    r = np.sort(np.asarray(avg_ranks, dtype=float))
    runs = []
    for i in range(len(r)):
        j = i
        while j + 1 < len(r) and r[j + 1] - r[i] < cd:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in runs):
            runs.append((i, j))
    return runs


def layout(names: list[str], avg_ranks, cd: float) -> tuple[np.ndarray, list[tuple[int, int]], float]:
    """The diagram's geometry: the methods' order (best rank first: row i of the diagram shows method
    ``order[i]``), the cliques as row spans and the figure's height in inches."""
    ranks = np.asarray(avg_ranks, dtype=float)
    if len(names) != ranks.size:
        raise ValueError(f"draw_cd needs one average rank per name, got {len(names)} names and {ranks.size} ranks")
    order = np.argsort(ranks, kind="stable")
    return order, cliques(ranks, cd), ROW_IN * len(names) + HEAD_IN


ROW_IN, HEAD_IN, WIDTH_IN = 0.2, 1.25, 6.5  # a row per method; at 6.5 in the 8 pt names stay 8 pt in a 600 px page


def draw_cd(names: list[str], avg_ranks, cd: float, path_png: Path | str, title: str = "",
            friedman_p: float | None = None, alpha: float = 0.05) -> tuple[Path, Path]:
    """Draw the diagram; returns (png, svg) paths (the SVG beside the PNG). ``friedman_p``: where given, a p not
    below ``alpha`` is refused (the ranks are not told apart: there is no order to draw).

    One row per method, best first: its name and average rank on the left, a dot at that rank on the rank axis
    (top), and at the right a red bar joining each run of rows the Nemenyi test cannot tell apart (rank
    difference below CD), with the CD drawn to scale under the axis. Demšar's two-sided layout spreads long
    names over 11 in, which a page or an HTML figure shrinks until it cannot be read; this one is
    :data:`WIDTH_IN` wide whatever the names."""
    if friedman_p is not None and not friedman_p < alpha:
        raise ValueError(f"no critical-difference diagram where the Friedman test does not reject (p = {friedman_p:.2g} "
                         f">= alpha = {alpha}): report the ranks without a diagram")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path_png = Path(path_png)
    ranks = np.asarray(avg_ranks, dtype=float)
    order, runs, height = layout(names, ranks, cd)
    k = len(names)
    hi = max(k, 2)
    bars_x = [hi + 0.35 + 0.3 * hi / 10 * n for n in range(len(runs))]  # right of the axis, one column per clique
    with matplotlib.rc_context({"font.size": 8, "svg.hashsalt": "hansbench"}):
        fig, ax = plt.subplots(figsize=(WIDTH_IN, height), layout="constrained")
        rows = np.arange(k)
        ax.set_ylim(k + 0.6, -0.6)
        ax.set_xlim(1 - 0.03 * hi, (bars_x[-1] if bars_x else hi) + 0.2 * hi / 10 + 0.1)
        for side, spine in ax.spines.items():
            spine.set_visible(side == "top")
        ax.spines["top"].set_bounds(1, hi)
        ax.xaxis.tick_top()
        ax.xaxis.set_label_position("top")
        ax.set_xlabel("average rank (1 = best)", fontsize=8)
        ax.grid(False)
        step = max(1, int(np.ceil(k / 10)))
        ax.set_xticks(range(1, hi + 1, step))
        ax.tick_params(axis="x", length=3, labelsize=8)
        ax.tick_params(axis="y", length=0, labelsize=8)
        ax.set_yticks(rows, [f"{names[i]} ({ranks[i]:.2f})" for i in order])
        ax.hlines(rows, 1, ranks[order], color="#cccccc", lw=0.6, zorder=1)  # a guide from rank 1 to the dot
        ax.plot(ranks[order], rows, ls="", marker="o", ms=4, color="black", zorder=3)
        for x, (i, j) in zip(bars_x, runs):
            ax.vlines(x, i - 0.25, j + 0.25, color="tab:red", lw=3)
        ax.hlines(k + 0.1, 1, 1 + cd, color="black", lw=1.5)
        ax.text(1, k + 0.3, f"CD = {cd:.2f} (Nemenyi, alpha = {alpha:g}): rows joined by a red bar differ by less",
                ha="left", va="top", fontsize=7)
        if title:
            ax.set_title(title, fontsize=9)
        path_png.parent.mkdir(parents=True, exist_ok=True)
        svg = path_png.with_suffix(".svg")
        fig.savefig(path_png, dpi=DPI)
        fig.savefig(svg, metadata={"Date": None})
        plt.close(fig)
    return path_png, svg
