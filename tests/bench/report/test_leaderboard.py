"""The leaderboard is built from metric metadata alone: structure, statistics, gates, marks, names, writers."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from hansbench.bench.engine.store import ROW_COLUMNS
from hansbench.bench.report import leaderboard
from hansbench.bench.report.leaderboard import (
    TIMING_FAMILY,
    build_sections,
    build_tables,
    omitted_from_jobs,
    presentation,
)
from hansbench.bench.report.summary import BY_COLUMN
from hansbench.bench.report.writers import csv_name, to_latex, write_leaderboard
from hansbench.metrics.base import Metric
from hansbench.metrics.presentation import Shows
from hansbench.registry import explainers, metrics


@pytest.fixture(autouse=True)
def _registries_restored():
    """What a test registers (plugin metrics, explainers) is gone after it."""
    with metrics.scratch(), explainers.scratch():
        yield


def rows(records):
    base = dict(scenario="CH-50", seed=0, model="classifier", explainer="", clusterer="", rule="", split="", stage="",
                detail="", unit="", family="artifact-localisation", higher_is_better=True)
    return pd.DataFrame([{**base, **r} for r in records])[ROW_COLUMNS]


def table(tables, prefix):
    found = [t for t in tables if t.title.startswith(prefix)]
    assert found, f"no table {prefix!r} in {[t.title for t in tables]}"
    return found[0]


def ordering(explainer, value, seed=0, model="classifier", split="clean_test"):
    return dict(explainer=explainer, family="relevance-ordering", metric="ordering-auc-class", value=value, seed=seed,
                model=model, split=split, detail=json.dumps({"curve": [0, value]}))


# -- metadata ------------------------------------------------------------------------------------------
def test_the_leaderboard_reads_the_presentation_registered_with_the_metric():
    """Declarations are validated at registration (tests/metrics/test_presentation.py, test_metric_contract.py); the
    leaderboard returns that same structure, not one of its own."""
    from hansbench.metrics.presentation import presentation_of

    for name in metrics.names():
        assert presentation(name) is presentation_of(metrics.get(name), name), name
    assert leaderboard.Presentation is presentation(metrics.names()[0]).__class__  # re-exported


def test_a_plugin_metric_gets_its_table_without_changes_to_hansbench(monkeypatch):
    class Plugin(Metric):
        """Plugin score: how plugged in a map is."""

        level = "explainer"
        values = {"plug": ("", True), "noise": ("", True)}
        presentation = Shows(headline=("plug",))

    metrics.register("my-plugin", Plugin)
    df = rows([dict(family="my-plugin", explainer="a", metric="plug", value=1.0),
               dict(family="my-plugin", explainer="b", metric="plug", value=2.0),
               dict(family="my-plugin", explainer="b", metric="noise", value=9.0),
               dict(family="never-installed", explainer="a", clusterer="k", metric="x", value=3.0)])
    tables = build_tables(df)["CH-50"]
    t = table(tables, "My plugin: classifier")
    assert list(t.frame.columns) == ["explainer", "plug ↑", "mean rank ↓"]  # headline only
    assert t.frame.explainer.tolist() == ["b", "a"]
    assert "how plugged in a map is" in t.note
    assert table(tables, "Detection matrix: classifier").shape == "detection"  # unknown family: from its rows


def test_bench_names_no_metric_or_method():
    """No registered metric, explainer or clusterer name appears as a string literal in bench's output code."""
    from hansbench.registry import clusterers

    # the table shapes are the contract's vocabulary ("reliance" is a shape and a metric's name)
    names = (set(metrics.names()) | set(explainers.names()) | set(clusterers.names())) - set(leaderboard.SHAPES)
    for module in ("leaderboard.py", "tables.py", "summary.py", "cells.py", "stats.py", "figures/cd_diagram.py",
                   "publish.py", "figures/base.py", "page.py", "document.py", "writers.py", "render/markdown.py",
                   "render/latex.py", "render/html.py", "results.py", "ranking_tables.py", "detection_tables.py",
                   "controls.py", "rankings.py", "run_facts.py", "verdicts/common.py", "verdicts/stages.py",
                   "verdicts/explainers.py", "verdicts/detection.py", "verdicts/controls.py", "verdicts/summary.py",
                   "verdicts/flagging.py", "verdicts/protocol.py"):
        tree = ast.parse((Path(leaderboard.__file__).parent / module).read_text())
        literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not literals & names, f"{module} names {sorted(literals & names)}"


