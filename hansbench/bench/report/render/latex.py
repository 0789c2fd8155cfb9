"""The LaTeX writer: one ``article`` of a page document, written so that pdflatex loses nothing (issue 29 item 5:
no "Float too large", no overfull box, every row in the PDF).

Tables are booktabs at ``\\footnotesize``, split into parts by columns
(:func:`hansbench.bench.report.render.columns.split_columns`). A part of at most :data:`FLOAT_ROWS` rows is a float;
one still wider than the line is scaled to the line width and its caption states the scale (``\\hbfit``, computed
by TeX from the typeset width). A longer part, and the summary (its cells are sentences, in a two-column layout),
is a ``longtable`` that breaks across pages with its header repeated: a float taller than a page is what TeX
drops. Figures are floats with their caption and a label; a ``\\clearpage`` flushes the floats every
:data:`FLOATS_PER_PAGE` of them, and before a section that starts a page. Every text is escaped
(:func:`hansbench.bench.report.escape.latex`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hansbench.bench.report import document as node
from hansbench.bench.report.escape import latex, latex_file, slug
from hansbench.bench.report.leaderboard import Table, format_value
from hansbench.bench.report.render.columns import KEY_COLUMNS, LATEX_BUDGET, split_columns

FLOATS_PER_PAGE = 8  # far below TeX's 18 unprocessed floats
FLOAT_ROWS = 30  # body rows of a table float at \footnotesize (about 11 pt each): more would not fit one page
LONG_BUDGET = 100  # characters per row of a longtable part (it cannot be scaled: split narrower)
HEADINGS = {1: "section", 2: "subsection", 3: "subsubsection"}
PREAMBLE = "\n".join([
    r"\documentclass{article}", r"\usepackage[T1]{fontenc}", r"\usepackage[utf8]{inputenc}", r"\usepackage{lmodern}",
    r"\usepackage{booktabs}", r"\usepackage{amssymb}", r"\usepackage{textcomp}",
    r"\usepackage{graphicx}", r"\usepackage[section]{placeins}", r"\usepackage{longtable}",
    r"\usepackage[margin=2.5cm]{geometry}",
    # a table wider than the line is scaled to it, and the caption says by how much (\hbscale, set before \caption)
    r"\newsavebox\hbtab", r"\newcommand\hbscale{\ifdim\wd\hbtab>\linewidth\space(set at "
    r"\the\numexpr 100*\linewidth/\wd\hbtab\relax\,\% to fit the page width)\fi}",
    r"\newcommand\hbfit{\ifdim\wd\hbtab>\linewidth\resizebox{\linewidth}{!}{\usebox\hbtab}\else\usebox\hbtab\fi}",
    r"\begin{document}", r"\sloppy"])


def _header(c: Any, align: str) -> str:
    pieces = [latex(p) for p in str(c).split(" / ")]
    if len(pieces) == 1:
        return pieces[0]
    return rf"\begin{{tabular}}[b]{{@{{}}{align}@{{}}}}" + r" \\ ".join(pieces) + r"\end{tabular}"


def _float(kind: str, caption: str, label: str, body: list[str], note: str = "", fit: str = "") -> str:
    r"""One ``table`` or ``figure`` float, centred: a table's caption and label above it, a figure's below; the
    note in small print at the foot. ``fit``: a tabular set into ``\hbtab`` first, then shown at the line width
    at most, the caption stating the scale where it was shrunk."""
    lab = [rf"\label{{{label}}}"] if label else []
    if fit:
        body = [r"\footnotesize", rf"\sbox\hbtab{{{fit}}}",
                rf"\caption[{latex(caption)}]{{{latex(caption)}\hbscale}}", *lab, r"\hbfit", *body]
    elif kind == "table":
        body = [r"\footnotesize", rf"\caption{{{latex(caption)}}}", *lab, *body]
    else:
        body = [*body, rf"\caption{{{latex(caption)}}}", *lab]
    return "\n".join([
        rf"\begin{{{kind}}}[!htbp]", r"\centering", *body,
        *([r"\par\smallskip\parbox{\linewidth}{\scriptsize " + latex(note) + "}"] if note else []),
        rf"\end{{{kind}}}"])


def _long(spec: str, width: int, caption: str, label: str, head: list[str], body: list[str], note: str = "") -> str:
    """A ``longtable``: breaks across pages, its caption first, ``head`` repeated on every page with
    "(continued)"; the note in small print under it; ``width``: its number of columns. What a float taller than a
    page would lose, it keeps."""
    return "\n".join([
        r"\begingroup\footnotesize", rf"\begin{{longtable}}{{{spec}}}",
        rf"\caption{{{latex(caption)}}}" + (rf"\label{{{label}}}" if label else "") + r" \\", *head, r"\endfirsthead",
        rf"\multicolumn{{{width}}}{{@{{}}l}}{{\emph{{\tablename~\thetable{{}} (continued)}}}} \\", *head, r"\endhead",
        r"\midrule", rf"\multicolumn{{{width}}}{{r@{{}}}}{{\emph{{continued on the next page}}}} \\", r"\endfoot",
        r"\bottomrule", r"\endlastfoot", *body, r"\end{longtable}",
        *([r"\par{\scriptsize " + latex(note) + r"\par}"] if note else []), r"\endgroup"])


def to_latex(frame: pd.DataFrame, caption: str, label: str = "", note: str = "") -> str:
    """One ``table`` float per part of the frame (a ``longtable`` per part when it has more than
    :data:`FLOAT_ROWS` rows): booktabs, \\footnotesize, at the line width at most, the caption (with n and the test)
    and ``\\label`` on each part, the note under the last."""
    return "\n\n".join(table_parts(frame, caption, label, note))


def _rows(part: pd.DataFrame, keys: int) -> list[str]:
    """The body rows; the reference rows (zero line, raw values) below a rule of their own."""
    body, ruled = [], False
    for _, r in part.iterrows():
        if not ruled and body and any("(reference" in str(v) for v in r.values[:keys]):
            body.append(r"\midrule")
            ruled = True
        body.append(" & ".join(latex(format_value(v)) for v in r.values) + r" \\")
    return body


def table_parts(frame: pd.DataFrame, caption: str, label: str = "", note: str = "") -> list[str]:
    """The floats (or longtables) of :func:`to_latex`, one per part."""
    long = len(frame) > FLOAT_ROWS
    parts = split_columns(frame, LONG_BUDGET if long else LATEX_BUDGET)
    out = []
    for i, part in enumerate(parts):
        cols = list(part.columns)
        keys = sum(1 for c in cols if c in KEY_COLUMNS) or 1
        spec = "l" * keys + "r" * (len(cols) - keys)
        head = [r"\toprule", " & ".join(_header(c, "l" if j < keys else "r") for j, c in enumerate(cols)) + r" \\",
                r"\midrule"]
        cap = caption if len(parts) == 1 else f"{caption} (part {i + 1} of {len(parts)})"
        lab = slug_label(f"{label}-{i + 1}" if label and len(parts) > 1 else label)
        last = note if i == len(parts) - 1 else ""
        if long:
            out.append(_long(spec, len(cols), cap, lab, head, _rows(part, keys), last))
            continue
        tabular = "\n".join([rf"\begin{{tabular}}{{{spec}}}", *head, *_rows(part, keys), r"\bottomrule",
                             r"\end{tabular}"])
        out.append(_float("table", cap, lab, [], last, fit=tabular))
    return out


def slug_label(label: str) -> str:
    """A ``\\label`` key: ``tab:``/``fig:`` kept, the rest :func:`hansbench.bench.report.escape.slug`."""
    kind, sep, rest = label.partition(":")
    return f"{kind}:{slug(rest)}" if sep and kind in ("tab", "fig") else (slug(label) if label else "")


def _summary(frame: pd.DataFrame, caption: str, label: str, note: str) -> str:
    """The summary as one row block per scenario x model (its cells are sentences: a two-column layout), a
    ``longtable`` so that a long summary runs on over pages instead of being dropped."""
    body = []
    for _, r in frame.iterrows():
        head = f"{r.get('scenario', '')} / {r.get('model', '')}"
        first = True
        for k, v in r.items():
            if k in ("scenario", "model") or v in ("", None):
                continue
            body.append((rf"\textbf{{{latex(head)}}}" if first else "") + f" & {latex(k)}: {latex(format_value(v))}"
                        + r" \\*")
            first = False
        if body:
            body[-1] = body[-1].removesuffix("*")
            body.append(r"\midrule")
    if body:
        body.pop()
    return _long(r"@{}p{0.22\linewidth}p{0.74\linewidth}@{}", 2, caption, slug_label(label), [r"\toprule"], body, note)


def note_beyond_caption(t: Table) -> str:
    """The part of the table's note its caption does not already say (the caption is "<title>. <said>")."""
    said = t.caption[len(t.title) + 2:] if t.caption.startswith(f"{t.title}. ") else ""
    if said and t.note.startswith(said):
        return t.note[len(said):].strip()
    return t.note.removesuffix(said) if said else t.note


