"""Map panels: one explanation map on its axes (signed, scaled to its own largest |relevance|), the artifact's
outline, and the gallery of every explainer's maps of the same images (the explorer and ``hansbench explain``
draw with the same pieces)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from hansbench.bench.report.escape import slug  # noqa: E402
from hansbench.bench.report.figures.styles import PAGE_WIDTH, method_style, page_style, save  # noqa: E402


def class_name(data, c: int) -> str:
    names = getattr(data, "class_names", None) or []
    return names[c] if 0 <= c < len(names) else str(c)


def outline(ax, mask: torch.Tensor | None) -> None:
    if mask is not None and bool(mask.any()):
        ax.contour(mask.float().numpy(), levels=[0.5], colors="lime", linewidths=0.9)


MAP_COLORS = "bwr"  # the diverging map colours: blue negative, white zero, red positive


def map_limit(m: torch.Tensor | np.ndarray) -> np.ndarray:
    """The scale rule of every map drawing: each map (the last two dims) spans ``±`` its own largest |value| (1
    for an all-zero map); ``[..., 1, 1]`` float64."""
    a = m.detach().double().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m, dtype=np.float64)
    lim = np.abs(a).max(axis=(-2, -1), keepdims=True) if a.size else np.ones(a.shape[:-2] + (1, 1))
    return np.where(lim > 0, lim, 1.0)


def map_rgb(m: torch.Tensor | np.ndarray) -> np.ndarray:
    """Map(s) ``[..., H, W]`` as ``[..., H, W, 3]`` uint8 RGB: the colours :func:`show_map` draws (the figures,
    ``hansbench explain``) and the explorer's tiles are, by :func:`map_limit`'s scale in :data:`MAP_COLORS`."""
    from matplotlib import colormaps

    a = m.detach().double().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m, dtype=np.float64)
    lim = map_limit(a)
    return colormaps[MAP_COLORS]((a + lim) / (lim + lim), bytes=True)[..., :3]  # = Normalize(-lim, lim), as imshow


def show_map(ax, m: torch.Tensor) -> None:
    """Map ``m`` (``[H, W]``) on ``ax`` in the colours of :func:`map_rgb` (a symmetric colour scale, so white is
    zero)."""
    a = m.detach().double().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m, dtype=np.float64)
    lim = float(map_limit(a).item())
    ax.imshow(a, cmap=MAP_COLORS, vmin=-lim, vmax=lim)


def clear_axes(axes) -> None:
    for ax in np.asarray(axes).flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)


def _method_label(ax, method: str, **kw) -> None:
    """A row's method name in the method's colour (the colour it has in the curves)."""
    ax.set_ylabel(method, color=method_style(method).color, fontsize=8, **kw)


def gallery(scenario: str, model: str, images: torch.Tensor, maps: dict[str, torch.Tensor], out: Path,
            masks: torch.Tensor | None = None, titles: list[str] | None = None, name: str | None = None,
            suptitle: str | None = None) -> str:
    """Images (top row) and each explainer's map (summed over views), the artifact mask outlined."""
    n = images.shape[0]
    with page_style():
        fig, axes = plt.subplots(len(maps) + 1, n, figsize=(min(PAGE_WIDTH, 1.3 + 0.95 * n), 0.95 * (len(maps) + 1)
                                                            + 0.6), squeeze=False, layout="constrained")
        for j in range(n):
            axes[0][j].imshow(images[j].permute(1, 2, 0).clamp(0, 1).numpy())
            outline(axes[0][j], None if masks is None else masks[j])
            if titles:
                axes[0][j].set_title(titles[j].replace(": ", ":\n"), fontsize=7)
        axes[0][0].set_ylabel("image", fontsize=8, rotation=0, ha="right", va="center")
        for i, (method, m) in enumerate(maps.items(), start=1):
            m = m.sum(1)
            for j in range(n):
                show_map(axes[i][j], m[j])
                outline(axes[i][j], None if masks is None else masks[j])
            _method_label(axes[i][0], method, rotation=0, ha="right", va="center")
        clear_axes(axes)
        fig.suptitle(suptitle or f"{scenario} · {model}: maps of artifact-test images")
        fig.supxlabel("red: positive relevance, blue: negative, each map scaled to its own largest |value|; "
                      "green: the artifact", fontsize=7)
        name = save(fig, out, name or f"gallery-{slug(scenario)}-{slug(model)}.png")
    return name