# -- structure --------------------------------------------------------------------------------------------
def test_one_explainer_table_per_model_and_rank_one_once_per_column():
    df = rows([ordering("a", 5.0), ordering("b", 4.0), ordering("c", -10.0, model="protopnet"),
               ordering("d", -12.0, model="protopnet")])
    tables = build_tables(df)["CH-50"]
    cls, proto = table(tables, "Explainers: classifier"), table(tables, "Explainers: protopnet")
    assert cls.frame.explainer.tolist() == ["a", "b"] and proto.frame.explainer.tolist() == ["c", "d"]
    for t in (cls, proto):
        assert t.frame["mean rank ↓"].tolist() == ["1", "2"]  # exact integers shown as integers


def test_raw_scores_are_shown_relative_to_the_reference_row():
    df = rows([ordering("prp", 7.0), ordering("random", 5.0), ordering("prp", 9.0, seed=1),
               ordering("random", 6.0, seed=1), ordering("lrp", 4.0), ordering("lrp", 6.0, seed=1)])
    t = table(build_tables(df)["CH-50"], "Explainers: classifier")
    col = "ordering-auc-class − random / clean_test ↑"
    f = t.frame.set_index("explainer")
    assert f.loc["prp", col] == "2.50"  # (7-5, 9-6): mean 2.5; n = 2: no interval
    assert f.loc["lrp", col] == "-0.500"
    ref, raw = "random (reference: zero line)", "random raw values"
    assert f.loc[ref, col] == "0" and f.loc[raw, col] == "5.50"  # the zero line, its raw values in a row of their own
    assert t.frame.explainer.tolist()[-2:] == [ref, raw]  # the reference is last and not ranked
    assert f.loc[ref, "mean rank ↓"] == "–" and f.loc["prp", "mean rank ↓"] == "1"
    assert pd.isna(t.sort.set_index("explainer").loc[raw, col])  # raw values are not sorted with the differences
    assert "reference explainer" in t.note and "n = 2" in t.note


def test_without_a_reference_raw_values_are_said_to_be_raw():
    t = table(build_tables(rows([ordering("prp", 7.0), ordering("lrp", 4.0)]))["CH-50"], "Explainers")
    assert "ordering-auc-class / clean_test ↑" in t.frame.columns and "raw values" in t.note


def test_cells_are_mean_std_with_n_where_it_differs():
    df = rows([dict(explainer="a", metric="relevance-mass-acc", value=v, seed=s, split="artifact_test")
               for s, v in enumerate([1.0, 2.0, 3.0])]
              + [dict(explainer="b", metric="relevance-mass-acc", value=5.0, seed=0, split="artifact_test")])
    f = table(build_tables(df)["CH-50"], "Explainers").frame.set_index("explainer")
    # t-interval over 3 seeds: 2 ± t(0.975, 2) * 1 / sqrt(3) = 2 ± 2.484
    assert f.loc["a", "relevance-mass-acc / artifact_test ↑"] == "2.0 ± 2.5"
    assert f.loc["b", "relevance-mass-acc / artifact_test ↑"] == "5 (n=1)"


def test_reliance_opens_the_scenario_and_a_failed_gate_unranks_the_model():
    rel = [dict(family="reliance", model=m, metric=k, value=v, split=s, higher_is_better=h)
           for m, took in (("classifier", 1.0), ("protopnet", 0.0))
           for k, v, s, h in (("artifact-class-acc", 90.0, "artifact_test", True), ("took", took, "", True),
                              ("near-chance", 0.0, "clean_test", False))]
    df = rows(rel + [ordering("a", 5.0), ordering("b", 4.0), ordering("a", 1.0, model="protopnet"),
                     ordering("b", 2.0, model="protopnet")])
    sec = build_sections(df)[0]
    first = sec.tables[0]
    assert first.shape == "reliance" and first.title == "Reliance"
    status = first.frame.set_index("model")["status"]
    assert status["classifier"] == "ranked" and status["protopnet"] == "poisoning did not take (seed 0)"
    proto = table(sec.tables, "Explainers: protopnet").frame.set_index("explainer")
    assert proto["mean rank ↓"].tolist() == ["–", "–"] and proto.iloc[0, 0].endswith("‡")
    summary = {r["model"]: r for r in sec.summary}
    assert summary["protopnet"]["status"] != "ranked" and summary["classifier"]["status"] == "ranked"


