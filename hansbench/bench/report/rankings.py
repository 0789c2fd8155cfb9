"""Rankings across scenarios and seeds: Friedman / Nemenyi over (scenario, seed [, metric]) blocks, with the
ranking's stability between two halves of the seeds; drawn by :mod:`hansbench.bench.report.figures.cd_diagram`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hansbench.bench.report.leaderboard import Presentation
from hansbench.bench.report.stats import FriedmanResult, friedman_nemenyi, kendall_tau_halves


@dataclass(frozen=True)
class Ranking:
    """A Friedman / Nemenyi comparison of ``names`` over ``blocks`` (scenario x seed [x metric])."""

    model: str
    what: str
    names: list[str]
    result: FriedmanResult
    tau: float
    tau_p: float
    blocks: str

    @property
    def caption(self) -> str:
        r = self.result
        tau = (f" Stability: Kendall's tau between the rankings of the two halves of the seeds = {self.tau:.2f}."
               if math.isfinite(self.tau) else " Stability: fewer than two seeds, not measured.")
        fried = f"Friedman chi2 = {r.statistic:.3g}, p = {r.p:.2g}" if math.isfinite(r.p) else "Friedman: needs k >= 3"
        return (f"{self.what}, {self.model}: average ranks (1 = best) of k = {len(self.names)} methods over "
                f"N = {r.n_blocks} blocks ({self.blocks}); {fried}; Nemenyi CD = {r.cd:.2f} at alpha = {r.alpha} "
                f"(Demšar 2006): methods joined by a bar are not told apart.{tau}")


def _complete(frame: pd.DataFrame) -> pd.DataFrame:
    """Blocks x methods: the blocks with the most methods (a metric only some methods have, e.g. a retraining
    restricted to two explainers, is left out rather than the methods), then the methods present in all of them."""
    if frame.empty:
        return frame
    counts = frame.notna().sum(axis=1)
    return frame[counts == counts.max()].dropna(axis=1, how="any")


def rankings(rows_seeded: pd.DataFrame, pres: dict[str, Presentation], ranked: dict[str, set[str]]) -> list[Ranking]:
    """Per model kind: the detectors by the label-free headline over (scenario, seed) blocks, and the explainers
    over (scenario, seed, metric) blocks (each explainer's mean rank over the metric's columns). ``ranked``:
    per scenario, the model kinds whose poisoning took."""
    out = []
    s = rows_seeded[[m in ranked.get(sc, set()) for sc, m in zip(rows_seeded.scenario, rows_seeded.model)]]
    from hansbench.bench.report.summary import detection_values

    ps, values, _, _ = detection_values(pres)
    value = values[0] if values else ""
    if value:
        d = s[s.family.isin([p.family for p in ps]) & (s.metric == value) & (s.clusterer != "")]
        for m, g in d.groupby("model", sort=False):
            higher = bool(g.higher_is_better.iloc[0])
            f = g.assign(method=g.explainer + " × " + g.clusterer).pivot_table(
                index=["scenario", "seed"], columns="method", values="value", aggfunc="mean")
            out += _rank(_complete(f), higher, m, f"Detection by {value}", "scenario x seed")
    expl = [p for p in pres.values() if p.shape == "explainer" and p.ranked]
    refs = {p.reference_explainer for p in expl}
    d = s[s.family.isin([p.family for p in expl]) & (s.explainer != "") & ~s.explainer.isin(refs) & s.directed]
    for m, g in d.groupby("model", sort=False):
        blocks = []
        for (sc, seed, fam), b in g.groupby(["scenario", "seed", "family"], sort=False):
            f = b.pivot_table(index=["metric", "split", "stage", "coldetail"], columns="explainer", values="value",
                              aggfunc="mean")
            hib = b.groupby(["metric", "split", "stage", "coldetail"])["higher_is_better"].first().reindex(f.index)
            f = f.dropna(axis=0, how="any")
            if f.empty:
                continue
            signed = f.mul(np.where(hib.reindex(f.index), 1.0, -1.0), axis=0)
            ranks = signed.rank(axis=1, ascending=False).mean(axis=0)
            blocks.append(pd.Series(-ranks, name=(sc, seed, fam)))  # higher = better
        if blocks:
            f = pd.DataFrame(blocks)
            f.index = pd.MultiIndex.from_tuples(f.index, names=["scenario", "seed", "family"])
            out += _rank(_complete(f), True, m, "Explainers by faithfulness and localisation", "scenario x seed x metric")
    return out


def _rank(frame: pd.DataFrame, higher: bool, model: str, what: str, blocks: str) -> list[Ranking]:
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        return []
    r = friedman_nemenyi(frame.to_numpy(dtype=float), higher_is_better=higher)
    tau, p = kendall_tau_halves(frame.to_numpy(dtype=float), frame.index.get_level_values("seed"), higher)
    return [Ranking(model, what, [str(c) for c in frame.columns], r, tau, p, blocks)]
