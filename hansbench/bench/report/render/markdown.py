"""The Markdown writer: GitHub-flavoured Markdown of a page document, every text escaped
(:func:`hansbench.bench.report.escape.markdown`)."""

from __future__ import annotations

import pandas as pd

from hansbench.bench.report import document as node
from hansbench.bench.report.escape import markdown, markdown_target
from hansbench.bench.report.leaderboard import format_value


def to_markdown(frame: pd.DataFrame) -> str:
    """A pipe table; an empty cell is a space (so every row has the header's number of cells)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(markdown(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in frame.iterrows():
        lines.append("| " + " | ".join(markdown(format_value(v)) or " " for v in r.values) + " |")
    return "\n".join(lines)


def _block(b: node.Block) -> list[str]:
    """The lines of one block, a blank line after each paragraph."""
    if isinstance(b, node.Section):
        return [f"{'#' * b.level} {markdown(b.title)}", ""] + [x for c in b.blocks for x in _block(c)]
    if isinstance(b, node.TableBlock):
        t = b.table
        return (([f"#### {markdown(t.title)}", ""] if b.heading else []) + [to_markdown(t.frame), ""]
                + ([f"*{markdown(t.note)}*", ""] if t.note else [])
                + ([f"Numbers: [{markdown(b.csv)}](<{markdown_target(b.csv)}>)", ""] if b.csv else []))
    if isinstance(b, node.FigureBlock):
        return [f"![{markdown(b.caption)}](<{markdown_target(b.file)}>)", "", f"*{markdown(b.caption)}*", ""]
    if isinstance(b, node.BulletList):
        return [f"- {markdown(x)}" for x in b.items] + [""]
    if isinstance(b, node.Banner):
        return [f"> **{markdown(b.text)}**", ""]
    if isinstance(b, node.Paragraph):
        return [markdown(b.text), ""]
    if isinstance(b, node.Contents):
        return []  # the headings are the contents
    raise TypeError(f"no Markdown for {type(b).__name__}")


def render(doc: node.Document) -> str:
    """The page as Markdown."""
    return "\n".join([f"# {markdown(doc.title)}", ""] + [x for b in doc.blocks for x in _block(b)])
