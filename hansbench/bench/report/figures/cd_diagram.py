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


def draw_cd(names: list[str], avg_ranks, cd: float, path_png: Path | str, title: str = "",
            friedman_p: float | None = None, alpha: float = 0.05) -> tuple[Path, Path]:
    """Draw the diagram; returns (png, svg) paths (the SVG beside the PNG). ``friedman_p``: where given, a p not
    below ``alpha`` is refused (the ranks are not told apart: there is no order to draw)."""
    if friedman_p is not None and not friedman_p < alpha:
        raise ValueError(f"no critical-difference diagram where the Friedman test does not reject (p = {friedman_p:.2g} "
                         f">= alpha = {alpha}): report the ranks without a diagram")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path_png = Path(path_png)
    ranks = np.asarray(avg_ranks, dtype=float)
    order = np.argsort(ranks, kind="stable")
    k = len(names)
    lo, hi = 1, max(k, 2)
    half = (k + 1) // 2
    height = 1.2 + 0.28 * max(half, k - half)
    span = hi - lo
    longest = max((len(f"{n} (0.00)") for n in names), default=10)
    side_in = 0.075 * longest + 0.4  # inches of names on each side at 9 pt; the axis itself is 4 inches
    fig, ax = plt.subplots(figsize=(4.0 + 2 * side_in, height))
    margin = side_in * span / 4.0
    ax.set_xlim(lo - margin, hi + margin)
    ax.set_ylim(-(max(half, k - half) + 1.2) * 0.28, 0.62)
    ax.axis("off")
    ax.hlines(0, lo, hi, color="black", lw=1)
    step = max(1, int(np.ceil(k / 10)))
    for t in range(lo, hi + 1):
        ax.vlines(t, 0, 0.06 if (t - lo) % step == 0 else 0.03, color="black", lw=1)
        if (t - lo) % step == 0:
            ax.text(t, 0.1, str(t), ha="center", va="bottom", fontsize=9)
    ax.text((lo + hi) / 2, 0.34, "average rank (1 = best)", ha="center", va="bottom", fontsize=9)
    # the CD bar, top left
    ax.hlines(0.52, lo, lo + cd, color="black", lw=1.5)
    ax.text(lo + cd / 2, 0.55, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    for pos, i in enumerate(order):
        left = pos < half
        row = pos if left else k - 1 - pos
        y = -(row + 1) * 0.28
        x_end = lo - 0.05 * span - 0.2 if left else hi + 0.05 * span + 0.2
        ax.plot([ranks[i], ranks[i], x_end], [0, y, y], color="black", lw=0.8)
        ax.text(x_end + (-0.02 if left else 0.02) * max(span, 1), y, f"{names[i]} ({ranks[i]:.2f})", ha="right" if left else "left",
                va="center", fontsize=9)
    sorted_ranks = ranks[order]
    for n, (i, j) in enumerate(cliques(ranks, cd)):
        y = -0.1 - 0.07 * n
        ax.hlines(y, sorted_ranks[i] - 0.01 * span, sorted_ranks[j] + 0.01 * span, color="tab:red", lw=3)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path_png.parent.mkdir(parents=True, exist_ok=True)
    svg = path_png.with_suffix(".svg")
    fig.savefig(path_png, dpi=DPI, bbox_inches="tight")
    fig.savefig(svg, bbox_inches="tight")
    plt.close(fig)
    return path_png, svg
