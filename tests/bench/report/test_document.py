"""One page, three writers: the leaderboard is built once as a document and the Markdown, LaTeX and HTML writers
carry the same sections, tables and figures (the .tex included: per-scenario figures and "Not computed, and
why"), every name escaped in every format."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from hansbench.bench.engine.store import ROW_COLUMNS  # noqa: E402
from hansbench.bench.report.document import BulletList, Document, FigureBlock, Paragraph, Section, TableBlock  # noqa: E402
from hansbench.bench.report.escape import html_text, latex, markdown  # noqa: E402
from hansbench.bench.report.figures.base import Figure  # noqa: E402
from hansbench.bench.report.leaderboard import Table, build_sections  # noqa: E402
from hansbench.bench.report.page import NOT_COMPUTED, build_page  # noqa: E402
from hansbench.bench.report.render import html  # noqa: E402
from hansbench.bench.report.render import latex as latex_writer  # noqa: E402
from hansbench.bench.report.render import markdown as markdown_writer  # noqa: E402
from hansbench.bench.report.writers import write_leaderboard  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")
HOSTILE = "<script>x</script> & $1_0% | *y*"


def rows(explainer: str = "b") -> pd.DataFrame:
    base = dict(model="classifier", clusterer="", rule="", split="artifact_test", stage="", unit="", detail="",
                higher_is_better=True, family="artifact-localisation", metric="relevance-mass-acc")
    recs = [dict(scenario=sc, explainer=e, value=v + 0.01 * s, seed=s) for sc in ("CH-50", "BD-30") for s in range(3)
            for e, v in (("a", 0.5), (explainer, 0.4), ("random", 0.1))]
    recs += [dict(scenario="CH-50", family="cluster-detection", metric=m, explainer=e, clusterer=c, split="",
                  value=60.0 + s + i, seed=s) for s in range(3) for i, e in enumerate(("a", explainer))
             for c in ("spray", "coreg") for m in ("cluster-acc", "cluster-ari")]
    recs += [dict(scenario="CH-50", family="relevance-ordering", metric="ordering-auc-class", explainer=e,
                  split="clean_test", value=v, seed=s, detail=json.dumps({"curve": [0, v]}))
             for s in range(3) for e, v in (("a", 0.9), (explainer, 0.7))]
    return pd.DataFrame([{**base, **r} for r in recs])[ROW_COLUMNS]


OMITTED = pd.DataFrame([dict(scenario="CH-50", seed=0, model="classifier", explainer="a", clusterer="",
                             family="prototype-pruning", reason="needs one map per prototype")])


def figures(name: str = "curve") -> list[Figure]:
    return [Figure(sc, f"{name}-{sc}.png", f"{name} of {sc}", f"{name}-{sc}.svg") for sc in ("CH-50", "BD-30")]


# -- reading each format back ---------------------------------------------------------------------------------
def md_headings(text: str) -> list[str]:
    return [m.group(2) for m in re.finditer(r"^(#{1,3}) (.*)$", text, re.M)]


def tex_headings(text: str) -> list[str]:
    return re.findall(r"\\(?:sub)*section\*\{(.*)\}$", text, re.M)


def html_headings(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"<h[123](?: id='[^']*')?>(.*?)</h[123]>", text)]


def md_table_lines(text: str) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.startswith("|"):
            out[-1].append(line)
        elif out[-1]:
            out.append([])
    return [t for t in out if t]


def md_tables(text: str) -> int:
    return len(re.findall(r"^\|---", text, re.M))


def test_three_formats_carry_the_same_sections_tables_and_figures(tmp_path):
    paths = write_leaderboard(rows(), tmp_path, suite="s", figures=figures(), omitted=OMITTED,
                              partial="interrupted", config={})
    md, tex, page = (paths[f"leaderboard.{x}"].read_text() for x in ("md", "tex", "html"))
    sections = build_sections(rows(), OMITTED, {})
    doc = build_page(rows(), sections, tmp_path, suite="s", figures=figures(), partial="interrupted", config={})

    # the same headings, in the same order, as the document's sections
    want = [doc.title] + [s.title for s in doc.sections()]
    assert md_headings(md) == [markdown(x) for x in want]
    assert tex_headings(tex) == [latex(x) for x in want]
    assert html_headings(page) == [html_text(x) for x in want]
    assert {"Summary: which detector finds the poisoned samples", "Rankings across scenarios and seeds", "CH-50",
            "BD-30", NOT_COMPUTED, "Figures"} <= set(want)

    # the same tables: every scenario table plus the summary, in every format (none is split here)
    tables = doc.tables()
    assert len(tables) == 1 + sum(len(s.tables) for s in sections) >= 4
    assert md_tables(md) == len(tables) == tex.count(r"\begin{table}") == page.count("<table ")
    for b in tables:
        assert latex(b.caption) in tex and f"tab:{b.anchor}" in tex and f"id='{b.anchor}'" in page
        if b.heading:
            assert f"#### {markdown(b.table.title)}" in md and f"<h4>{html_text(b.table.title)}</h4>" in page

    # the same figures: the CD diagrams and one per scenario, referenced by every format
    files = [b.file for b in doc.figures()]
    assert {"curve-CH-50.png", "curve-BD-30.png"} < set(files) and any(f.startswith("cd-") for f in files)
    for f in files:
        assert f"(<{f}>)" in md and rf"\includegraphics[width=\linewidth]{{{f}}}" in tex and f"src='{f}'" in page
    assert md.count("![") == tex.count(r"\begin{figure}") == page.count("<figure>") == len(files)

    # what the .tex lacked before the document: per-scenario figures and what was not computed, and why
    ch50 = tex[tex.index(r"\subsection*{CH-50}"):tex.index(r"\subsection*{BD-30}")]
    assert r"\subsubsection*{Not computed, and why}" in ch50
    assert r"\item prototype-pruning: needs one map per prototype (1 combination)" in ch50
    assert r"\includegraphics[width=\linewidth]{curve-CH-50.png}" in ch50
    assert "PARTIAL RESULTS: interrupted" in md and "PARTIAL RESULTS: interrupted" in tex
    assert "PARTIAL RESULTS: interrupted" in page
    # the page's files: the drawn figures and the tables' CSVs, the figures handed in are the caller's
    assert set(doc.attachments()) <= set(paths) and "curve-CH-50.png" not in paths
    assert all(p.is_file() for p in paths.values())


def test_a_hostile_name_is_escaped_in_every_format(tmp_path):
    paths = write_leaderboard(rows(HOSTILE), tmp_path, suite=HOSTILE, figures=figures(HOSTILE), config={},
                              omitted=OMITTED.assign(reason=HOSTILE))
    md, tex, page = (paths[f"leaderboard.{x}"].read_text() for x in ("md", "tex", "html"))
    assert markdown(HOSTILE) in md and latex(HOSTILE) in tex and html_text(HOSTILE) in page
    assert "<script>" not in md and "<script>x" not in page
    for table in md_table_lines(md):  # no | in the name adds a cell
        assert len({len(re.findall(r"(?<!\\)\|", line)) for line in table}) == 1, table
    body = "\n".join(x for x in tex.split(r"\begin{document}")[1].splitlines() if not x.startswith(r"\label"))
    assert "<script>" not in body and not re.search(r"(?<!\\)%|(?<!\\)\$1|(?<!\\)_0", body)  # labels are slugs
    # a figure file TeX cannot read is named, not included; the other formats link it escaped
    file = f"{HOSTILE}-CH-50.png"
    assert rf"\texttt{{{latex(file)}}}" in tex and "includegraphics[width=\\linewidth]{<" not in tex
    assert f"src='{html_text(file)}'" in page and "&lt;script&gt;" in page


def test_each_writer_renders_only_the_document(tmp_path):
    """A hand-built document: each writer shows each node, in order, and nothing else."""
    t = Table("T & 1", pd.DataFrame({"explainer": ["a_1"], "v": [1.5]}), note="n%", caption="T & 1. c")
    doc = Document("D", [Paragraph("p $"), Section("S", 2, [
        TableBlock(t, "t1", "S: T & 1. c"),
        Section("Sub", 3, [BulletList(("i1", "i_2")), FigureBlock("f.png", "cap #", "f.svg", drawn=True)])],
        anchor="s", new_page=True)])
    md, tex, page = markdown_writer.render(doc), latex_writer.render(doc), html.render(doc)
    assert md.split("\n")[:6] == ["# D", "", "p \\$", "", "## S", ""]
    assert "#### T &amp; 1" in md and "| a\\_1 | 1.50 |" in md and "*n%*" in md and "- i\\_2" in md
    assert "![cap \\#](<f.png>)" in md and "### Sub" in md
    assert r"\clearpage" + "\n\n" + r"\subsection*{S}" in tex and r"\caption[S: T \& 1. c]{S: T \& 1. c\hbscale}" in tex
    assert r"\label{tab:t1}" in tex and r"\item i\_2" in tex and r"\caption{cap \#}" in tex and "n\\%" in tex
    assert tex.index(r"\subsubsection*{Sub}") < tex.index(r"\includegraphics[width=\linewidth]{f.png}")
    assert "<h2 id='s'>S</h2>" in page and "<h4>T &amp; 1</h4>" in page and "<li>i_2</li>" in page
    assert "id='fig-1'" in page and "href='f.svg'" in page and "<p>p $</p>" in page
    assert doc.attachments() == ["f.png", "f.svg"]


def test_latex_flushes_floats_every_eight_since_the_last_page_break():
    t = Table("T", pd.DataFrame({"explainer": ["a"], "v": [1.0]}))
    doc = Document("D", [Section(f"S{i}", 2, [TableBlock(t, f"t{i}{j}", "c") for j in range(n)], new_page=True)
                         for i, n in enumerate((9, 5, 4))])
    chunks = latex_writer.render(doc).split("\n\n")
    breaks = [i for i, c in enumerate(chunks) if c == r"\clearpage"]
    between = [sum(c.startswith(r"\begin{table}") for c in chunks[a:b]) for a, b in zip(breaks, breaks[1:] + [None])]
    assert between == [8, 1, 5, 4]  # S0: 8 then a break; S1 and S2 start on pages of their own


PDFLATEX = shutil.which("pdflatex")


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (apt-get install texlive-latex-extra)")
def test_latex_page_with_scenario_figures_and_the_not_computed_list_compiles(tmp_path):
    from hansbench.bench.report.writers import latex_overfull

    for f in figures() + figures("x%"):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1], [0, 1])
        fig.savefig(tmp_path / f.file)
        plt.close(fig)
    write_leaderboard(rows(HOSTILE), tmp_path, suite="tex", figures=figures() + figures("x%"), omitted=OMITTED,
                      config={})  # (a long unbreakable suite name overfills the title: not this test's subject)
    out = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "leaderboard.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=180)
    log = (tmp_path / "leaderboard.log").read_text(errors="replace")
    assert out.returncode == 0, log[-3000:]
    assert "curve-CH-50.png" in log and max(latex_overfull(log), default=0.0) <= 1.0
