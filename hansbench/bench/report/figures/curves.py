"""Ordering curves from the rows alone: a metric that stores a mean curve as JSON ``{"curve": [...]}`` in
``detail`` gets curves (e.g. relevance ordering / deletion, PRP Fig. 8 and 10): per explainer the mean over
seeds with a 95 % t-band (n >= 3 seeds) or each seed as a thin line (n = 2); the metric's reference explainer
(``reference_explainer``) dashed."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hansbench.bench.report.escape import slug  # noqa: E402
from hansbench.bench.report.figures.base import Figure, new_figure, seed_text  # noqa: E402
from hansbench.bench.report.figures.styles import PAGE_WIDTH, method_style, page_style, save  # noqa: E402
from hansbench.metrics.detail import CURVE, MODE  # noqa: E402
from hansbench.metrics.detail import parse as parse_detail  # noqa: E402


def _curve(detail: str) -> list[float] | None:
    """The mean curve a row stores in ``detail`` (JSON with a :data:`~hansbench.metrics.detail.CURVE` list, or a
    bare list)."""
    try:
        value = json.loads(detail)
    except (TypeError, ValueError):
        return None
    curve = value.get(CURVE) if isinstance(value, dict) else value
    return curve if isinstance(curve, list) and curve else None


def _detail(detail: str) -> dict:
    return parse_detail(detail)


def _reference(family: str) -> str:
    from hansbench.bench.report.leaderboard import presentation

    return presentation(family).reference_explainer


# What a curve's y-axis plots, per value, for the shipped curve metrics; a metric may declare its own as
# ``curve_labels = {value: label}`` (class attribute), which wins. The table's value is the curve's AUC,
# so the value's name ("...-auc-...") is not what the axis shows.
CURVE_LABELS = {
    "ordering-auc-class": "logit of the explained class",
    "deletion-auc-class": "logit of the explained class",
    "ordering-auc-prototype": "prototype similarity score",
    "deletion-auc-prototype": "prototype similarity score",
}
CURVE_X = {"insertion": "share of pixels inserted into noise, most relevant first",
           "deletion": "share of pixels replaced by noise, most relevant first"}


def curve_label(family: str, value: str) -> str:
    """The y-axis label of ``value``'s curve: the metric's ``curve_labels``, the table above, or a
    label that says the axis is the curve whose area the table reports."""
    from hansbench.registry import UnknownNameError, metrics

    try:
        declared = dict(getattr(metrics.get(family), "curve_labels", {}) or {})
    except (UnknownNameError, KeyError):
        declared = {}
    return declared.get(value) or CURVE_LABELS.get(value) or f"curve of {value} (the table reports its area)"


def _band(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95 % t-interval of the mean curve over seeds (rows), pointwise: mean ± t(0.975, n-1) · s/√n."""
    from scipy import stats

    n = curves.shape[0]
    half = stats.t.ppf(0.975, n - 1) * stats.sem(curves, axis=0)
    mean = curves.mean(0)
    return mean - half, mean + half


def ordering_curves(rows: pd.DataFrame, out: Path) -> list[Figure]:
    """One figure per scenario x model x value with curves: per explainer and split the mean over
    seeds, with a 95 % t-band for n >= 3 seeds or each seed as a thin line for n = 2."""
    if rows.empty or "detail" not in rows:
        return []
    rows = rows.fillna({c: "" for c in ("explainer", "clusterer", "split", "family", "detail")})
    d = rows[rows.clusterer == ""]
    d = d.assign(curve=d.detail.map(_curve)).dropna(subset=["curve"])
    files = []
    for (scenario, model, family, metric), g in d.groupby(["scenario", "model", "family", "metric"], sort=False):
        ref = _reference(family)
        splits = list(dict.fromkeys(g.split))
        mode = _detail(g.detail.iloc[0]).get(MODE, "insertion")
        n_seeds = g.groupby(["explainer", "split"]).seed.nunique().min()
        with page_style():
            fig, axes = plt.subplots(1, len(splits), figsize=(min(PAGE_WIDTH, 3.5 * len(splits)), 3.2),
                                     squeeze=False, sharey=True, layout="constrained")
            handles: dict[str, object] = {}
            for ax, split in zip(axes[0], splits):
                for explainer, e in g[g.split == split].groupby("explainer", sort=False):
                    if len({len(c) for c in e.curve}) != 1:
                        continue
                    curves = np.array(list(e.curve), dtype=float)
                    x, mean = np.linspace(0, 1, curves.shape[1]), curves.mean(0)
                    style = method_style(explainer)
                    ls = "--" if explainer == ref else style.linestyle
                    label = f"{explainer} (reference)" if explainer == ref else explainer
                    step = max(1, len(x) // 5)  # five markers a line, staggered so lines' markers do not overlap
                    order = list(dict.fromkeys(g.explainer)).index(explainer)
                    (line,) = ax.plot(x, mean, color=style.color, marker=style.marker, ls=ls, lw=1.6, ms=4.5,
                                      markevery=(order % step, step), label=label)
                    if len(curves) >= 3:
                        lo, hi = _band(curves)
                        ax.fill_between(x, lo, hi, color=style.color, alpha=0.12, lw=0)
                    elif len(curves) == 2:
                        for c in curves:
                            ax.plot(x, c, color=style.color, ls=ls, lw=0.7, alpha=0.55)
                    handles.setdefault(label, line)
                ax.set(title=split.replace("_", " ") or "all", xlabel=CURVE_X.get(mode, "share of pixels"))
            axes[0][0].set_ylabel(curve_label(family, metric))
            if handles:
                fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                           ncols=min(4, len(handles)), frameon=False)
            spread = ("band: 95 % t-interval of the mean" if n_seeds >= 3 else
                      "thin lines: each seed" if n_seeds == 2 else "one seed: no interval")
            note = "" if (g.explainer == ref).any() else f"; no '{ref}' reference in this run"
            fig.suptitle(f"{scenario} · {model} · {metric}\nmean over {seed_text(g.seed)}; {spread}{note}")
            name = save(fig, out, f"curves-{slug(scenario)}-{slug(model)}-{slug(metric)}.png")
        files.append(new_figure(scenario, name, f"{family}: {curve_label(family, metric)} as pixels enter "
                                             f"({mode}), mean over {seed_text(g.seed)} per explainer ({model}); "
                                             f"{spread}; the table's {metric} is the area under the curve; "
                                             "reference dashed"))
    return files