def test_model_accuracy_and_insertion_stand_in_for_reliance_and_keep_a_table_when_superseded():
    base = [dict(family="model-accuracy", metric="class-acc", value=100.0, split="artifact_test", stage="trained"),
            dict(family="artifact-insertion", metric="insertion-flip-rate", value=40.0, split="clean_test",
                 unit="%")]
    alone = build_sections(rows(base))[0].tables
    assert alone[0].shape == "reliance" and "insertion-flip-rate / clean_test [%] ↑" in alone[0].frame.columns
    rel = [dict(family="reliance", metric="flip-rate", value=40.0, split="clean_test")]
    both = build_sections(rows(base + rel))[0].tables
    assert [c for c in both[0].frame.columns if "insertion" in c] == []
    assert table(both, "Artifact insertion").shape == "model"  # computed, so shown


def test_detection_table_has_table_ii_shape_and_marks_fallbacks():
    def det(e, c, acc, f1, fb=False, seed=0):
        d = json.dumps({"fallback": fb})
        return [dict(family="cluster-detection", explainer=e, clusterer=c, metric="cluster-acc", value=acc, seed=seed,
                     detail=d), dict(family="cluster-detection", explainer=e, clusterer=c, metric="cluster-f1",
                                     value=f1, seed=seed, detail=d),
                dict(family="cluster-detection", explainer=e, clusterer=c, metric="cluster-ari", value=0.1, seed=seed)]

    df = rows(det("prp", "spray", 64.5, 0.45) + det("prp", "mcgc", 99.0, 0.99, fb=True) + det("lrp", "spray", 50, 0.1))
    sec = build_sections(df)[0]
    t = table(sec.tables, "Detection matrix: classifier")  # one table per scenario and model, a header per value
    f = t.frame.set_index(["explainer", "clusterer"])
    acc, f1 = (f"{v} ↑ (label-matched: analyst picks the right cluster)" for v in ("cluster-acc", "cluster-f1"))
    assert list(t.frame.columns) == ["explainer", "clusterer", "kind", "rule", "cluster-ari ↑", acc, f1]
    assert f.loc[("prp", "spray"), acc] == "64.5" and f.loc[("prp", "mcgc"), f1] == "0.990 †"
    assert ("lrp", "mcgc") not in f.index and "fell back" in t.note and "an auditor does not have" in t.note
    # the summary ranks by a label-free value no rule decides (ARI), never by matched ACC
    # one seed cannot separate anything: no verdict, and the summary says why (issue 29: no "tie" at n = 1)
    verdict = sec.summary[0]["verdict"]
    assert sec.summary[0][BY_COLUMN] == "cluster-ari" and verdict.startswith("no verdict") and "n = 1" in verdict


def test_pruning_has_table_i_shape():
    recs = [dict(family="prototype-pruning", model="protopnet", explainer="prp", metric="class-acc", split=sp,
                 stage=st, value=v) for sp, vals in (("artifact_test", (100, 21.6, 88.8)), ("clean_test", (6.5, 38.2, 38.2)))
            for st, v in zip(("before", "pruned", "retrained"), vals)]
    recs.append(dict(family="prototype-pruning", model="protopnet", explainer="prp", metric="n-pruned", stage="pruned",
                     value=3, higher_is_better=False))
    t = table(build_tables(rows(recs))["CH-50"], "Pruning: protopnet")
    assert list(t.frame.columns[:5]) == ["method", "split", "class-acc / before ↑", "class-acc / pruned ↑",
                                         "class-acc / retrained ↑"]
    assert t.frame.set_index("split").loc["clean_test", "class-acc / pruned ↑"] == "38.2"
    assert (t.frame["n-pruned / pruned"] == "3").all()  # a split-less count on every split's row, no direction


def test_cleaning_baselines_are_rows():
    recs = [dict(family="data-cleaning-baselines", metric="class-acc", split="clean_test", stage=s, value=v)
            for s, v in (("none", 50.0), ("oracle", 90.0))]
    recs.append(dict(family="data-cleaning", explainer="prp", clusterer="spray", metric="class-acc",
                     split="clean_test", stage="cleaned", value=80.0))
    t = table(build_tables(rows(recs))["CH-50"], "Cleaning: classifier")
    assert t.frame.method.tolist() == ["none", "oracle", "prp + spray"]


