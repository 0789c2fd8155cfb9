"""One tidy schema for every table's numbers (results.csv), every paired comparison with its verdict
(verdicts.csv), and the run packed as one reproducible archive beside the page."""

from __future__ import annotations

import math
import zipfile

import pandas as pd
import pytest

from hansbench.bench.engine.store import ROW_COLUMNS, ResultsStore
from hansbench.bench.report import archive, csv_files
from hansbench.bench.report.results import Comparison
from hansbench.bench.report.writers import write_leaderboard

pytestmark = pytest.mark.filterwarnings("ignore")


def detection_rows() -> pd.DataFrame:
    recs = []
    for seed in range(8):
        for e, c, v in (("gradcam", "spray", 0.9), ("random", "spray", 0.4), ("pixels", "spray", 0.5)):
            recs.append(dict(scenario="CH-50", seed=seed, model="classifier", explainer=e, clusterer=c, split="",
                             stage="", detail="", unit="", family="cluster-detection", metric="cluster-f1-unsup",
                             value=v + 0.01 * seed, higher_is_better=True))
    frame = pd.DataFrame(recs)
    return frame.reindex(columns=[c for c in ROW_COLUMNS if c in frame.columns or c != "rule"]).fillna("")


def test_results_csv_has_the_one_schema_and_verdicts_csv_every_comparison(tmp_path):
    rows = detection_rows()
    rows["value"] = rows["value"].astype(float)
    paths = write_leaderboard(rows, tmp_path, suite="s", config={}, runs=[])
    res = pd.read_csv(paths["results.csv"], keep_default_na=False)
    assert tuple(res.columns[:12]) == csv_files.SCHEMA
    f1 = res[(res.detector == "gradcam × spray") & (res.table == "cluster-detection")]
    assert len(f1) >= 1 and f1["mean"].iloc[0] == pytest.approx(0.935) and f1["n"].iloc[0] == 8
    assert f1["per_seed"].iloc[0].split(";")[:2] == ["0.9", "0.91"]


def test_verdicts_csv_holds_every_paired_comparison_with_its_difference_and_verdict(tmp_path):
    recs = [dict(scenario="CH-50", seed=seed, model="classifier", explainer=e, clusterer="", split="clean_test",
                 stage="", detail="", unit="", family="relevance-ordering", metric="ordering-auc-class",
                 value=v + 0.01 * seed + (0.002 * seed * seed if e == "gradcam" else 0), higher_is_better=True)
            for seed in range(8) for e, v in (("gradcam", 0.9), ("random", 0.4))]
    paths = write_leaderboard(pd.DataFrame(recs), tmp_path, suite="s", config={}, runs=[])
    ver = pd.read_csv(paths["verdicts.csv"])
    assert tuple(ver.columns) == csv_files.VERDICT_COLUMNS and len(ver) > 0
    vs_random = ver[(ver.detector == "gradcam") & (ver.against == "random")].iloc[0]
    diffs = [0.5 + 0.002 * s * s for s in range(8)]
    assert vs_random["diff"] == pytest.approx(sum(diffs) / 8, abs=1e-5) and vs_random.verdict == "better"
    assert vs_random.diff_low < vs_random["diff"] < vs_random.diff_high and vs_random.p_holm < 0.05


def comparison(diff: float, p_holm: float, n: int) -> Comparison:
    return Comparison(("a",), "v", "b", "*", p_holm, "sign-flip", n, diff, True, p_holm)


def test_the_verdict_word_says_what_the_test_says():
    assert csv_files.verdict_word(comparison(0.5, 0.25, 3), 1) == "no verdict"  # 2/2^3 = 0.25: cannot reach alpha
    assert csv_files.verdict_word(comparison(0.5, 0.01, 8), 1) == "better"
    assert csv_files.verdict_word(comparison(-0.5, 0.01, 8), 1) == "worse"
    assert csv_files.verdict_word(comparison(0.5, 0.2, 8), 1) == "not told apart"
    assert csv_files.verdict_word(comparison(0.5, math.nan, 8), 1) == "not told apart"


def test_the_archive_packs_the_page_csvs_figures_and_run_record_reproducibly(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    store.start_run("s", {"suite": {"name": "s", "seeds": [0]}}, "cpu")
    runs = store.runs()
    store.close()
    for name in ("leaderboard.md", "leaderboard.tex", "results.csv", "curve.png", "outputs.json"):
        (tmp_path / name).write_text(name)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "model.pt").write_text("weights")
    first = archive.pack(tmp_path, runs).read_bytes()
    with zipfile.ZipFile(tmp_path / archive.ARCHIVE) as z:
        names = set(z.namelist())
        record = z.read(archive.RECORD).decode()
    assert names == {"leaderboard.md", "leaderboard.tex", "results.csv", "curve.png", "results.sqlite", "run.json"}
    assert '"suite": "s"' in record and '"device": "cpu"' in record
    assert archive.pack(tmp_path, runs).read_bytes() == first  # the same files, the same bytes
    archive.STORE_MAX_BYTES, old = 0, archive.STORE_MAX_BYTES
    try:
        with zipfile.ZipFile(archive.pack(tmp_path, runs)) as z:
            assert "results.sqlite" not in z.namelist()  # a large store stays out
    finally:
        archive.STORE_MAX_BYTES = old
