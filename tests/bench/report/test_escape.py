"""Every output format shows a name as the text it is: Markdown, LaTeX and HTML escaping."""

from __future__ import annotations

import html
import re

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from hansbench.bench.report.escape import html_text, latex, latex_file, markdown, markdown_target, slug

EVIL = ["<script>alert(1)</script>", "a&b_%#$", "x|y", "*bold* _it_ `code` [link](http://e.x) ~~s~~",
        "back\\slash {brace} ^caret~tilde", "&amp; &lt;", "two\nlines"]
MD_SPECIAL = set("\\`*_[]|~$#")
TEX_SPECIAL = set("\\&%$#_{}~^<>|")


def md_unescape(s: str) -> str:
    """What a CommonMark renderer shows for our escapes: backslash escapes and the three entities."""
    entities = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}
    return re.sub(r"\\(.)|&(?:lt|gt|amp);", lambda m: m.group(1) or entities[m.group(0)], s, flags=re.S)


def md_is_inert(s: str) -> bool:
    """No markup character stands unescaped, no raw < > or & that could open a tag or entity."""
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            if i + 1 >= len(s) or s[i + 1] not in MD_SPECIAL:
                return False
            i += 2
            continue
        if ch in MD_SPECIAL or ch in "<>":
            return False
        if ch == "&" and not re.match(r"&(lt|gt|amp);", s[i:]):
            return False
        i += 1
    return True


TEX_UNESCAPE = {r"\textbackslash{}": "\\", r"\textasciitilde{}": "~", r"\textasciicircum{}": "^",
                r"\textless{}": "<", r"\textgreater{}": ">", r"\textbar{}": "|", r"$\uparrow$": "↑",
                r"$\downarrow$": "↓", r"$\times$": "×", r"$\pm$": "±", "$-$": "−", r"\textdagger{}": "†",
                r"\textdaggerdbl{}": "‡", r"$\geq$": "≥", r"$\leq$": "≤", r"$\cdot$": "·",
                # the metrics' marks and the statistics' symbols (captions of CD diagrams, Demšar)
                r"\S{}": "§", r"\P{}": "¶", r"$\sharp$": "♯", r"$\diamond$": "◊", r"$\tau$": "τ", r"$\alpha$": "α",
                r"$\chi$": "χ", r"\textsuperscript{2}": "²", r"\ldots{}": "…", r"\textdegree{}": "°",
                r"$\varepsilon$": "ε", r"$\mu$": "μ", r"\v{s}": "š", r"$\approx$": "≈", r"$\rightarrow$": "→", r"$\neq$": "≠"}


def tex_unescape(s: str) -> str:
    pattern = "|".join(re.escape(k) for k in sorted(TEX_UNESCAPE, key=len, reverse=True)) + r"|\\[&%$#_{}]|--"
    return re.sub(pattern, lambda m: TEX_UNESCAPE.get(m.group(0), "–" if m.group(0) == "--" else m.group(0)[1:]), s)


def tex_is_inert(s: str) -> bool:
    stripped = re.sub("|".join(re.escape(k) for k in TEX_UNESCAPE) + r"|\\[&%$#_{}]", "", s)
    return not set(stripped) & TEX_SPECIAL


def one_line(text: str) -> str:
    return " ".join(text.splitlines())


@given(st.text())
def test_markdown_escape_is_inert_and_shows_the_text(text):
    out = markdown(text)
    assert md_is_inert(out), out
    assert md_unescape(out) == one_line(text)
    assert "\n" not in out and "\r" not in out


@given(st.text())
def test_latex_escape_is_inert_and_shows_the_text(text):
    text = text.replace("--", "-\u200b-")  # '--' is itself how the en dash is written
    out = latex(text)
    assert tex_is_inert(out), out
    assert tex_unescape(out) == one_line(text)


@given(st.text())
def test_html_escape_round_trips(text):
    out = html_text(text)
    assert not set(out) & set("<>\"'") and html.unescape(out) == one_line(text)