def _figure(b: node.FigureBlock) -> str:
    """The figure as a float; a file whose name TeX cannot read (:func:`hansbench.bench.report.escape.latex_file`)
    is named instead of included."""
    file = latex_file(b.file)
    body = (rf"\includegraphics[width=\linewidth]{{{file}}}" if file else
            rf"\fbox{{\parbox{{0.9\linewidth}}{{\centering figure file \texttt{{{latex(b.file)}}} (its name "
            r"cannot be read by LaTeX)}}")
    return _float("figure", b.caption, f"fig:{slug(b.file.rsplit('.', 1)[0])}", [body])


@dataclass
class _Writer:
    """Walks the document; counts the floats since the last ``\\clearpage``."""

    chunks: list[str]
    floats: int = 0

    def page_break(self) -> None:
        if self.chunks[-1] != r"\clearpage":  # one is enough
            self.chunks.append(r"\clearpage")
        self.floats = 0

    def add_floats(self, floats: list[str]) -> None:
        for f in floats:
            self.chunks.append(f)
            self.floats += not f.startswith(r"\begingroup")  # a longtable is no float
            if self.floats >= FLOATS_PER_PAGE:
                self.page_break()

    def block(self, b: node.Block) -> None:
        if isinstance(b, node.Section):
            if b.new_page:
                self.page_break()
            self.chunks.append(rf"\{HEADINGS[b.level]}*{{{latex(b.title)}}}")
            for c in b.blocks:
                self.block(c)
        elif isinstance(b, node.TableBlock):
            t = b.table
            if b.prose:
                self.chunks.append(_summary(t.frame, b.caption, f"tab:{b.anchor}", t.note))
            else:
                self.add_floats(table_parts(t.frame, b.caption, f"tab:{b.anchor}", note_beyond_caption(t)))
        elif isinstance(b, node.FigureBlock):
            self.add_floats([_figure(b)])
        elif isinstance(b, node.BulletList):
            self.chunks.append("\n".join([r"\begin{itemize}", *(rf"\item {latex(x)}" for x in b.items),
                                          r"\end{itemize}"]))
        elif isinstance(b, node.Banner):
            self.chunks.append(latex(b.text) + r"\par")
        elif isinstance(b, node.Paragraph):
            self.chunks.append(latex(b.text))
        elif not isinstance(b, node.Contents):  # the headings are the contents
            raise TypeError(f"no LaTeX for {type(b).__name__}")


def render(doc: node.Document) -> str:
    """The page as a LaTeX document (compiles with pdflatex; booktabs, longtable, geometry, graphicx, placeins)."""
    w = _Writer([PREAMBLE, rf"\section*{{{latex(doc.title)}}}"])
    for b in doc.blocks:
        w.block(b)
    return "\n\n".join(w.chunks + [r"\end{document}"]) + "\n"


def latex_overfull(log: str) -> list[float]:
    """The overfull-box widths (pt) in a pdflatex log."""
    return [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
