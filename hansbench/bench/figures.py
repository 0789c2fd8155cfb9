"""Figures for the report: relevance-ordering curves and a gallery of maps per method.

Curves come from the rows alone (the relevance-ordering metrics store each mean curve as
JSON in ``detail``); the gallery needs the trained models and maps, which the runner's
cache serves without recomputation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _curve(detail: str) -> list[float] | None:
    """The mean curve a relevance-ordering row stores in ``detail`` (JSON with a ``curve`` list)."""
    try:
        value = json.loads(detail)
    except (TypeError, ValueError):
        return None
    curve = value.get("curve") if isinstance(value, dict) else value
    return curve if isinstance(curve, list) and curve else None


def ordering_curves(rows: pd.DataFrame, out: Path) -> list[str]:
    """One PNG per scenario x model x metric: mean curve per explainer (class score)."""
    d = rows[rows.metric.isin(["ordering-auc-class", "deletion-auc-class"])]
    d = d.assign(curve=d.detail.map(_curve)).dropna(subset=["curve"])
    files = []
    for (scenario, model, metric), g in d.groupby(["scenario", "model", "metric"]):
        splits = sorted(g.split.unique())
        fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 3.6), squeeze=False)
        for ax, split in zip(axes[0], splits):
            for explainer, e in g[g.split == split].groupby("explainer"):
                curves = np.array(list(e.curve))
                y = curves.mean(0)
                ax.plot(np.linspace(0, 1, len(y)), y, label=explainer, lw=2 if explainer in ("prp", "random") else 1,
                        ls="--" if explainer == "random" else "-")
            ax.set(title=f"{split}", xlabel="share of pixels " + ("inserted" if "ordering" in metric else "deleted"),
                   ylabel="class score")
        axes[0][-1].legend(fontsize=7, loc="best")
        fig.suptitle(f"{scenario} · {model} · {metric.replace('-auc-class', '')}")
        fig.tight_layout()
        name = f"curves-{_safe(scenario)}-{model}-{metric.split('-')[0]}.png"
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        files.append(name)
    return files


def gallery(scenario: str, model: str, images: torch.Tensor, maps: dict[str, torch.Tensor], out: Path) -> str:
    """Images (top row) and each explainer's map (summed over views) for the same poisoned images."""
    n = images.shape[0]
    fig, axes = plt.subplots(len(maps) + 1, n, figsize=(1.3 * n, 1.3 * (len(maps) + 1)), squeeze=False)
    for j in range(n):
        axes[0][j].imshow(images[j].permute(1, 2, 0).clamp(0, 1).numpy())
    axes[0][0].set_ylabel("image", fontsize=7)
    for i, (name, m) in enumerate(maps.items(), start=1):
        m = m.sum(1)
        for j in range(n):
            lim = float(m[j].abs().max()) or 1.0
            axes[i][j].imshow(m[j].numpy(), cmap="bwr", vmin=-lim, vmax=lim)
        axes[i][0].set_ylabel(name, fontsize=7, rotation=0, ha="right")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{scenario} · {model}: maps of artifact-test images", fontsize=9)
    fig.tight_layout()
    name = f"gallery-{_safe(scenario)}-{model}.png"
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def session_galleries(sessions, out: Path, n_images: int = 6, log: Callable[[str], None] = print) -> list[str]:
    """A gallery per (scenario, seed 0-th, model) from the runner's cached resources."""
    files, seen = [], set()
    for s in sessions:
        if s.name in seen:
            continue
        seen.add(s.name)
        try:
            data = s.data()
            idx = data.artifact_test.of_class(data.affected_class, by="true_labels")[:n_images]
            for kind in s.suite.models:
                maps = {}
                for e in s.explainers_for(kind):
                    maps[e] = s.explain(kind, e)("artifact_test", idx)
                if maps:
                    files.append(gallery(s.name, kind, data.artifact_test.images[idx], maps, out))
        except Exception as exc:  # a figure must never cost the results
            log(f"gallery for {s.name} skipped: {type(exc).__name__}: {exc}")
    return files
