"""The leaderboard is built from metric metadata alone: structure, statistics, gates, marks, names, writers."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from hansbench.bench import leaderboard
from hansbench.bench.leaderboard import (
    TIMING_FAMILY,
    build_sections,
    build_tables,
    omitted_from_jobs,
    presentation,
)
from hansbench.bench.publish import csv_name, to_latex, write_leaderboard
from hansbench.bench.store import ROW_COLUMNS
from hansbench.metrics.base import Metric
from hansbench.registry import explainers, metrics


def rows(records):
    base = dict(scenario="CH-50", seed=0, model="classifier", explainer="", clusterer="", split="", stage="",
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
def test_every_builtin_metric_declares_a_valid_presentation():
    for name in metrics.names():
        cls = metrics.get(name)
        p = presentation(name)
        assert p.shape in leaderboard.SHAPES, name
        assert set(p.headline) <= set(cls.values), f"{name}: headline names undeclared values"
        assert set(p.gates) <= set(cls.values), f"{name}: gates name undeclared values"
        assert p.meaning, f"{name}: no one-line meaning"


def test_a_plugin_metric_gets_its_table_without_changes_to_hansbench(monkeypatch):
    class Plugin(Metric):
        """Plugin score: how plugged in a map is."""

        level = "explainer"
        values = {"plug": ("", True), "noise": ("", True)}
        headline = ("plug",)

    monkeypatch.setitem(metrics._entries, "my-plugin", Plugin)
    df = rows([dict(family="my-plugin", explainer="a", metric="plug", value=1.0),
               dict(family="my-plugin", explainer="b", metric="plug", value=2.0),
               dict(family="my-plugin", explainer="b", metric="noise", value=9.0),
               dict(family="never-installed", explainer="a", clusterer="k", metric="x", value=3.0)])
    tables = build_tables(df)["CH-50"]
    t = table(tables, "My plugin: classifier")
    assert list(t.frame.columns) == ["explainer", "plug ↑", "mean rank ↓"]  # headline only
    assert t.frame.explainer.tolist() == ["b", "a"]
    assert "how plugged in a map is" in t.note
    assert table(tables, "Never installed: classifier").shape == "detection"  # unknown family: from its rows


def test_bench_names_no_metric_or_method():
    """No registered metric, explainer or clusterer name appears as a string literal in bench's output code."""
    from hansbench.registry import clusterers

    # the table shapes are the contract's vocabulary ("reliance" is a shape and a metric's name)
    names = (set(metrics.names()) | set(explainers.names()) | set(clusterers.names())) - set(leaderboard.SHAPES)
    for module in ("leaderboard.py", "figures.py"):
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
        assert t.frame["mean rank ↓"].tolist() == ["1", "2"]


def test_raw_scores_are_shown_relative_to_the_reference_row():
    df = rows([ordering("prp", 7.0), ordering("random", 5.0), ordering("prp", 9.0, seed=1),
               ordering("random", 6.0, seed=1), ordering("lrp", 4.0), ordering("lrp", 6.0, seed=1)])
    t = table(build_tables(df)["CH-50"], "Explainers: classifier")
    col = "ordering-auc-class − random / clean_test ↑"
    f = t.frame.set_index("explainer")
    assert f.loc["prp", col] == "2.5 ± 0.707"  # (7-5, 9-6): mean 2.5, std 0.707
    assert f.loc["lrp", col] == "-0.5 ± 0.707"
    assert f.loc["random (reference)", col].startswith("raw 5.5 ± 0.707")
    assert t.frame.explainer.tolist()[-1] == "random (reference)"  # the reference is last and not ranked
    assert f.loc["random (reference)", "mean rank ↓"] == "–" and f.loc["prp", "mean rank ↓"] == "1"
    assert "reference explainer" in t.note


def test_without_a_reference_raw_values_are_said_to_be_raw():
    t = table(build_tables(rows([ordering("prp", 7.0), ordering("lrp", 4.0)]))["CH-50"], "Explainers")
    assert "ordering-auc-class / clean_test ↑" in t.frame.columns and "raw values" in t.note


def test_cells_are_mean_std_with_n_where_it_differs():
    df = rows([dict(explainer="a", metric="relevance-mass-acc", value=v, seed=s, split="artifact_test")
               for s, v in enumerate([1.0, 2.0, 3.0])]
              + [dict(explainer="b", metric="relevance-mass-acc", value=5.0, seed=0, split="artifact_test")])
    f = table(build_tables(df)["CH-50"], "Explainers").frame.set_index("explainer")
    assert f.loc["a", "relevance-mass-acc / artifact_test ↑"] == "2 ± 1"
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
    assert summary["protopnet"]["best explainer"] == "–" and summary["classifier"]["best explainer"].startswith("a ")


def test_model_accuracy_and_insertion_stand_in_for_reliance_and_keep_a_table_when_superseded():
    base = [dict(family="model-accuracy", metric="class-acc", value=100.0, split="artifact_test", stage="trained"),
            dict(family="artifact-insertion", metric="insertion-flip-rate", value=40.0, split="clean_test",
                 unit="%")]
    alone = build_sections(rows(base))[0].tables
    assert alone[0].shape == "reliance" and "insertion-flip-rate / clean_test % ↑" in alone[0].frame.columns
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
    t = table(sec.tables, "Cluster detection: classifier")
    f = t.frame.set_index("explainer")
    assert list(t.frame.columns) == ["explainer", "spray", "mcgc"]
    assert f.loc["prp", "spray"] == "64.5 / 0.45" and f.loc["prp", "mcgc"] == "99 / 0.99 †"
    assert f.loc["lrp", "mcgc"] == "" and "fell back" in t.note
    assert sec.summary[0]["best explainer × clusterer"].startswith("prp × mcgc (cluster-acc 99")


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
    assert (t.frame["n-pruned / pruned ↓"] == "3").all()  # a split-less value on every split's row


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
                              error="prototype-pruning needs one map per prototype") for i, e in enumerate("abc")]
                        + [dict(key="z", status="done", scenario="CH-50", seed=0, model="classifier", explainer="a",
                                clusterer="", family="m", error=None)])
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
    assert {"explainer", "mean", "std", "n"} <= set(csv.columns) and evil in set(csv.explainer)
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
        table_shape = shape
        stages = ("s1",) if shape == "stages" else ()

    monkeypatch.setitem(metrics._entries, "m-shape", M)
    df = rows([dict(family="m-shape", explainer="a", clusterer="c" if shape == "detection" else "", metric="v",
                    stage="s1", value=1.0)])
    tables = build_tables(df)["CH-50"]
    assert len(tables) == 1 and tables[0].shape == shape and len(tables[0].frame) == 1