def test_timing_comes_last_unranked():
    recs = [ordering("a", 1.0), ordering("b", 2.0)] + [
        dict(family=TIMING_FAMILY, explainer=e, metric="ms-per-image", value=v, higher_is_better=False)
        for e, v in (("a", 9.0), ("b", 3.0))]
    tables = build_tables(rows(recs))["CH-50"]
    assert tables[-1].title == "Timing: classifier" and "mean rank ↓" not in tables[-1].frame
    assert tables[-1].frame.explainer.tolist() == ["b", "a"]


def test_not_computed_lines_group_by_family_and_reason():
    jobs = pd.DataFrame([dict(key=f"k{i}", status="not-applicable", scenario="CH-50", seed=0, model="classifier",
                              explainer=e, clusterer="", family="prototype-pruning",
                              error=None, reason="prototype-pruning needs one map per prototype")
                         for i, e in enumerate("abc")]
                        + [dict(key="z", status="done", scenario="CH-50", seed=0, model="classifier", explainer="a",
                                clusterer="", family="m", error=None, reason=None)])
    om = omitted_from_jobs(jobs)
    assert len(om) == 3 and list(om.columns) == ["scenario", "seed", "model", "explainer", "clusterer", "family",
                                                 "reason"]
    sec = build_sections(rows([ordering("a", 1.0)]), om)[0]
    assert sec.omitted == ["prototype-pruning: prototype-pruning needs one map per prototype (3 combinations)"]


# -- writers ------------------------------------------------------------------------------------------------
def md_tables(text: str) -> list[list[str]]:
    out, cur = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            out.append(cur)
            cur = []
    return out + ([cur] if cur else [])


def cells(line: str) -> int:
    return len(re.split(r"(?<!\\)\|", line.strip())) - 2


def test_files_are_named_by_content_and_markdown_rows_match_the_header(tmp_path):
    evil = "<b>x</b> & 5% | y"
    df = rows([ordering("a", 5.0), ordering(evil, 4.0),
               dict(family="cluster-detection", explainer="a", clusterer="spray", metric="cluster-acc", value=60.0,
                    scenario="BD-30")])
    paths = write_leaderboard(df, tmp_path, suite="s")
    assert {"CH-50.explainers.csv", "BD-30.cluster-detection.csv"} <= set(paths)
    assert csv_name("a/b", "t") == "a_b.t.csv"
    csv = pd.read_csv(paths["CH-50.explainers.csv"])
    assert {"explainer", "mean", "ci_low", "ci_high", "n", "unit", "higher_is_better"} <= set(csv.columns)
    assert evil in set(csv.explainer)
    md = paths["leaderboard.md"].read_text()
    for t in md_tables(md):
        assert all(cells(line) == cells(t[0]) for line in t), t
    # the CH-50 CSV keeps its name when the BD-30 table goes away
    paths2 = write_leaderboard(df[df.scenario == "CH-50"], tmp_path / "2", suite="s")
    assert "CH-50.explainers.csv" in paths2


def test_writers_escape_html_markdown_and_latex(tmp_path):
    evil = "<script>alert(1)</script>&5%"
    df = rows([ordering(evil, 1.0), ordering("x", 2.0)])
    paths = write_leaderboard(df, tmp_path, suite="<b>s</b>", omitted=pd.DataFrame(
        [dict(scenario="CH-50", seed=0, model="m", explainer="", clusterer="", family="<i>m</i>", reason="a & b")]))
    page = paths["leaderboard.html"].read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;&amp;5%" in page
    assert "<b>s</b>" not in page and "&lt;i&gt;m&lt;/i&gt;" in page
    md = paths["leaderboard.md"].read_text()
    assert "<script>" not in md and "&lt;script&gt;" in md
    tex = to_latex(build_tables(df)["CH-50"][0].frame, "cap_%")
    assert r"\&5\%" in tex and r"\toprule" in tex and r"cap\_\%" in tex and "±" not in tex


def test_no_rows_write_a_page_that_says_so(tmp_path):
    paths = write_leaderboard(pd.DataFrame(columns=ROW_COLUMNS), tmp_path, suite="s")
    assert "No finished results yet." in paths["leaderboard.md"].read_text()


