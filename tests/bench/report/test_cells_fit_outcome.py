"""Issue 29, items 1 and 2: cells that fit the outcome (bounded intervals, bimodal seeds shown as their values,
"k of n" with a Clopper-Pearson interval) and verdicts that say what the test says (no verdict where n cannot
reach alpha, "not told apart" with the difference, CD diagrams only where Friedman rejects)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from hansbench.bench.engine.store import ROW_COLUMNS
from hansbench.bench.report import cells
from hansbench.bench.report.leaderboard import build_sections, normalise, per_seed, presentation
from hansbench.bench.report.rankings import rankings
from hansbench.bench.report.results import cell
from hansbench.bench.report.stats import hits, is_split, sign_flip_test, smallest_p
from hansbench.bench.report.writers import write_leaderboard


def frame(values, metric="cluster-f1", unit="", higher=True, **extra):
    return pd.DataFrame({"seed": range(len(values)), "value": values, "metric": metric, "unit": unit,
                         "higher_is_better": higher, **extra})


def rows(records):
    base = dict(scenario="BD-30", seed=0, model="classifier", explainer="", clusterer="", rule="", split="", stage="",
                detail="", unit="", family="cluster-detection", metric="cluster-ari", higher_is_better=True)
    return pd.DataFrame([{**base, **r} for r in records])[ROW_COLUMNS]


def detection(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    return rows([dict(explainer=e, clusterer=c, value=v, seed=s) for (e, c), vs in values.items()
                 for s, v in enumerate(vs)])


# -- cells -----------------------------------------------------------------------------------------------------
def test_a_bimodal_cell_shows_its_seeds_not_a_symmetric_interval():
    x = cell(frame([0.0, 1.0, 0.0, 1.0, 0.98]))
    text = cells.text(x, 5)
    assert x.split and x.method == "split" and "±" not in text and not x.has_interval  # not "0.60 ± 0.68"
    assert text == "0.596; 3 of 5 seeds ≥ 0.5 [0.15, 0.95]: 0, 1, 0, 1, 0.98"
    twenty = cell(frame([0.0, 1.0] * 10))  # twenty seeds: the values stay in the CSV, not in the printed cell
    assert cells.text(twenty, 20).startswith("0.500; 10 of 20 seeds ≥ 0.5") and ":" not in cells.text(twenty, 20)
    assert cells.tidy(twenty, "", True, metric="cluster-f1")["per_seed"].count(";") == 19
    rec = cells.tidy(x, "", True, metric="cluster-f1")
    assert rec["per_seed"] == "0;1;0;1;0.98" and rec["k"] == 3 and rec["reach_level"] == 0.5
    assert math.isnan(rec["ci_low"]) and math.isnan(rec["ci_high"]) and rec["interval"] == "split"
    # one mode, or a value with no known range: an interval as before
    assert not cell(frame([0.9, 0.95, 1.0])).split
    unknown = cell(frame([0.0, 1.0, 0.0, 1.0, 0.98], metric="a-score-of-no-known-range"))
    assert not unknown.split and cells.text(unknown, 5).startswith("0.60 ± ")


def test_the_split_rule_is_a_gap_wider_than_half_the_range():
    assert is_split([0.0, 0.3, 0.9], (0.0, 1.0)) and not is_split([0.0, 0.45, 0.9], (0.0, 1.0))
    assert not is_split([0.0, 1.0], (0.0, 1.0))  # two seeds: no interval to replace
    assert is_split([0.4, 99.6, 10.0], (0.0, 100.0))  # the badnets ASR of the issue: 36.7 ± 135.9 before
    assert not is_split([0.0, 1.0, 0.0], None)


def test_a_bounded_metrics_interval_never_leaves_its_range():
    x = cell(frame([0.95, 1.0, 0.9]))  # t: 0.95 ± 0.124 reaches 1.074
    t_high = st.t.interval(0.95, 2, loc=0.95, scale=st.sem([0.95, 1.0, 0.9]))[1]
    assert t_high > 1 and x.high == 1.0 and x.low == pytest.approx(2 * 0.95 - t_high)
    assert x.method == "t-clipped" and cells.text(x, 3) == "0.950 [0.826, 1.000]"  # asymmetric: no "±"
    rng, cut = np.random.default_rng(0), 0
    for metric, (lo, hi) in (("cluster-f1", (0, 1)), ("cluster-ari", (-1, 1)), ("asr", (0, 100))):
        for _ in range(50):
            near_end = hi - (hi - lo) * rng.uniform(0, 0.3) if rng.random() < 0.5 else lo + (hi - lo) * 0.3
            v = np.clip(rng.normal(near_end, 0.1 * (hi - lo), size=rng.integers(3, 6)), lo, hi)  # near an end
            c = cell(frame(v.tolist(), metric=metric, unit="%" if metric == "asr" else ""))
            assert c.split or (lo <= c.low and c.high <= hi), (metric, v, c)
            cut += c.method.endswith("-clipped")
    assert cut > 20  # the property was put to the test: many t-intervals would have left the range    # a difference of two F1s (shown relative to a reference) spans -1..1: a t-interval inside it stays as it is
    rel = cell(frame([0.5, 0.6, 0.7], relative_to="random"))
    assert rel.method == "t" and cells.text(rel, 3) == "0.60 ± 0.25"


def test_k_of_n_seeds_with_the_clopper_pearson_interval_of_scipy():
    for values, level, higher in (([0.0, 1.0, 0.0, 1.0, 0.98], 0.5, True), ([0.4, 99.6, 10.0], 50.0, True),
                                  ([0.1, 0.2, 0.9, 0.05], 0.5, False), ([1.0] * 7, 0.5, True)):
        h = hits(values, level, higher)
        v = np.asarray(values)
        k = int(np.sum(v >= level) if higher else np.sum(v <= level))
        ci = st.binomtest(k, v.size).proportion_ci(0.95, method="exact")
        assert (h.k, h.n) == (k, v.size) and (h.low, h.high) == pytest.approx((ci.low, ci.high))
        # and Clopper-Pearson written out: beta quantiles (an independent form of the same interval)
        low = st.beta.ppf(0.025, k, v.size - k + 1) if k > 0 else 0.0
        high = st.beta.ppf(0.975, k + 1, v.size - k) if k < v.size else 1.0
        assert (h.low, h.high) == pytest.approx((low, high))


def test_float_noise_and_page_sized_memory_read_as_zero():
    same = cell(frame([0.15, 0.15 + 5e-17, 0.15 - 5e-17]))
    assert cells.text(same, 3) == "0.150 ± 0"  # not "0.150000000000000000 ± 2.8E-17"
    noise = cell(frame([0.0, -3.8e-6], metric="occlusion-delta-acc", unit="%"))
    assert cells.text(noise, 2) == "0"  # float32 noise of two percentages, not "-0.00000191"
    page = cell(frame([0.00390625, 0.00390625], metric="peak-memory-mb", unit="MB"))
    assert cells.text(page, 2) == "0" and cells.text(cell(frame([75.9, 75.9], metric="m", unit="MB")), 2) == "75.9"


# -- verdicts ---------------------------------------------------------------------------------------------------
def test_the_smallest_attainable_p_is_the_sign_flip_tests():
    for n in range(1, 11):
        assert smallest_p(n) == pytest.approx(sign_flip_test(np.ones(n)))  # every difference of one sign
    assert smallest_p(3) == 0.25 and smallest_p(6, 2) == pytest.approx(2 * 2 / 64) and smallest_p(3, 10) == 1.0


def test_no_verdict_at_three_seeds_and_the_summary_and_caption_say_why():
    # a is far ahead of b and of the activations baseline on every seed: still no test can reach 0.05 with n = 3
    df = detection({("a", "spray"): [0.95, 0.9, 0.97], ("b", "spray"): [0.1, 0.15, 0.2],
                    ("activations", "ac"): [0.2, 0.1, 0.3], ("random", "spray"): [0.05, 0.1, 0.02]})
    sec = build_sections(df)[0]
    verdict = sec.summary[0]["verdict"]
    assert verdict.startswith("no verdict") and "n = 3" in verdict and "0.25" in verdict
    assert "beats" not in verdict and "not told apart" not in verdict
    t = next(t for t in sec.tables if t.title.startswith("Detection matrix"))
    assert "No marks, no verdict" in t.caption and "0.25" in t.caption
    assert not any(mark in str(v) for v in t.frame["cluster-ari ↑"] for mark in ("*", "!", "+"))


def test_seven_seeds_give_a_verdict_with_the_difference():
    n = 7
    df = detection({("a", "spray"): [0.9 + 0.01 * i for i in range(n)], ("activations", "ac"): [0.3] * n})
    verdict = build_sections(df)[0].summary[0]["verdict"]
    half = st.t.ppf(0.975, n - 1) * st.sem([0.6 + 0.01 * i for i in range(n)])  # 0.01998
    assert f"a × spray beats the best baseline activations × ac (best - baseline 0.630 ± {half:.3f}" in verdict


# -- critical-difference diagrams -------------------------------------------------------------------------------
def explainer_rows(values_by_block):
    """relevance-mass-acc and relevance-rank-acc (one metric family) per (scenario, seed) block."""
    recs = []
    for (sc, s), per in values_by_block.items():
        for e, v in per.items():
            recs += [dict(scenario=sc, seed=s, explainer=e, family="artifact-localisation", metric=m, value=v,
                          split="artifact_test") for m in ("relevance-mass-acc", "relevance-rank-acc")]
    return rows(recs)


def _rankings(df):
    d = normalise(df)
    pres = {f: presentation(f, d[d.family == f]) for f in dict.fromkeys(d.family)}
    return per_seed(d, pres), pres


def test_a_cd_diagram_only_where_friedman_rejects_and_n_counts_the_blocks(tmp_path):
    orders = [(0.5, 0.4, 0.3), (0.3, 0.5, 0.4), (0.4, 0.3, 0.5)]  # every method first once per scenario: no order
    noise = {(sc, s): dict(zip("abc", orders[s])) | {"random": 0.1} for sc in ("CH-50", "BD-30") for s in range(3)}
    seeded, pres = _rankings(explainer_rows(noise))
    every = rankings(seeded, pres, {"CH-50": {"classifier"}, "BD-30": {"classifier"}}, every=True)
    assert every and not every[0].rejects and every[0].result.p > 0.05
    assert rankings(seeded, pres, {"CH-50": {"classifier"}, "BD-30": {"classifier"}}) == []
    paths = write_leaderboard(explainer_rows(noise), tmp_path / "noise", suite="s")
    assert not any(name.startswith("cd-") for name in paths)

    clear = {(sc, s): {"a": 0.5, "b": 0.4, "c": 0.3, "random": 0.1} for sc in ("CH-50", "BD-30") for s in range(3)}
    paths = write_leaderboard(explainer_rows(clear), tmp_path / "clear", suite="s")
    assert "cd-classifier-explainers.png" in paths
    md = paths["leaderboard.md"].read_text()
    # blocks are scenario x seed x metric family: 2 x 3 x 1 = 6, not x 2 metrics = 12
    assert "N = 6 blocks (2 scenarios x 3 seeds x 1 metric family)" in md


def test_draw_cd_refuses_a_ranking_friedman_does_not_reject(tmp_path):
    from hansbench.bench.report.figures.cd_diagram import draw_cd

    with pytest.raises(ValueError, match="Friedman test does not reject"):
        draw_cd(["a", "b", "c"], [1.5, 2.0, 2.5], 1.2, tmp_path / "cd.png", friedman_p=0.32)
    assert draw_cd(["a", "b", "c"], [1.0, 2.0, 3.0], 1.2, tmp_path / "cd.png", friedman_p=0.01)[0].is_file()
