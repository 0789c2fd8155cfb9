"""Why a detector's separability swings from seed to seed (issue 30 item 1), from a finished run's rows.

Per explainer (maps x one clusterer, SpRAy by default) and seed it gathers the separability (the
clustering's ARI against the poisoned flag) beside what may explain it: how strongly the model relies
on the post-it (``reliance``'s accuracy gap), where the relevance sits (``artifact-localisation``'s
relevance mass on the post-it), and what the maps vary most by (``map-structure``: the post-it's share
of the maps' variance, whether the first principal component encodes the post-it or the sign's size).
Over seeds it reports the ARI's spread (mean, SD, range, the share of seeds below 0.5) and the
Spearman correlation (scipy) of the ARI with each factor: the factor that tracks the ARI is the
reason it swings. ``tools/seed_stability.py`` writes the table as Markdown (docs/seed-stability.md).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from hansbench.bench.report.render.markdown import to_markdown

ARI = "cluster-ari"
# factor column -> (metric, level): "model" rows have no explainer, "explainer" rows belong to one
FACTORS = {
    "reliance gap": ("acc-gap", "model"),
    "relevance on post-it": ("relevance-mass-acc", "explainer"),
    "post-it variance share": ("poison-variance-share", "explainer"),
    "PC1 ~ post-it": ("pc1-poison-corr", "explainer"),
    "PC1 ~ sign size": ("pc1-box-corr", "explainer"),
}
COLLAPSE = 0.5  # an ARI under this on a seed counts as "did not separate"


def per_seed(rows: pd.DataFrame, scenario: str, model: str, clusterer: str = "spray") -> pd.DataFrame:
    """One row per (explainer, seed): the ARI of ``clusterer`` on the explainer's maps and every factor."""
    r = rows[(rows["scenario"] == scenario) & (rows["model"] == model)]
    ari = r[(r["metric"] == ARI) & (r["clusterer"] == clusterer) & (r["rule"].fillna("") == "")]
    out = ari.groupby(["explainer", "seed"])["value"].mean().rename("ARI").reset_index()
    for name, (metric, level) in FACTORS.items():
        f = r[(r["metric"] == metric) & (r["stage"].fillna("") == "")]  # not the cleaning stages' acc-gap
        if level == "model":
            f = f.groupby("seed")["value"].mean().rename(name).reset_index()
            out = out.merge(f, on="seed", how="left")
        else:
            f = f.groupby(["explainer", "seed"])["value"].mean().rename(name).reset_index()
            out = out.merge(f, on=["explainer", "seed"], how="left")
    return out.sort_values(["explainer", "seed"]).reset_index(drop=True)


def spearman(x: pd.Series, y: pd.Series) -> tuple[float, float, int]:
    """Spearman's rho and its p-value over the seeds where both are known; NaN below 5 seeds or a constant."""
    ok = x.notna() & y.notna()
    n = int(ok.sum())
    if n < 5 or x[ok].nunique() < 2 or y[ok].nunique() < 2:
        return math.nan, math.nan, n
    res = stats.spearmanr(x[ok], y[ok])
    return float(res.statistic), float(res.pvalue), n


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per explainer: the ARI's spread over seeds and its Spearman rho with each factor (p in brackets)."""
    out = []
    for explainer, g in table.groupby("explainer"):
        row = {"explainer": explainer, "seeds": len(g), "ARI mean": g["ARI"].mean(), "ARI SD": g["ARI"].std(ddof=1),
               "ARI min": g["ARI"].min(), "ARI max": g["ARI"].max(),
               f"seeds ARI < {COLLAPSE}": int((g["ARI"] < COLLAPSE).sum())}
        for name in FACTORS:
            if name in g and g[name].notna().any():
                rho, p, _ = spearman(g["ARI"], g[name])
                row[f"rho(ARI, {name})"] = rho
                row[f"p({name})"] = p
        out.append(row)
    return pd.DataFrame(out)


def markdown(frame: pd.DataFrame, digits: int = 2) -> str:
    """``frame`` as the report's Markdown table (:func:`~hansbench.bench.report.render.markdown.to_markdown`, every
    cell escaped), floats rounded to ``digits`` and NaN shown as '-'."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "-" if not np.isfinite(v) else f"{v:.{digits}f}"
        return v

    return to_markdown(frame.apply(lambda col: col.map(cell)))
