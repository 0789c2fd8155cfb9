"""One image's maps by every model kind and explainer, as a grid: a row per model kind, a column per explainer,
the image first in each row. ``hansbench explain`` and the explorer's per-image view draw with this one function,
so the two never disagree on what a map looks like or on its scale.

Each map has its own symmetric colour scale (red positive, blue negative, white zero), stated under it as
``±max|value|``: maps of different explainers live on different scales, and a reader comparing two of them must
know that the two reds are not the same number. Column titles are wrapped to fit their cell and the figure grows
with the grid (about :data:`CELL` inches a cell), so no name runs into its neighbour and no title is cut.
"""

from __future__ import annotations

import textwrap

import torch

from hansbench.bench.report.figures.maps import clear_axes, outline, show_map
from hansbench.bench.report.figures.styles import plt

CELL = 1.6  # inches per grid cell
NAME_WIDTH = 14  # characters per line of a column title (7-8 pt fits a 1.6 in cell)
NOTE_FONT = 7


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=True)) or text


def scale_label(m: torch.Tensor) -> str:
    """The colour scale of map ``m`` as its reader needs it: ``±`` the largest |value| the colours span."""
    lim = float(m.abs().max()) if m.numel() else 0.0
    return f"±{lim:.2g}" if lim else "±0 (all zero)"


def _as_2d(m: torch.Tensor) -> torch.Tensor:
    m = m.detach().float().cpu()
    while m.dim() > 2:  # views / channels summed, as the galleries do
        m = m.sum(0)
    return m


def draw_image_maps(image: torch.Tensor, maps_by_model: dict[str, dict[str, torch.Tensor | None]], *,
                    explained_class: dict[str, str], title: str, predicted: dict[str, str] | None = None,
                    mask: torch.Tensor | None = None):
    """The figure of ``image`` (C x H x W in [0, 1]) and, per model kind, each explainer's map of it (a map may
    carry leading view/channel dims, which are summed; ``None`` or a missing explainer is drawn as an "n/a" cell:
    that model kind has no such explainer). ``explained_class`` (and ``predicted``) name, per model kind, the class
    the maps explain (and the model's prediction). Returns the open matplotlib Figure."""
    if not maps_by_model:
        raise ValueError("draw_image_maps needs maps of at least one model kind; pass {kind: {explainer: map}}")
    explainers = list(dict.fromkeys(e for per in maps_by_model.values() for e in per))
    rows, cols = len(maps_by_model), len(explainers) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(CELL * cols + 0.5, CELL * rows + 1.5), squeeze=False,
                             layout="constrained")
    rgb = image.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
    for r, (kind, per) in enumerate(maps_by_model.items()):
        ax = axes[r][0]
        ax.imshow(rgb)
        outline(ax, mask)
        ax.set_ylabel(_wrap(kind, NAME_WIDTH), fontsize=8)
        said = [f"explained: {explained_class.get(kind, '?')}"]
        if predicted is not None and kind in predicted:
            said.insert(0, f"predicted: {predicted[kind]}")
        ax.set_xlabel("\n".join(_wrap(s, NAME_WIDTH + 10) for s in said), fontsize=NOTE_FONT)
        for c, name in enumerate(explainers, start=1):
            ax = axes[r][c]
            m = per.get(name)
            if m is None:
                ax.set_facecolor("#F2F2F2")
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", fontsize=9, color="#777777",
                        transform=ax.transAxes)
                ax.set_xlabel("not for this model", fontsize=NOTE_FONT)
            else:
                m = _as_2d(m)
                show_map(ax, m)
                outline(ax, mask)
                ax.set_xlabel(scale_label(m), fontsize=NOTE_FONT)
    axes[0][0].set_title("image", fontsize=8)
    for c, name in enumerate(explainers, start=1):
        axes[0][c].set_title(_wrap(name, NAME_WIDTH), fontsize=8)
    clear_axes(axes)
    width_chars = int((CELL * cols + 0.5) * 72 / (10 * 0.6))  # characters of a 10 pt title that fit the width
    fig.suptitle(_wrap(title, max(width_chars, 20)), fontsize=10)
    fig.supxlabel(_wrap("red: positive relevance, blue: negative; each map on its own scale, ±max|value| under it; "
                        "green: the artifact", max(int(width_chars * 1.3), 20)), fontsize=NOTE_FONT)
    return fig