def test_examples():
    assert markdown("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert markdown("a&b_%#$") == "a&amp;b\\_%\\#\\$"
    assert markdown("x|y") == "x\\|y"
    assert latex("a&b_%#$") == r"a\&b\_\%\#\$"
    assert latex("<b>~^\\{}") == r"\textless{}b\textgreater{}\textasciitilde{}\textasciicircum{}\textbackslash{}\{\}"
    assert html_text("<a href='x'>&</a>") == "&lt;a href=&#x27;x&#x27;&gt;&amp;&lt;/a&gt;"


def test_leaderboard_escapes_names_in_every_format(tmp_path):
    from hansbench.bench.engine.store import ROW_COLUMNS
    from hansbench.bench.report.writers import write_leaderboard

    base = dict(seed=0, model="classifier", clusterer="", rule="", split="", stage="", detail="", unit="", family="fam",
                higher_is_better=True)
    recs = [dict(scenario=s, explainer=e, metric=m, value=v) for s in ("CH|<i>50</i>", "a&b_%#$")
            for e, m, v in ((EVIL[0], "m_1%", 1.0), ("a&b_%#$", "m_1%", 2.0), (EVIL[3], "m_1%", 3.0))]
    rows = pd.DataFrame([{**base, **r} for r in recs])[ROW_COLUMNS]
    paths = write_leaderboard(rows, tmp_path, suite="<b>s</b>_`x`")
    md = paths["leaderboard.md"].read_text()
    tex = paths["leaderboard.tex"].read_text()
    page = paths["leaderboard.html"].read_text()

    for name in (EVIL[0], "a&b_%#$", EVIL[3], "CH|<i>50</i>", "m_1%"):
        assert markdown(name) in md and latex(name) in tex, name
    assert "<script>" not in md and "<i>" not in md and "<b>" not in md
    assert "# hansbench leaderboard: suite &lt;b&gt;s&lt;/b&gt;\\_\\`x\\`" in md
    tables, current = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    assert sum(len(t) for t in tables) >= 6
    for t in tables:  # no | in a name may add a cell: every row has the header's number of cells
        assert len({len(re.findall(r"(?<!\\)\|", line)) for line in t}) == 1, t
    assert r"a\&b\_\%\#\$" in tex and r"\textless{}script\textgreater{}" in tex and "<" not in tex
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "<i>50" not in page and "<b>s</b>" not in page
    assert "a&amp;b_%#$" in page


def test_latex_writes_the_leaderboard_symbols_as_commands():
    """Cells carry ± (mean ± std), − (relative to the reference), † (fallback) and ‡ (gated): none may reach
    LaTeX as a raw Unicode character that pdflatex rejects."""
    out = latex("1 ± 2 − 3 † ‡ ≥ ≤ ·")
    assert not set(out) & set("±−†‡≥≤·")
    assert r"$\pm$" in out and r"\textdagger{}" in out and r"\textdaggerdbl{}" in out


@given(st.text())
def test_slug_is_one_safe_piece_and_keeps_what_is_safe(text):
    out = slug(text)
    assert out and all(ch.isalnum() or ch in "-_." for ch in out) and len(out) == max(len(text), 1)
    assert all(a == b for a, b in zip(text, out) if a.isalnum() or a in "-_.")


def test_slug_examples_and_its_users():
    from hansbench.bench.report.writers import csv_name

    assert slug("CH-50") == "CH-50" and slug("a/b c:d") == "a_b_c_d" and slug("") == "_"
    assert csv_name("a/b", "t") == "a_b.t.csv" and csv_name("", "x y") == "_.x_y.csv"


@given(st.text())
def test_a_figure_file_is_included_by_latex_only_when_tex_reads_its_name_verbatim(name):
    out = latex_file(name)
    assert out is None or (out == name and not set(out) & set("%#&{}\\$^~") and out.isascii())
    assert ">" not in markdown_target(name) and "<" not in markdown_target(name) and "\n" not in markdown_target(name)


def test_latex_file_examples():
    assert latex_file("curves-CH-50-classifier.png") == "curves-CH-50-classifier.png"
    assert latex_file("a b_c.png") == "a b_c.png"  # spaces and underscores: graphicx reads them
    assert latex_file("curve 1%.png") is None and latex_file("x#.png") is None and latex_file("é.png") is None
