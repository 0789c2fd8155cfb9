"""The seed-stability table: per seed the ARI beside its factors, over seeds the Spearman rho (scipy)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from hansbench.bench.report.seed_stability import COLLAPSE, markdown, per_seed, summary


def rows(n_seeds: int = 8) -> pd.DataFrame:
    """Rows of a run: on seed s the LRP x SpRAy ARI is s / n and the post-it's variance share rises with it,
    the reliance gap falls with it; another scenario and the clean model's rows must be ignored."""
    out = []
    for s in range(n_seeds):
        common = {"scenario": "CH-33", "model": "classifier", "seed": s, "rule": "", "stage": ""}
        out += [
            {**common, "explainer": "lrp", "clusterer": "spray", "metric": "cluster-ari", "value": s / n_seeds},
            {**common, "explainer": "lrp", "clusterer": "spray", "metric": "cluster-ari", "value": s / n_seeds,
             "rule": "relative-size"},  # a flagging row: not the separability
            {**common, "explainer": "lrp", "clusterer": "", "metric": "poison-variance-share", "value": 0.1 + s},
            {**common, "explainer": "", "clusterer": "", "metric": "acc-gap", "value": 50.0 - s},
            {**common, "explainer": "", "clusterer": "", "metric": "acc-gap", "value": 99.0, "stage": "oracle"},
            {**common, "scenario": "BD", "explainer": "lrp", "clusterer": "spray", "metric": "cluster-ari",
             "value": 1.0},
        ]
    return pd.DataFrame(out)


def test_per_seed_joins_the_factors_of_the_same_seed_and_ignores_flagging_rows():
    table = per_seed(rows(), "CH-33", "classifier")
    assert list(table["seed"]) == list(range(8))
    assert list(table["ARI"]) == pytest.approx([s / 8 for s in range(8)])
    assert list(table["reliance gap"]) == [50.0 - s for s in range(8)]
    assert list(table["post-it variance share"]) == pytest.approx([0.1 + s for s in range(8)])
    assert table["relevance on post-it"].isna().all()


def test_summary_gives_the_spread_and_scipys_spearman():
    table = per_seed(rows(), "CH-33", "classifier")
    s = summary(table).iloc[0]
    assert s["seeds"] == 8 and s[f"seeds ARI < {COLLAPSE}"] == 4
    assert s["rho(ARI, post-it variance share)"] == pytest.approx(1.0)
    assert s["rho(ARI, reliance gap)"] == pytest.approx(-1.0)
    expected = stats.spearmanr(table["ARI"], table["reliance gap"]).pvalue
    assert s["p(reliance gap)"] == pytest.approx(expected)
    short = summary(per_seed(rows(4), "CH-33", "classifier")).iloc[0]
    assert math.isnan(short["rho(ARI, reliance gap)"])  # fewer than 5 seeds: no correlation claimed


def test_markdown_escapes_the_table_separator():
    text = markdown(pd.DataFrame({"explainer": ["a|b"], "v": [float("nan")]}))
    assert "a\\|b" in text and "| - |" in text
