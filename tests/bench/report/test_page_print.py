"""A page a paper takes (issue 29 item 5): the published quick run's page, compiled with pdflatex, has no float
TeX cannot place ("Float too large"), no overfull box and loses no row; the summary comes first in every format;
the tables link their CSVs; the page says how the run was made; attack success is defined once."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from hansbench.bench.engine.store import ResultsStore
from hansbench.bench.report import page as page_mod
from hansbench.bench.report.leaderboard import format_value
from hansbench.bench.report.render import latex as latex_writer
from hansbench.bench.report.render.columns import LATEX_BUDGET, split_columns
from hansbench.bench.report.writers import write_leaderboard

pytestmark = pytest.mark.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[3]
QUICK = ROOT / "results" / "quick" / "results.sqlite"
PDFLATEX, PDFTOTEXT = shutil.which("pdflatex"), shutil.which("pdftotext")
NEEDS_TEX = pytest.mark.skipif(PDFLATEX is None or PDFTOTEXT is None,
                               reason="pdflatex or pdftotext is not installed (apt-get install texlive-latex-extra "
                                      "poppler-utils): the compiled page cannot be checked here")
# what pdflatex prints for the characters the LaTeX writer spells as commands
PRINTED = {"−": "-", "–": "-", "—": "-", "…": "...", "‘": "'", "’": "'", "“": '"', "”": '"'}


def squeeze(text: str) -> str:
    """Text without whitespace and with the dashes and quotes TeX prints unified (a row is compared as one run)."""
    text = "".join(PRINTED.get(ch, ch) for ch in text)
    return re.sub(r"\s+", "", text).replace("--", "-")


@pytest.fixture(scope="module")
def quick_page(tmp_path_factory):
    """The quick run's page, written from a copy of its published store."""
    if not QUICK.is_file():
        pytest.skip(f"no published quick run at {QUICK}")
    out = tmp_path_factory.mktemp("quick")
    shutil.copy(QUICK, out / "results.sqlite")
    store = ResultsStore(out / "results.sqlite")
    rows, run, runs = store.rows(None), store.latest_run(), store.runs()
    store.close()
    captured = {}
    real = page_mod.build_page

    def keep(*a, **kw):
        captured["doc"] = real(*a, **kw)
        return captured["doc"]

    page_mod_build, write_mod = page_mod.build_page, __import__("hansbench.bench.report.writers", fromlist=["x"])
    write_mod.build_page = keep
    try:
        paths = write_leaderboard(rows, out, suite="quick", config=run.config, runs=runs)
    finally:
        write_mod.build_page = page_mod_build
    return out, paths, captured["doc"]


def compile_tex(out: Path) -> tuple[str, str]:
    """pdflatex twice (longtable settles its widths on the second pass): the log and the PDF's text, laid out
    (a table row is one line)."""
    for _ in range(2):
        done = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "leaderboard.tex"], cwd=out,
                              capture_output=True, text=True, timeout=300)
    log = (out / "leaderboard.log").read_text(errors="replace")
    assert done.returncode == 0, log[-3000:]
    text = subprocess.run([PDFTOTEXT, "-layout", "leaderboard.pdf", "-"], cwd=out, capture_output=True, text=True,
                          timeout=120).stdout
    return log, text


def table_rows(doc) -> list[tuple[str, str]]:
    """(table anchor, the row's cells run together) of every row of every table part the LaTeX writer sets."""
    out = []
    for b in doc.tables():
        if b.prose:
            out += [(b.anchor, f"{r.get('scenario', '')}/{r.get('model', '')}") for _, r in b.table.frame.iterrows()]
            continue
        long = len(b.table.frame) > latex_writer.FLOAT_ROWS
        for part in split_columns(b.table.frame, latex_writer.LONG_BUDGET if long else LATEX_BUDGET):
            out += [(b.anchor, "".join(format_value(v) for v in r.values)) for _, r in part.iterrows()]
    return out


@NEEDS_TEX
def test_the_quick_runs_latex_has_no_float_too_large_no_overfull_box_and_every_row(quick_page):
    out, _, doc = quick_page
    log, text = compile_tex(out)
    assert "Float too large" not in log
    assert not re.findall(r"Overfull \\[hv]box", log), re.findall(r"Overfull \\[hv]box.*", log)[:5]
    pdf = "\n".join(squeeze(line) for line in text.splitlines())  # a row must be on one line
    rows = table_rows(doc)
    assert len(rows) > 100
    lost = [(a, r) for a, r in rows if squeeze(r) not in pdf]
    assert not lost, f"{len(lost)} of {len(rows)} rows are not in the PDF, e.g. {lost[:3]}"


