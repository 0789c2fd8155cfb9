"""Rankings across scenarios and seeds: Friedman / Nemenyi over (scenario, seed [, metric family]) blocks, with the
ranking's stability between two halves of the seeds; drawn by :mod:`hansbench.bench.report.figures.cd_diagram`
only where the Friedman test rejects at alpha (a diagram of ranks the test cannot tell apart would show an order
that is noise: :func:`rankings` returns those only with ``every=True``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hansbench.bench.report.leaderboard import Presentation
from hansbench.bench.report.stats import ALPHA, FriedmanResult, friedman_nemenyi, kendall_tau_halves

LEVEL_NAMES = {"scenario": ("scenario", "scenarios"), "seed": ("seed", "seeds"),
               "family": ("metric family", "metric families")}


@dataclass(frozen=True)
class Ranking:
    """A Friedman / Nemenyi comparison of ``names`` over ``blocks`` (scenario x seed [x metric family]);
    ``counts``: (level, distinct values) of the blocks actually used."""

    model: str
    what: str
    names: list[str]
    result: FriedmanResult
    tau: float
    tau_p: float
    blocks: str
    counts: tuple[tuple[str, int], ...] = ()

    @property
    def rejects(self) -> bool:
        """Whether the Friedman test rejects "all methods rank alike" at its alpha: only then is a CD diagram drawn."""
        return math.isfinite(self.result.p) and self.result.p < self.result.alpha

    @property
    def block_text(self) -> str:
        """How the N blocks are made, counted: "3 scenarios x 2 seeds x 2 metric families", with "of" where blocks
        were left out (a metric only some methods have)."""
        if not self.counts:
            return self.blocks
        parts = " x ".join(f"{n} {LEVEL_NAMES.get(lev, (lev, lev + 's'))[n != 1]}" for lev, n in self.counts)
        full = math.prod(n for _, n in self.counts)
        return parts if full == self.result.n_blocks else f"{self.result.n_blocks} of {parts}"

    @property
    def caption(self) -> str:
        r = self.result
        tau = (f" Stability: Kendall's tau between the rankings of the two halves of the seeds = {self.tau:.2f}."
               if math.isfinite(self.tau) else " Stability: fewer than two seeds, not measured.")
        fried = f"Friedman chi2 = {r.statistic:.3g}, p = {r.p:.2g}" if math.isfinite(r.p) else "Friedman: needs k >= 3"
        return (f"{self.what}, {self.model}: average ranks (1 = best) of k = {len(self.names)} methods over "
                f"N = {r.n_blocks} blocks ({self.block_text}); {fried}; Nemenyi CD = {r.cd:.2f} at alpha = {r.alpha} "
                f"(Demšar 2006): methods joined by a bar are not told apart.{tau}")


def _complete(frame: pd.DataFrame) -> pd.DataFrame:
    """Blocks x methods: the blocks with the most methods (a metric only some methods have, e.g. a retraining
    restricted to two explainers, is left out rather than the methods), then the methods present in all of them."""
    if frame.empty:
        return frame
    counts = frame.notna().sum(axis=1)
    return frame[counts == counts.max()].dropna(axis=1, how="any")


def rankings(rows_seeded: pd.DataFrame, pres: dict[str, Presentation], ranked: dict[str, set[str]],
             every: bool = False, alpha: float = ALPHA) -> list[Ranking]:
    """Per model kind: the detectors by the label-free headline over (scenario, seed) blocks, and the explainers
    over (scenario, seed, metric family) blocks (each explainer's mean rank over the family's columns).
    ``ranked``: per scenario, the model kinds whose poisoning took. Only the rankings whose Friedman test rejects
    at ``alpha`` (the ones a CD diagram is drawn for), unless ``every``."""
    out = _all_rankings(rows_seeded, pres, ranked, alpha)
    return out if every else [r for r in out if r.rejects]


def _all_rankings(rows_seeded: pd.DataFrame, pres: dict[str, Presentation], ranked: dict[str, set[str]],
                  alpha: float) -> list[Ranking]:
    out = []
    s = rows_seeded[[m in ranked.get(sc, set()) for sc, m in zip(rows_seeded.scenario, rows_seeded.model)]]
    from hansbench.bench.report.verdicts.detection import detection_values

    ps, values, _, _ = detection_values(pres)
    value = values[0] if values else ""
    if value:
        d = s[s.family.isin([p.family for p in ps]) & (s.metric == value) & (s.clusterer != "")]
        d = d[d.rule == ""] if "rule" in d else d  # the split's own value: no flagging rule decides it
        for m, g in d.groupby("model", sort=False):
            higher = bool(g.higher_is_better.iloc[0])
            f = g.assign(method=g.explainer + " × " + g.clusterer).pivot_table(
                index=["scenario", "seed"], columns="method", values="value", aggfunc="mean")
            out += _rank(_complete(f), higher, m, f"Detection by {value}", "scenario x seed", alpha)
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
            out += _rank(_complete(f), True, m, "Explainers by faithfulness and localisation",
                         "scenario x seed x metric family", alpha)
    return out


def _rank(frame: pd.DataFrame, higher: bool, model: str, what: str, blocks: str, alpha: float) -> list[Ranking]:
    """The ranking of ``frame`` (blocks x methods) with the blocks counted per index level."""
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        return []
    r = friedman_nemenyi(frame.to_numpy(dtype=float), higher_is_better=higher, alpha=alpha)
    tau, p = kendall_tau_halves(frame.to_numpy(dtype=float), frame.index.get_level_values("seed"), higher)
    counts = tuple((str(lev), int(frame.index.get_level_values(lev).nunique())) for lev in frame.index.names)
    return [Ranking(model, what, [str(c) for c in frame.columns], r, tau, p, blocks, counts)]