@pytest.mark.parametrize("shape", leaderboard.SHAPES)
def test_every_shape_renders(shape, monkeypatch):
    class M(Metric):
        """m."""

        values = {"v": ("%", True)}
        presentation = Shows(shape=shape, stages=("s1",) if shape == "stages" else ())

    metrics.register("m-shape", M)
    df = rows([dict(family="m-shape", explainer="a", clusterer="c" if shape == "detection" else "", metric="v",
                    stage="s1", value=1.0)])
    tables = build_tables(df)["CH-50"]
    assert len(tables) == 1 and tables[0].shape == shape and len(tables[0].frame) == 1


# -- statistics in the tables (issue 17) -----------------------------------------------------------------------------
class Detection(Metric):
    """Detection plugin: label-free F1 and a control value, declared like cluster-detection's."""

    level = "clustering"
    values = {"f1-unsup": ("", True), "acc": ("%", True), "flagged": ("", False)}
    presentation = Shows(table="det", shape="detection", headline=("f1-unsup", "acc"), label_free=("f1-unsup",),
                         label_matched=("acc",), control=("flagged",))


def det_rows(values: dict[tuple[str, str], list[float]], scenario="BD-30", metric="f1-unsup", family="det"):
    return rows([dict(scenario=scenario, family=family, explainer=e, clusterer=c, metric=metric, value=v, seed=s)
                 for (e, c), vs in values.items() for s, v in enumerate(vs)])


@pytest.fixture
def det_metric(monkeypatch):
    metrics.register("det", Detection)
    return Detection


def test_overlapping_intervals_give_a_tie_and_no_method_beats_the_baseline(det_metric):
    # a and b overlap seed by seed (a wins three seeds, b four): the paired test cannot tell them apart; 7 seeds so
    # that a verdict is possible at all (2 tests: the smallest Holm p is 2 x 2/2^7 = 0.031)
    df = det_rows({("a", "spray"): [0.80, 0.70, 0.90, 0.75, 0.82, 0.71, 0.77],
                   ("b", "spray"): [0.78, 0.74, 0.86, 0.79, 0.80, 0.76, 0.79],
                   ("pixels", "spray"): [0.81, 0.75, 0.88, 0.80, 0.83, 0.77, 0.80],
                   ("random", "spray"): [0.5, 0.45, 0.55, 0.52, 0.5, 0.45, 0.55]})
    s = build_sections(df)[0].summary[0]
    assert s["best explanation detector"] == "b × spray: 0.789 ± 0.035" and s["n"] == 7  # t, 6 df
    # not told apart is not equal: the verdict names them with the paired difference and its interval, no "tie"
    # b - a per seed: mean 0.0100, t(0.975, 6) * sem = 0.0333 (scipy); b - pixels: -0.01714 ± 0.00880
    assert "not told apart from the best b × spray: a × spray (best - it 0.010 ± 0.033)" in s["verdict"]
    assert "tie" not in s["verdict"]
    assert "pixels × spray" in s["best baseline"] and "no explanation method beats pixels × spray" in s["verdict"]
    assert "best - baseline -0.0171 ± 0.0088" in s["verdict"]
    assert s["over reference"].endswith("over random × spray")


def test_a_clear_winner_is_named_and_beats_the_baseline(det_metric):
    n = 7  # all 7 paired differences positive: exact p = 2 / 2^7 = 0.016, Holm over 2 tests 0.031
    df = det_rows({("a", "spray"): [0.9 + 0.01 * i for i in range(n)], ("b", "spray"): [0.5 + 0.02 * i for i in range(n)],
                   ("activations", "ac"): [0.3 + 0.01 * i for i in range(n)]})
    s = build_sections(df)[0].summary[0]
    assert "a × spray beats the best baseline activations × ac" in s["verdict"] and "tie" not in s["verdict"]
    t = table(build_sections(df)[0].tables, "Detection matrix")
    assert t.frame.set_index("explainer").loc["a", "f1-unsup ↑"].endswith("!")  # better than the runner-up
    assert "exact sign-flip" in t.caption and "Holm" in t.caption and "n = 7" in t.caption


def test_label_matched_values_get_their_own_labelled_table(det_metric):
    df = pd.concat([det_rows({("a", "k"): [0.5, 0.6, 0.7]}), det_rows({("a", "k"): [60, 70, 80]}, metric="acc")])
    tables = build_sections(df)[0].tables
    t = table(tables, "Detection matrix")  # one table: the label-matched value a column of its own, named so
    assert t.frame.loc[0, "f1-unsup ↑"] == "0.60 ± 0.25"
    assert t.frame.loc[0, "acc ↑ (label-matched: analyst picks the right cluster)"].startswith("70 ± 25")
    assert "Label-matched" in t.note


