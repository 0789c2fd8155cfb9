"""What the leaderboard shows for a sweep: the breakdown rule, the breakdown table, the curves, the page section."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hansbench.bench.engine.store import ROW_COLUMNS
from hansbench.bench.report import sweep_report
from hansbench.bench.report.figures import sweep as figure_module
from hansbench.bench.report.sweep_report import (
    NEVER,
    axis_data,
    breakdown,
    breakdown_table,
    sweep_figure,
    sweep_sections,
)
from hansbench.bench.report.writers import write_leaderboard
from hansbench.bench.suite.config import validate
from hansbench.bench.suite.record import to_record
from hansbench.bench.suite.sweep import SweepAxis as Axis

FRACTIONS = (0.05, 0.1, 0.2, 0.3)
SEEDS = (0, 1, 2)
AXIS = Axis("CH", "fraction", (), tuple((f, f"CH-{round(100 * f)}") for f in FRACTIONS))
# the run's resolved configuration as the store keeps it: the loader expanded the sweep once
CONFIG = to_record(validate({"suite": {"seeds": list(SEEDS)}, "models": {"classifier": {}},
                             "sweep": [{"poisoning": "CH", "grid": {"fraction": list(FRACTIONS)}}]}))


def rows(records):
    base = dict(seed=0, model="classifier", explainer="", clusterer="", rule="", split="", stage="", detail="", unit="",
                higher_is_better=True)
    return pd.DataFrame([{**base, **r} for r in records])[ROW_COLUMNS]


def sweep_rows(f1: dict[tuple[str, str], list[float]], failed: dict[str, set[int]] | None = None,
               model="classifier", auroc=True, jitter=(-0.02, 0.0, 0.02)):
    """Per point of AXIS and seed: the reliance gate ``took`` (0 on the ``failed`` seeds) and per detector its
    cluster-ari (the point's mean + a per-seed jitter that sums to 0) and auroc."""
    recs = []
    for i, (_, sc) in enumerate(AXIS.points):
        for s in SEEDS:
            took = 0.0 if s in (failed or {}).get(sc, set()) else 1.0
            recs += [dict(scenario=sc, seed=s, model=model, family="reliance", metric="took", value=took, unit="bool"),
                     dict(scenario=sc, seed=s, model=model, family="reliance", metric="near-chance", value=0.0,
                          unit="bool", higher_is_better=False),
                     dict(scenario=sc, seed=s, model=model, family="reliance", metric="acc-gap",
                          value=10.0 * (i + 1) + 100 * jitter[s], unit="pp")]
            for (e, c), means in f1.items():
                recs.append(dict(scenario=sc, seed=s, model=model, explainer=e, clusterer=c,
                                 family="cluster-detection", metric="cluster-ari", value=means[i] + jitter[s]))
                if auroc:
                    recs.append(dict(scenario=sc, seed=s, model=model, explainer=e, clusterer=c,
                                     family="cluster-detection", metric="auroc", value=min(1.0, means[i] + 0.05)))
    return rows(recs)


# -- the rule ----------------------------------------------------------------------------------------------------
def test_breakdown_is_the_smallest_taken_value_at_the_level_and_says_whether_it_holds():
    took = [True] * 4
    assert breakdown(list(zip(FRACTIONS, [0.2, 0.5, 0.9, 0.95], took)), 0.8) == sweep_report.Reached((2,), "0.2", "yes")
    assert breakdown(list(zip(FRACTIONS, [0.1, 0.2, 0.3, 0.79], took)), 0.8).breakdown == NEVER
    dropped = breakdown(list(zip(FRACTIONS, [0.3, 0.85, 0.9, 0.6], took)), 0.8)
    assert dropped.breakdown == "0.1" and dropped.holds == "no: 0.600 at 0.3"
    # the high F1 at 0.05 does not count: the poisoning did not take there
    skipped = breakdown(list(zip(FRACTIONS, [0.99, 0.5, 0.9, 0.95], [False, True, True, True])), 0.8)
    assert skipped.breakdown == "0.2" and skipped.holds == "yes"
    assert breakdown([(0.1, 0.8, True)], 0.8).breakdown == "0.1"  # >= the level reaches it
    assert breakdown([(0.1, float("nan"), True), (0.2, 0.9, True)], 0.8).breakdown == "0.2"


def test_a_categorical_axis_lists_every_value_that_reaches_the_level():
    pts = [("BD", 0.9, True), ("CH", 0.5, True), ("BD-A2O", 0.95, False), ("LF", 0.85, True)]
    r = breakdown(pts, 0.8, numeric=False)
    assert r.breakdown == "BD, LF" and r.at == (0, 3) and r.holds == ""
    assert breakdown(pts[1:3], 0.8, numeric=False).breakdown == NEVER


# -- the table ---------------------------------------------------------------------------------------------------
def test_breakdown_table_skips_points_that_did_not_take_and_marks_baselines(tmp_path):
    df = sweep_rows({("lrp", "spray"): [0.95, 0.5, 0.9, 0.95], ("gradcam", "spray"): [0.2, 0.85, 0.9, 0.6],
                     ("random", "spray"): [0.5, 0.5, 0.5, 0.5], ("pixels", "spray"): [0.3, 0.4, 0.82, 0.9]},
                    failed={"CH-5": {1}})
    t = breakdown_table(axis_data(df, AXIS))
    f = t.frame.set_index("method")
    assert f.loc["lrp × spray", "breakdown fraction"] == "0.2"  # 0.95 at 0.05 did not count: CH-5 seed 1 failed
    assert f.loc["gradcam × spray", "breakdown fraction"] == "0.1"
    assert f.loc["gradcam × spray", "holds above"] == "no: 0.600 at 0.3"
    assert f.loc["random × spray", "breakdown fraction"] == NEVER and f.loc["random × spray", "holds above"] == "–"
    assert f.loc["pixels × spray (baseline)", "breakdown fraction"] == "0.2"
    # how strongly it took there: the reliance family's declared effect (acc-gap at 0.2: 30 pp ± its t half-width)
    gap = np.array([28.0, 30.0, 32.0])
    assert f.loc["lrp × spray", "reliance there (acc-gap)"] == f"{30:.1f} ± {stats.t.ppf(0.975, 2) * stats.sem(gap):.1f}"
    # the cell: mean ± the 95 % t half-width over the three seeds (scipy, independently)
    v = np.array([0.9 - 0.02, 0.9, 0.9 + 0.02])
    half = stats.t.ppf(0.975, 2) * stats.sem(v)
    assert f.loc["lrp × spray", "cluster-ari there"] == f"0.900 ± {half:.3f}"
    assert list(t.frame.method)[:2] == ["gradcam × spray", "lrp × spray"]  # breaks down first, first
    assert "n = 3" in t.caption and "CH-5 (classifier: poisoning did not take (seed 1))" in t.note
    assert "smallest swept fraction" in t.note and "0.8" in t.note
    tidy = t.tidy.set_index(["explainer", "clusterer"])
    assert tidy.loc[("lrp", "spray"), "breakdown"] == 0.2 and tidy.loc[("pixels", "spray"), "baseline"]
    never = tidy.loc[("random", "spray")]
    assert not never["reached"] and pd.isna(never["breakdown"]) and np.isnan(never["mean"])


def test_breakdown_table_on_a_categorical_axis_lists_the_values_there():
    axis = Axis("P", "poisoning", (("fraction", 0.2),), (("CH", "CH-5"), ("BD", "CH-10"), ("LF", "CH-20")))
    df = sweep_rows({("lrp", "spray"): [0.9, 0.5, 0.85, 0.0]})
    t = breakdown_table(axis_data(df[df.scenario != "CH-30"], axis))
    row = t.frame.iloc[0]
    assert row["breakdown poisoning"] == "CH, LF" and "holds above" not in t.frame
    assert row["cluster-ari there"].startswith("CH: 0.900 ± ") and "; LF: 0.850 ± " in row["cluster-ari there"]
    assert "every poisoning" in t.note


# -- the figure --------------------------------------------------------------------------------------------------
@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures sweep_report saves (saved as usual, kept for inspection)."""
    kept = []
    real = figure_module.save

    def keep(fig, out, name):
        kept.append(fig)
        return real(fig, out, name)

    monkeypatch.setattr(figure_module, "save", keep)
    return kept


def test_figure_draws_each_detector_hollow_where_the_poisoning_did_not_take(tmp_path, figures):
    from PIL import Image

    df = pd.concat([sweep_rows({("lrp", "spray"): [0.3, 0.6, 0.9, 0.95], ("pixels", "spray"): [0.3, 0.3, 0.4, 0.5],
                                ("random", "spray"): [0.5] * 4}, failed={"CH-5": {0, 2}}),
                    sweep_rows({("prp", "spray"): [0.5, 0.6, 0.7, 0.8]}, model="protopnet", auroc=False)])
    fig = sweep_figure(axis_data(df, AXIS), tmp_path)
    assert fig.file == "sweep-CH-fraction.png" and (tmp_path / fig.vector).is_file()
    assert round(Image.open(tmp_path / fig.file).info["dpi"][0]) == 200
    (mpl,) = figures
    axes = np.array(mpl.axes).reshape(2, 3)  # a row per model kind; reliance, cluster-ari, auroc
    det = axes[0][1]
    assert det.get_title() == "(b) cluster-ari · classifier" and axes[0][2].get_title().startswith("(c) auroc")
    assert axes[1][1].get_xlabel().replace("\n", " ") == figure_module.axis_label("fraction")  # the bottom row
    marks = [ln for ln in det.get_lines() if ln.get_marker() not in ("None", "", ".") and len(ln.get_xdata()) == 1]
    hollow = {float(ln.get_xdata()[0]) for ln in marks if ln.get_markerfacecolor() == "white"}
    filled = {float(ln.get_xdata()[0]) for ln in marks if ln.get_markerfacecolor() != "white"}
    assert hollow == {0.05} and filled == {0.1, 0.2, 0.3}
    level = [ln for ln in det.get_lines() if list(ln.get_ydata()) == [0.8, 0.8]]
    assert level and level[0].get_linestyle() == ":"
    styles = {ln.get_color(): ln.get_linestyle() for ln in det.get_lines() if len(ln.get_xdata()) == 4}
    from hansbench.bench.report.figures.styles import method_style
    assert styles[method_style("pixels").color] == "--" and styles[method_style("random").color] == ":"
    assert styles[method_style("lrp").color] == "-"
    assert len(det.collections) == 3  # a t-band per detector (n = 3 seeds)
    assert "Hollow marker" in fig.caption and "CH-5 classifier: poisoning did not take (seeds 0, 2)" in fig.caption
    assert "n = 3 seeds 0-2" in fig.caption or "n = 3 seeds 0, 1, 2" in fig.caption
    assert "band: 95 % Student-t" in fig.caption
    legend = [t.get_text() for t in mpl.legends[0].get_texts()]
    assert "pixels × spray (baseline)" in legend and "prp × spray" in legend
    assert axes[1][2].get_title().startswith("(c) ") and not axes[1][2].get_lines()  # protopnet: no auroc rows
    rel = axes[0][0]  # (a): the reliance effect (acc-gap, pp) with its band, hollow where a gate failed
    assert rel.get_ylabel() == "acc-gap [pp]" and rel.get_title().startswith("(a) how strongly it took")
    gap = [ln for ln in rel.get_lines() if len(ln.get_xdata()) == 4][0]
    assert list(gap.get_ydata()) == pytest.approx([10.0, 20.0, 30.0, 40.0]) and len(rel.collections) == 1
    rel_hollow = {float(ln.get_xdata()[0]) for ln in rel.get_lines()
                  if len(ln.get_xdata()) == 1 and ln.get_markerfacecolor() == "white"}
    assert rel_hollow == {0.05}


def test_two_seeds_are_drawn_as_points_and_a_categorical_axis_gets_its_values_as_ticks(tmp_path, figures):
    axis = Axis("P", "poisoning", (), (("CH", "CH-5"), ("BD", "CH-10")))
    df = sweep_rows({("lrp", "spray"): [0.9, 0.5, 0.0, 0.0]}, auroc=False)
    df = df[df.scenario.isin(["CH-5", "CH-10"]) & (df.seed < 2)]
    fig = sweep_figure(axis_data(df, axis), tmp_path)
    ax = figures[0].axes[1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CH", "BD"] and figures[0].axes[-1].get_xlabel() == "poisoning"
    seeds = [ln for ln in ax.get_lines() if ln.get_marker() == "."]
    assert len(seeds) == 2 and all(len(ln.get_ydata()) == 2 for ln in seeds) and not ax.collections
    assert "each seed" in fig.caption and len(figures[0].axes) == 2  # no auroc rows: no panel (c)


# -- the page ----------------------------------------------------------------------------------------------------
def page_rows():
    return sweep_rows({("lrp", "spray"): [0.3, 0.6, 0.9, 0.95], ("a_1%", "spray"): [0.3, 0.85, 0.9, 0.95],
                       ("pixels", "spray"): [0.3, 0.3, 0.4, 0.5]}, failed={"CH-5": {1}})


def test_page_has_a_sweeps_section_between_rankings_and_scenarios_in_every_format(tmp_path):
    assert list(validate(CONFIG["raw"]).sweep_axes) == [AXIS]  # the loader's axis is the one built by hand
    paths = write_leaderboard(page_rows(), tmp_path, suite="s", config=CONFIG)
    md = paths["leaderboard.md"].read_text()
    assert md.index("## Summary") < md.index("## Sweeps") < md.index("## CH-5")
    assert "![" in md and "(<sweep-CH-fraction.png>)" in md and "#### Breakdown: CH: fraction" in md
    assert "a\\_1%" in md  # escaped
    html = paths["leaderboard.html"].read_text()
    assert html.index("id='sweeps'") < html.index("id='sc-CH-5'") and "src='sweep-CH-fraction.png'" in html
    assert "id='t-sweep-CH-fraction-breakdown'" in html
    tex = paths["leaderboard.tex"].read_text()
    assert tex.index(r"\subsection*{Sweeps}") < tex.index(r"\subsection*{CH-5}")
    assert r"\includegraphics[width=\linewidth]{sweep-CH-fraction.png}" in tex and r"a\_1\%" in tex
    csv = pd.read_csv(paths["sweep-CH-fraction.breakdown.csv"])
    assert all(str(c).isascii() for c in csv.columns)
    assert csv.set_index("explainer").loc["a_1%", "breakdown"] == 0.1  # 0.85 >= 0.8 at 0.1
    assert paths["sweep-CH-fraction.svg"].is_file()


def test_no_sweep_no_section(tmp_path):
    paths = write_leaderboard(page_rows(), tmp_path, suite="s", config={"suite": {"seeds": list(SEEDS)}})
    assert "Sweeps" not in paths["leaderboard.md"].read_text() and not list(tmp_path.glob("sweep-*"))
    assert sweep_sections(page_rows(), CONFIG, tmp_path, axes=[]) == []


PDFLATEX = shutil.which("pdflatex")


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (apt-get install texlive-latex-extra)")
def test_latex_page_with_a_sweep_compiles(tmp_path):
    from hansbench.bench.report.writers import latex_overfull

    write_leaderboard(page_rows(), tmp_path, suite="s", config=CONFIG)
    out = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "leaderboard.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=180)
    log = (tmp_path / "leaderboard.log").read_text(errors="replace")
    assert out.returncode == 0, log[-3000:]
    assert "sweep-CH-fraction.png" in log and max(latex_overfull(log), default=0.0) <= 1.0
