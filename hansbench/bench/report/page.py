"""The leaderboard page built once, as a document (:mod:`hansbench.bench.report.document`), from the scenario
sections (:func:`hansbench.bench.report.leaderboard.build_sections`): the partial banner, the summary, the
critical-difference diagrams of the rankings, the sweeps, per scenario its tables (grouped under their
section), what was not computed and why, and its figures; then the figures of no scenario. The Markdown, LaTeX
and HTML writers (:mod:`hansbench.bench.report.render`) render this one tree, so the formats cannot drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from hansbench.bench.report import run_facts
from hansbench.bench.report.csv_files import csv_name, has_tidy
from hansbench.bench.report.document import (
    Banner,
    Block,
    BulletList,
    Contents,
    Document,
    FigureBlock,
    Paragraph,
    Section,
    TableBlock,
)
from hansbench.bench.report.escape import slug
from hansbench.bench.report.leaderboard import Table, seeded_rows
from hansbench.bench.suite.seeds import seed_list

SUMMARY_TITLE = "Summary: which detector finds the poisoned samples"
RANKINGS_TITLE = "Rankings across scenarios and seeds"
NOT_COMPUTED = "Not computed, and why"
NO_RESULTS = "No finished results yet."


def build_page(rows: pd.DataFrame, sections: list, out: Path, *, suite: str, figures: list | None = None,
               partial: str = "", config: dict | None = None) -> Document:
    """The page of ``sections``; draws the CD diagrams and the sweeps' figures (and writes the sweeps' CSVs) into
    ``out``. ``figures``: file names (shown at the end) or objects with ``scenario``, ``file``, ``caption`` and
    optionally ``vector`` (shown in their scenario's section). ``partial``: why the run is incomplete."""
    from hansbench.bench.report.sweep_report import sweep_page

    page = Document(f"hansbench leaderboard: suite {suite}")
    if partial:
        page.blocks.append(Banner(f"PARTIAL RESULTS: {partial}"))
    if not sections:
        page.blocks.append(Paragraph(NO_RESULTS))
    else:
        page.blocks += _summary(sections, suite, selection_note(rows, config))
        page.blocks.append(Contents(tuple((s.scenario, _scenario_anchor(s.scenario)) for s in sections)))
        page.blocks += _rankings(rows, sections, Path(out))
    page.blocks += sweep_page(rows, config, Path(out))  # the sweeps: after the rankings
    given: dict[str, list[FigureBlock]] = {}
    for scenario, block in map(given_figure, figures or []):
        given.setdefault(scenario, []).append(block)
    page.blocks += [_scenario(s, [*(given_figure(f)[1] for f in s.figures), *given.pop(s.scenario, [])])
                    for s in sections]
    rest = [b for blocks in given.values() for b in blocks]
    if rest:
        page.blocks.append(Section("Figures", 2, rest))
    return page


def given_figure(fig: Any) -> tuple[str, FigureBlock]:
    """(scenario or '', the block) of a figure given as a file name or a Figure-like object."""
    if isinstance(fig, str):
        return "", FigureBlock(fig, fig)
    return str(getattr(fig, "scenario", "")), FigureBlock(str(fig.file), str(getattr(fig, "caption", "") or fig.file),
                                                          str(getattr(fig, "vector", "") or ""))


def _scenario_anchor(scenario: str) -> str:
    return f"sc-{slug(scenario)}"


def selection_note(rows: pd.DataFrame, config: Any) -> str:
    """Where the summary's "best" detectors were chosen (issue 29: the winner's curse). They are chosen on the
    seeds they are reported on, so their means are biased upwards; the page says so in words, naming the seeds,
    and the suite's development seeds when it has any (its settings were tuned there, not its winners chosen)."""
    seeds = sorted({int(s) for s in rows["seed"].dropna()}) if "seed" in rows else []
    if not seeds:
        return ""
    dev = run_facts.dev_seeds(config)
    text = (f"Selection: the best detectors are chosen on the seeds they are reported on ({seed_list(seeds)}), so "
            "their means are biased upwards (the winner's curse); read a best detector's interval against its "
            "runner-up's, not as an unbiased estimate.")
    if dev:
        text += (f" The suite's settings were tuned on development seeds {seed_list(dev)}; no detector was chosen "
                 "there.")
    return text


def _summary(sections: list, suite: str, selection: str = "") -> list[Block]:
    """Which detector finds the poisoned samples, per scenario and model (its cells are sentences)."""
    from hansbench.bench.report.summary import SUMMARY_NOTE

    summary = [{"scenario": s.scenario, **r} for s in sections for r in s.summary]
    if not summary:
        return []
    table = Table("Summary", pd.DataFrame(summary).fillna(""), " ".join(x for x in (SUMMARY_NOTE, selection) if x))
    block = TableBlock(table, "summary-table", f"{suite}: summary, detection first (label-free)", heading=False,
                       prose=True)
    return [Section(SUMMARY_TITLE, 2, [block], anchor="summary")]


def _rankings(rows: pd.DataFrame, sections: list, out: Path) -> list[Block]:
    figs: list[Block] = [FigureBlock(png, r.caption, svg, drawn=True) for r, png, svg in write_rankings(rows, sections, out)]
    return [Section(RANKINGS_TITLE, 2, figs, anchor="rankings")] if figs else []


def _scenario(sec: Any, figures: list[FigureBlock]) -> Section:
    """One scenario: its tables under their sections' headings (a table's own heading only where its title is not
    the section's), what was not computed and why, its figures."""
    page = Section(sec.scenario, 2, anchor=_scenario_anchor(sec.scenario), new_page=True)
    group: Section | None = None
    for i, t in enumerate(sec.tables):
        if t.section and (group is None or t.section != group.title):
            group = Section(t.section, 3)
            page.blocks.append(group)
        (group or page).blocks.append(TableBlock(
            t, f"t-{slug(sec.scenario)}-{slug(t.id)}-{slug(t.model)}-{i}", f"{sec.scenario}: {t.caption or t.title}",
            heading=group is None or t.title != group.title, csv=csv_name(sec.scenario, t.id) if has_tidy(t) else ""))
    if sec.omitted:
        page.blocks.append(Section(NOT_COMPUTED, 3, [BulletList(tuple(sec.omitted))]))
    if figures:
        page.blocks.append(Section("Figures", 3, list(figures)))
    return page


def write_rankings(rows: pd.DataFrame, sections: list, out: Path) -> list[tuple[Any, str, str]]:
    """Critical-difference diagrams of the rankings across scenarios and seeds: [(ranking, png, svg)]."""
    from hansbench.bench.report.figures.cd_diagram import draw_cd
    from hansbench.bench.report.summary import rankings

    if rows.empty:
        return []
    _, pres, seeded = seeded_rows(rows)
    ranked = {s.scenario: set(s.ranked) for s in sections}  # decided by the gates, never read back from a status text
    written = []
    for r in rankings(seeded, pres, ranked):
        stem = f"cd-{slug(r.model)}-{'detection' if r.what.startswith('Detection') else 'explainers'}"
        png, svg = draw_cd(r.names, r.result.avg_ranks, r.result.cd, out / f"{stem}.png", f"{r.what}: {r.model}")
        written.append((r, png.name, svg.name))
    return written