def test_cells_of_three_seeds_are_t_intervals_and_per_image_rows_bootstrap():
    from scipy import stats as st

    vals = [0.2, 0.25, 0.3]
    recs = [dict(explainer="a", metric="relevance-mass-acc", split="artifact_test", value=v, seed=s)
            for s, v in enumerate(vals)]
    half = st.t.ppf(0.975, 2) * st.sem(vals)  # 0.124
    f = table(build_tables(rows(recs))["CH-50"], "Explainers").frame
    assert f.iloc[0, 1] == f"0.25 ± {half:.2f}" and "Student-t" in table(build_tables(rows(recs))["CH-50"],
                                                                          "Explainers").note
    per = [dict(r, detail=json.dumps({"per_image": [r["value"] - 0.05, r["value"] + 0.05]})) for r in recs]
    t = table(build_tables(rows(per))["CH-50"], "Explainers")
    cell = t.frame.iloc[0, 1]
    assert re.fullmatch(r"0\.2\d+ \[0\.\d+, 0\.\d+\]", cell), cell  # a percentile interval, not mean ± h
    assert "bootstrap over seeds x images" in t.note
    assert build_tables(rows(per))["CH-50"][0].frame.iloc[0, 1] == cell  # seeded: the same twice


def test_significance_marks_against_the_reference_are_holm_corrected():
    recs = [ordering(e, v + 0.01 * s, seed=s) for s in range(8) for e, v in (("good", 9.0), ("same", 5.0 + (s % 2)),
                                                                             ("random", 5.5))]
    t = table(build_tables(rows(recs))["CH-50"], "Explainers: classifier")
    f = t.frame.set_index("explainer")
    col = [c for c in f.columns if c.startswith("ordering")][0]
    assert "*" in f.loc["good", col] and "*" not in f.loc["same", col]
    tidy = t.tidy.set_index("explainer")
    assert tidy.loc["good", "p_holm_vs_reference"] > tidy.loc["good", "p_vs_reference"]  # 3 tests in the table


def test_mean_rank_uses_complete_columns_and_never_ranks_a_method_the_reference_beats():
    recs = [dict(explainer=e, metric="relevance-mass-acc", split="artifact_test", value=v)
            for e, v in (("a", 0.3), ("b", 0.2), ("c", 0.05), ("d", 0.01), ("random", 0.1))]
    recs += [dict(explainer="d", metric="relevance-rank-acc", split="artifact_test", value=0.99)]  # only d has it
    t = table(build_tables(rows(recs))["CH-50"], "Explainers: classifier")
    ranks = t.frame.set_index("explainer")["mean rank ↓"]
    assert ranks["a"] == "1" and ranks["b"] == "2" and ranks["c"] == ranks["d"] == "3.50"  # both below random
    assert "Not in the mean rank" in t.note and "relevance-rank-acc" in t.note


def test_metric_marks_follow_the_explainer_into_every_table_of_its_model(monkeypatch):
    class Sanity(Metric):
        """Sanity plugin."""

        values = {"survives": ("bool", True)}
        presentation = Shows(marks={"survives": "maps survive model randomisation"}, ranked=False)

    metrics.register("sanity-plugin", Sanity)
    recs = [ordering("edge", 1.0), ordering("lrp", 2.0),
            dict(family="sanity-plugin", explainer="edge", metric="survives", value=1.0),
            dict(family="sanity-plugin", explainer="lrp", metric="survives", value=0.0),
            dict(family="cluster-detection", explainer="edge", clusterer="spray", metric="cluster-acc", value=60.0)]
    tables = build_tables(rows(recs))["CH-50"]
    for t in (table(tables, "Explainers"), table(tables, "Detection matrix")):
        labels = t.frame.explainer.tolist()
        assert "edge §" in labels and "§ maps survive model randomisation." in t.note
    assert "lrp" in table(tables, "Explainers").frame.explainer.tolist()  # mean 0 < 0.5: no mark


