"""The leaderboard page as one document tree, built once (:mod:`hansbench.bench.report.page`) and rendered by one
writer per format (:mod:`hansbench.bench.report.render`): Markdown, LaTeX and HTML carry the same sections,
tables, figures and notes because they read the same tree and nothing else.

The nodes say what the page holds, not how a format shows it: a :class:`Section` has a heading level and an
anchor, a :class:`TableBlock` wraps a :class:`hansbench.bench.report.leaderboard.Table` with the caption and
anchor it has on this page, a :class:`FigureBlock` names a file beside the page. Every text in the tree is plain
text; each writer escapes it (:mod:`hansbench.bench.report.escape`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Union

from hansbench.bench.report.leaderboard import Table


@dataclass(frozen=True)
class Banner:
    """A line every format shows first and loudly (the run is partial)."""

    text: str


@dataclass(frozen=True)
class Paragraph:
    """Plain text of its own (e.g. "No finished results yet.")."""

    text: str


@dataclass(frozen=True)
class BulletList:
    """Items, one line each (what was not computed, and why)."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Contents:
    """Links to sections: (title, anchor). Only a format that can jump shows it (HTML's nav bar)."""

    entries: tuple[tuple[str, str], ...]


@dataclass
class TableBlock:
    """A table on the page. ``anchor``: its HTML id and LaTeX label (``tab:<anchor>``); ``caption``: what LaTeX puts
    above it; ``heading``: its title is shown as a heading of its own (not when its section already says it);
    ``prose``: its cells are sentences (the summary: wrapped cells, a two-column LaTeX layout); ``csv``: the
    tidy CSV its numbers are written to beside the page ('' when none)."""

    table: Table
    anchor: str
    caption: str
    heading: bool = True
    prose: bool = False
    csv: str = ""


@dataclass(frozen=True)
class FigureBlock:
    """A figure file beside the page, its caption and its vector twin ('' when none). ``drawn``: written while the
    page was built (its files are among the page's outputs), not handed in by the caller."""

    file: str
    caption: str
    vector: str = ""
    drawn: bool = False


Block = Union[Banner, Paragraph, BulletList, Contents, TableBlock, FigureBlock, "Section"]


@dataclass
class Section:
    """A heading and what is under it. ``level``: 2 for a part of the page (the summary, a scenario), 3 within one;
    ``anchor``: its HTML id ('' = none); ``new_page``: LaTeX starts it on a page of its own."""

    title: str
    level: int
    blocks: list[Block] = field(default_factory=list)
    anchor: str = ""
    new_page: bool = False


@dataclass
class Document:
    """The whole page: its title (the level-1 heading) and its blocks in reading order."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def walk(self) -> Iterator[Block]:
        """Every block in reading order, sections before their contents."""
        stack = list(reversed(self.blocks))
        while stack:
            block = stack.pop()
            yield block
            if isinstance(block, Section):
                stack.extend(reversed(block.blocks))

    def sections(self) -> list[Section]:
        return [b for b in self.walk() if isinstance(b, Section)]

    def tables(self) -> list[TableBlock]:
        return [b for b in self.walk() if isinstance(b, TableBlock)]

    def figures(self) -> list[FigureBlock]:
        return [b for b in self.walk() if isinstance(b, FigureBlock)]

    def attachments(self) -> list[str]:
        """The files beside the page that building it wrote: drawn figures (and their vector twins) and tables'
        CSVs, in reading order, each once."""
        names = [n for b in self.figures() if b.drawn for n in (b.file, b.vector)]
        names += [b.csv for b in self.tables()]
        return list(dict.fromkeys(n for n in names if n))