@NEEDS_TEX
def test_a_summary_and_a_table_longer_than_a_page_run_on_over_pages(tmp_path):
    """60 summary blocks and a 90-row table: as floats, TeX drops them ("Float too large"); here every row prints."""
    from hansbench.bench.report.document import Document, Section, TableBlock
    from hansbench.bench.report.leaderboard import Table

    summary = pd.DataFrame({"scenario": [f"S{i}" for i in range(60)], "model": "classifier",
                            "verdict": [f"verdict number {i} with a sentence that wraps " * 3 for i in range(60)]})
    long = pd.DataFrame({"explainer": [f"e{i:03d}" for i in range(90)], "v [%] ↑": [f"{i}.5" for i in range(90)]})
    doc = Document("long", [Section("Summary", 2, [TableBlock(Table("Summary", summary), "s", "sum", prose=True)]),
                            Section("T", 2, [TableBlock(Table("T", long), "t", "long table")])])
    (tmp_path / "leaderboard.tex").write_text(latex_writer.render(doc))
    log, text = compile_tex(tmp_path)
    assert "Float too large" not in log and "Overfull" not in log
    pdf = squeeze(text)
    assert all(f"S{i}/classifier" in pdf for i in range(60)) and all(f"e{i:03d}{i}.5" in pdf for i in range(90))


def first_heading(text: str, pattern: str) -> str:
    return re.findall(pattern, text)[0]


def test_the_summary_comes_first_in_every_format(quick_page):
    out, _, doc = quick_page
    assert doc.sections()[0].title == page_mod.SUMMARY_TITLE
    md = (out / "leaderboard.md").read_text()
    tex = (out / "leaderboard.tex").read_text()
    html = (out / "leaderboard.html").read_text()
    assert first_heading(md, r"\n## (.+)") == page_mod.SUMMARY_TITLE
    assert first_heading(tex, r"\\subsection\*\{(.+?)\}").startswith("Summary: which detector")
    assert first_heading(html, r"<h2[^>]*>(.+?)</h2>") == page_mod.SUMMARY_TITLE
    # and the first table of each is the summary's
    assert tex.index("longtable") < tex.index(r"\begin{table}") and html.index("summary-table") < html.index("<table")+99


def test_every_table_with_numbers_links_its_csv_in_markdown_and_html(quick_page):
    out, paths, doc = quick_page
    md, html = (out / "leaderboard.md").read_text(), (out / "leaderboard.html").read_text()
    linked = [b for b in doc.tables() if b.csv]
    assert len(linked) > 20
    for b in linked:
        assert (out / b.csv).is_file() and f"](<{b.csv}>)" in md and f"href='{b.csv}'" in html


def test_the_page_says_how_the_run_was_made(quick_page):
    out, _, doc = quick_page
    store = ResultsStore(out / "results.sqlite")
    runs = store.runs()
    store.close()
    md = (out / "leaderboard.md").read_text()
    part = md[md.index(f"## {page_mod.PROVENANCE_TITLE}"):]
    for r in runs:
        assert f"run {r.id} (" in part and r.git_commit[:12] in part
    assert "threads per node" in part and "wall time" in part and "CPU" in part and "executor" in part
    assert f"torch {runs[-1].versions['torch']}" in part
    commits = {r.git_commit for r in runs}
    # rows from more than one commit: the page says so; from one (the republished quick): it names that one
    assert ("commits" in part) == (len(commits) > 1)


def test_attack_success_is_defined_once_and_the_tables_use_that_name(quick_page):
    out, _, doc = quick_page
    md = (out / "leaderboard.md").read_text()
    assert md.count("asr: attack success:") == 1
    assert page_mod.DEFINITIONS["asr"].count(".") == 1  # one sentence
    headers = [str(c) for b in doc.tables() for c in b.table.frame.columns]
    assert any(h.split(" ")[0] == "asr" for h in headers)
    assert not [h for h in headers if re.search(r"attack|success|\bASR\b", h)]  # no other name for it