def test_undirected_values_have_no_arrow_and_headers_carry_units():
    recs = [dict(family="data-cleaning", explainer="a", clusterer="k", metric=m, stage="cleaned", value=v,
                 unit=u, higher_is_better=h, split=sp)
            for m, v, u, h, sp in (("n-removed", 12, "count", False, ""), ("precision-removed", 80.0, "%", True, ""),
                                   ("clean-acc-cost", 1.5, "pp", False, "clean_test"))]
    cols = list(table(build_tables(rows(recs))["CH-50"], "Cleaning").frame.columns)
    # the declared stage "cleaned" is a column (PRP Table I); a count has no better side
    assert "n-removed / cleaned [count]" in cols and "precision-removed / cleaned [%] ↑" in cols
    assert "clean-acc-cost / cleaned [pp] ↓" in cols


def test_tidy_csv_is_ascii_without_float_noise(tmp_path):
    recs = [dict(explainer=e, metric="relevance-mass-acc", split="artifact_test", value=v + s, seed=s)
            for s in range(3) for e, v in (("a", 76.99999809265137), ("random", 0.1))]
    recs += [ordering("a", 5.0), ordering("random", 4.0)]
    paths = write_leaderboard(rows(recs), tmp_path, suite="s")
    text = paths["CH-50.explainers.csv"].read_text()
    header = text.splitlines()[0]
    assert header.isascii() and "9999" not in text and "0000001" not in text
    csv = pd.read_csv(paths["CH-50.explainers.csv"])
    assert {"mean", "ci_low", "ci_high", "n", "unit", "higher_is_better", "relative_to"} <= set(csv.columns)
    assert csv.set_index(["explainer", "metric"]).loc[("a", "relevance-mass-acc"), "mean"] == 78.0


def test_latex_has_labels_captions_with_n_and_splits_wide_tables():
    from hansbench.bench.report.writers import LATEX_BUDGET

    wide = pd.DataFrame({"explainer": ["a", "b"], **{f"a-long-value-column-{i} [%] ↑": ["0.123 ± 0.045 *"] * 2
                                                     for i in range(12)}})
    tex = to_latex(wide, "CH-50: Explainers. mean over n = 3 seeds", "tab:x")
    parts = tex.count(r"\begin{table}")
    assert parts > 1 and r"\label{tab:x-1}" in tex and r"\hbfit" in tex and r"\hbscale}" in tex
    # the caption and its short form (list of tables)
    assert tex.count("(part 1 of") == 2 and "n = 3" in tex and LATEX_BUDGET > 0


PDFLATEX = __import__("shutil").which("pdflatex")


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (apt-get install texlive-latex-extra)")
def test_latex_document_compiles_without_overfull_boxes(tmp_path):
    import subprocess

    from hansbench.bench.report.writers import latex_overfull

    recs = [ordering(e, v + s, seed=s, split=sp) for s in range(3) for e, v in (("a_1%", 5.0), ("b", 4.0), ("random", 3.0))
            for sp in ("clean_test", "artifact_test")]
    recs += [dict(explainer=e, metric=m, split="artifact_test", value=0.1 * i + s, seed=s)
             for s in range(3) for i, e in enumerate(("a_1%", "b", "random"))
             for m in ("relevance-mass-acc", "relevance-rank-acc", "pointing-game", "relevance-mass-acc-best-view")]
    recs += [dict(family="cluster-detection", explainer=e, clusterer=c, metric="cluster-acc", value=60.0 + s, seed=s)
             for s in range(3) for e in ("a_1%", "b") for c in ("spray", "coreg", "wmsc", "mcgc", "simvc", "comvc")]
    paths = write_leaderboard(rows(recs), tmp_path, suite="tex & co")
    out = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "leaderboard.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=180)
    log = (tmp_path / "leaderboard.log").read_text(errors="replace")
    assert out.returncode == 0, log[-3000:]
    assert max(latex_overfull(log), default=0.0) <= 1.0, "an overfull box wider than 1 pt"
    tex = paths["leaderboard.tex"].read_text()
    assert r"\label{tab:" in tex and "n = 3" in tex and r"\documentclass" in tex


def test_critical_difference_diagrams_are_written_with_a_vector_twin(tmp_path):
    from PIL import Image

    recs = [dict(scenario=sc, explainer=e, metric="relevance-mass-acc", split="artifact_test", value=v + 0.01 * s,
                 seed=s) for sc in ("CH-50", "BD-30") for s in range(3)
            for e, v in (("a", 0.5), ("b", 0.4), ("c", 0.3), ("random", 0.1))]
    paths = write_leaderboard(rows(recs), tmp_path, suite="s")
    png = paths["cd-classifier-explainers.png"]
    assert paths["cd-classifier-explainers.svg"].is_file()
    assert Image.open(png).info["dpi"][0] >= 200
    md = paths["leaderboard.md"].read_text()
    assert "N = 6 blocks" in md and "Nemenyi CD" in md and "Kendall's tau" in md


