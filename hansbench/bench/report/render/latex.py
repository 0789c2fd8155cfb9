"""The LaTeX writer: one ``article`` of a page document. Tables are booktabs floats at ``\\footnotesize``, split
into parts by columns (:func:`hansbench.bench.report.render.columns.split_columns`) and each capped at the line
width; the summary is a two-column layout (its cells are sentences); figures are floats with their caption and a
label; a ``\\clearpage`` flushes the floats every :data:`FLOATS_PER_PAGE` of them, and before a section that
starts a page. Every text is escaped (:func:`hansbench.bench.report.escape.latex`)."""

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
HEADINGS = {1: "section", 2: "subsection", 3: "subsubsection"}
PREAMBLE = "\n".join([
    r"\documentclass{article}", r"\usepackage[T1]{fontenc}", r"\usepackage[utf8]{inputenc}", r"\usepackage{lmodern}",
    r"\usepackage{booktabs}", r"\usepackage{adjustbox}", r"\usepackage{amssymb}", r"\usepackage{textcomp}",
    r"\usepackage{graphicx}", r"\usepackage[section]{placeins}", r"\begin{document}"])


def _header(c: Any, align: str) -> str:
    pieces = [latex(p) for p in str(c).split(" / ")]
    if len(pieces) == 1:
        return pieces[0]
    return rf"\begin{{tabular}}[b]{{@{{}}{align}@{{}}}}" + r" \\ ".join(pieces) + r"\end{tabular}"


def _float(kind: str, caption: str, label: str, body: list[str], note: str = "") -> str:
    """One ``table`` or ``figure`` float, centred: a table's caption and label above it, a figure's below; the
    note in small print at the foot."""
    caption_ = [rf"\caption{{{latex(caption)}}}", *([rf"\label{{{label}}}"] if label else [])]
    body = [r"\footnotesize", *caption_, *body] if kind == "table" else [*body, *caption_]
    return "\n".join([
        rf"\begin{{{kind}}}[!htbp]", r"\centering", *body,
        *([r"\par\smallskip\parbox{\linewidth}{\scriptsize " + latex(note) + "}"] if note else []),
        rf"\end{{{kind}}}"])


def to_latex(frame: pd.DataFrame, caption: str, label: str = "", note: str = "") -> str:
    """One ``table`` float per part of the frame: booktabs, \\footnotesize, capped at the line width, the caption
    (with n and the test) and ``\\label`` on each part, the note under the last."""
    return "\n\n".join(table_parts(frame, caption, label, note))


def table_parts(frame: pd.DataFrame, caption: str, label: str = "", note: str = "") -> list[str]:
    """The floats of :func:`to_latex`, one per part."""
    parts = split_columns(frame, LATEX_BUDGET)
    out = []
    for i, part in enumerate(parts):
        cols = list(part.columns)
        keys = sum(1 for c in cols if c in KEY_COLUMNS) or 1
        body, ruled = [], False
        for _, r in part.iterrows():  # the reference rows (zero line, raw values) below a rule of their own
            if not ruled and body and any("(reference" in str(v) for v in r.values[:keys]):
                body.append(r"\midrule")
                ruled = True
            body.append(" & ".join(latex(format_value(v)) for v in r.values) + r" \\")
        cap = caption if len(parts) == 1 else f"{caption} (part {i + 1} of {len(parts)})"
        lab = f"{label}-{i + 1}" if label and len(parts) > 1 else label
        out.append(_float("table", cap, slug_label(lab), [
            r"\begin{adjustbox}{max width=\linewidth}", r"\begin{tabular}{" + "l" * keys + "r" * (len(cols) - keys) + "}",
            r"\toprule", " & ".join(_header(c, "l" if j < keys else "r") for j, c in enumerate(cols)) + r" \\",
            r"\midrule", *body, r"\bottomrule", r"\end{tabular}", r"\end{adjustbox}"],
            note if i == len(parts) - 1 else ""))
    return out


def slug_label(label: str) -> str:
    """A ``\\label`` key: ``tab:``/``fig:`` kept, the rest :func:`hansbench.bench.report.escape.slug`."""
    kind, sep, rest = label.partition(":")
    return f"{kind}:{slug(rest)}" if sep and kind in ("tab", "fig") else (slug(label) if label else "")


def _summary(frame: pd.DataFrame, caption: str, label: str, note: str) -> str:
    """The summary as one row block per scenario x model (its cells are sentences: a two-column layout)."""
    lines = [r"\begin{tabular}{@{}p{0.22\linewidth}p{0.74\linewidth}@{}}", r"\toprule"]
    for _, r in frame.iterrows():
        head = f"{r.get('scenario', '')} / {r.get('model', '')}"
        first = True
        for k, v in r.items():
            if k in ("scenario", "model") or v in ("", None):
                continue
            lines.append((rf"\textbf{{{latex(head)}}}" if first else "") + f" & {latex(k)}: {latex(format_value(v))}"
                         + r" \\")
            first = False
        lines.append(r"\midrule")
    if lines[-1] == r"\midrule":
        lines[-1] = r"\bottomrule"
    return _float("table", caption, slug_label(label), lines + [r"\end{tabular}"], note)


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
            self.floats += 1
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
            self.add_floats([_summary(t.frame, b.caption, f"tab:{b.anchor}", t.note)] if b.prose else
                            table_parts(t.frame, b.caption, f"tab:{b.anchor}", note_beyond_caption(t)))
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
    """The page as a LaTeX document (compiles with pdflatex; booktabs, adjustbox, graphicx, placeins)."""
    w = _Writer([PREAMBLE, rf"\section*{{{latex(doc.title)}}}"])
    for b in doc.blocks:
        w.block(b)
    return "\n\n".join(w.chunks + [r"\end{document}"]) + "\n"


def latex_overfull(log: str) -> list[float]:
    """The overfull-box widths (pt) in a pdflatex log."""
    return [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