def test_backdoor_detection_is_shown_beside_its_label_flip_and_clean_controls(det_metric):
    from hansbench.datasets.poisonings import get_poisoning

    if not getattr(get_poisoning("LF"), "control_of", ""):
        pytest.skip("the LF poisoning (contract C4) is not installed")
    from hansbench.bench.suite.config import validate
    from hansbench.bench.suite.record import to_record

    cfg = to_record(validate({  # the run's resolved configuration, as the store keeps it
        "suite": {"seeds": [0, 1, 2], "dev_seeds": [7]}, "models": {"classifier": {}},
        "scenarios": [dict(name="BD-30", poisoning="BD", fraction=0.3, target_class="speed limit"),
                      dict(name="LF-30", poisoning="LF", fraction=0.3, target_class="speed limit"),
                      dict(name="clean", poisoning="none", fraction=0.0)]}))
    df = pd.concat([det_rows({("a", "k"): [0.9, 0.8, 0.85], ("pixels", "k"): [0.4, 0.5, 0.45]}),
                    det_rows({("a", "k"): [0.2, 0.1, 0.15], ("pixels", "k"): [0.6, 0.7, 0.65]}, scenario="LF-30"),
                    det_rows({("a", "k"): [0.1, 0.12, 0.08]}, scenario="clean", metric="flagged")])
    sec = [s for s in build_sections(df, config=cfg) if s.scenario == "BD-30"][0]
    ctl = table(sec.tables, "Detection controls: classifier").frame.set_index("detector")
    assert ctl.loc["a × k", "f1-unsup on LF-30 (label flip, no trigger)"].startswith("0.15")
    assert ctl.loc["a × k", "flagged on clean (clean control)"].startswith("0.10")
    s = sec.summary[0]
    assert s["label-flip control"].startswith("LF-30: a × k 0.15") and s["clean control"].startswith("clean flagged")
    assert "evaluation seeds 0-2 (settings tuned on 7)" in table(sec.tables, "Detection matrix").caption


def test_an_undefined_cell_is_decided_on_its_numbers_not_its_text():
    """A cell with no finite value reads "–" with no "(n=k)" and no gate mark; a defined one keeps both."""
    import math

    from hansbench.bench.report import cells
    from hansbench.bench.report.stats import Interval

    undefined, one = Interval(math.nan, n=0), Interval(0.5, n=1)
    assert not cells.shown(undefined) and cells.text(undefined, 3) == "–"
    assert cells.shown(one) and cells.text(one, 3) == "0.500 (n=1)"
    gated = rows([dict(family="relevance-ordering", metric="ordering-auc-class", explainer=e, value=v,
                       split="clean_test") for e, v in (("a", None), ("b", 2.0))]
                 + [dict(family="reliance", metric="took", value=0.0)])  # the poisoning did not take: gated
    t = table(build_tables(gated)["CH-50"], "Explainers")
    texts = t.frame.set_index("explainer").iloc[:, 0]
    assert (texts["a"], texts["b"]) == ("–", f"2 {leaderboard.GATE_MARK}")


def test_rankings_take_the_ranked_models_from_the_gates_not_from_the_status_text(tmp_path):
    """A ranked model's status carries its reliance evidence ("ranked; reliance seed 0: ..."): which models enter the
    CD diagrams is the sections' own fact, so a longer status text can never drop them."""
    from hansbench.bench.report.page import write_rankings

    recs = [dict(scenario=sc, explainer=e, metric="relevance-mass-acc", split="artifact_test", value=v + 0.01 * s,
                 seed=s) for sc in ("CH-50", "BD-30") for s in range(3)
            for e, v in (("a", 0.5), ("b", 0.4), ("c", 0.3), ("random", 0.1))]
    sections = build_sections(rows(recs))
    assert all(s.ranked == {"classifier"} for s in sections)
    for s in sections:
        for r in s.summary:
            r["status"] = "ranked; reliance seed 0: acc-gap +40.0 pp [+30.0, +50.0], took-p 1e-09"
    assert [png for _, png, _ in write_rankings(rows(recs), sections, tmp_path)] == ["cd-classifier-explainers.png"]
