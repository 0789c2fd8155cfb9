"""The leaderboard page built once, as a document (:mod:`hansbench.bench.report.document`), from the scenario
sections (:func:`hansbench.bench.report.leaderboard.build_sections`): the partial banner, the summary (first in
every format: the answer before the evidence), the definitions of the names the tables share (one place for
each, e.g. attack success), the critical-difference diagrams of the rankings, the sweeps, per scenario its
tables (grouped under their section), what was not computed and why, and its figures; then the figures of no
scenario, and last how the run was made (commit, versions, device, CPU, threads, jobs, executor, wall time). The Markdown, LaTeX
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
DEFINITIONS_TITLE = "Definitions"
PROVENANCE_TITLE = "How this run was made"
FILES_NOTE = ("Every number of this page is in results.csv (one schema: scenario, model, detector, rule, metric, mean, "
              "ci_low, ci_high, n, k, unit, higher_is_better), every paired comparison with its p-values in "
              "verdicts.csv, each table's numbers in the CSV linked under it, and the whole run (page, CSVs, "
              "figures, the run's record and, where small, its results store) in run.zip beside this page.")
# The names the tables share, each defined once here: a table's column uses exactly this name (a test checks).
DEFINITIONS = {
    "asr": ("attack success: the percentage of the test images of the backdoor's source classes, stamped with its "
            "trigger, that the model predicts as the target class (the same count in every table; marked up (↑) "
            "where it says the poisoning took, in reliance, and down (↓) where an intervention should remove it, "
            "in accuracy, cleaning and pruning)."),
}


def build_page(rows: pd.DataFrame, sections: list, out: Path, *, suite: str, figures: list | None = None,
               partial: str = "", config: dict | None = None, runs: list | None = None) -> Document:
    """The page of ``sections``; draws the CD diagrams and the sweeps' figures (and writes the sweeps' CSVs) into
    ``out``. ``figures``: file names (shown at the end) or objects with ``scenario``, ``file``, ``caption`` and
    optionally ``vector`` (shown in their scenario's section). ``partial``: why the run is incomplete. ``runs``:
    the store's run records (:class:`hansbench.bench.engine.store.RunRecord`), shown last."""
    from hansbench.bench.report.sweep_report import sweep_page

    page = Document(f"hansbench leaderboard: suite {suite}")
    if partial:
        page.blocks.append(Banner(f"PARTIAL RESULTS: {partial}"))
    if not sections:
        page.blocks.append(Paragraph(NO_RESULTS))
    else:
        page.blocks += _summary(sections, suite, selection_note(rows, config))
        page.blocks += _definitions(sections)
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
    if runs:
        page.blocks.append(Section(PROVENANCE_TITLE, 2, [Paragraph(FILES_NOTE), BulletList(provenance_lines(runs))],
                                   anchor="provenance"))
    return page


def _definitions(sections: list) -> list[Block]:
    """The definitions of the names the page's tables use (only those it uses)."""
    used = [name for name in DEFINITIONS if any(_names(t.frame.columns, name) for s in sections for t in s.tables)]
    items = tuple(f"{name}: {DEFINITIONS[name]}" for name in used)
    return [Section(DEFINITIONS_TITLE, 2, [BulletList(items)], anchor="definitions")] if items else []


def _names(columns, name: str) -> bool:
    """Whether a column header names ``name`` (its first word, before " / ", " [" or an arrow)."""
    return any(str(c).split(" ")[0] == name for c in columns)


def _duration(seconds) -> str:
    if seconds is None:
        return "not recorded"
    m, s = divmod(round(float(seconds)), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def provenance_lines(runs: list) -> tuple[str, ...]:
    """One line per recorded run (latest last): its commit, where it ran (device, CPU, threads, jobs, executor),
    its wall time; then the package versions of the latest run. A field the run did not record says so."""
    def said(v) -> str:
        return "not recorded" if v in (None, "") else str(v)

    lines = [f"run {r.id} ({r.suite}, {r.status or 'status not recorded'}): commit {said(r.git_commit[:12])}; "
             f"device {said(r.device)}{f' ({r.gpu})' if r.gpu else ''}; CPU {said(r.cpu)}; threads per node "
             f"{said(r.threads)}; jobs side by side {said(r.jobs)}; executor {said(r.executor)}; wall time "
             f"{_duration(r.wall_s)}" for r in runs if r is not None]
    latest = next((r for r in reversed(runs) if r is not None), None)
    if latest is not None:
        versions = ", ".join(f"{k} {v}" for k, v in sorted(latest.versions.items())) or "not recorded"
        lines.append(f"package versions (run {latest.id}): {versions}")
    commits = {r.git_commit for r in runs if r is not None and r.git_commit}
    if len(commits) > 1:
        lines.append(f"the store's rows come from {len(commits)} commits: each node's rows are those of the run that "
                     "computed it")
    return tuple(lines)


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


def _links(rows: list[dict]) -> dict:
    """The rows' cell links (:data:`~hansbench.bench.report.summary.LINKS_KEY`) by (row, column): the HTML page's."""
    from hansbench.bench.report.summary import LINKS_KEY

    return {"links": {(i, k): h for i, r in enumerate(rows) for k, h in (r.get(LINKS_KEY) or {}).items()}}


def _summary(sections: list, suite: str, selection: str = "") -> list[Block]:
    """Which detector finds the poisoned samples, as the two questions of issue 28, one table each: per scenario
    and model, does the best detector separate the poison (its cells are sentences); then per scenario, model and
    flagging rule, can it flag the poison unaided (one short row per rule, so no cell runs on for a page)."""
    from hansbench.bench.report.summary import FLAG_COLUMN, FLAGS_KEY, FLAGS_NOTE, LINKS_KEY, SUMMARY_NOTE

    summary = [{"scenario": s.scenario, **r} for s in sections for r in s.summary]
    if not summary:
        return []
    flags = [{"scenario": r["scenario"], "model": r["model"], **f} for r in summary for f in r.get(FLAGS_KEY) or []]
    first = pd.DataFrame([{k: v for k, v in r.items() if k not in (FLAGS_KEY, FLAG_COLUMN, LINKS_KEY)} for r in summary])
    table = Table("Summary", first.fillna(""), " ".join(x for x in (SUMMARY_NOTE, selection) if x), result=_links(summary))
    blocks: list[Block] = [TableBlock(table, "summary-table", f"{suite}: does the detector separate the poison?",
                                      heading=False, prose=True)]
    if flags:
        second = Table("Can it flag the poison unaided?", pd.DataFrame([{k: v for k, v in f.items() if k != LINKS_KEY}
                                                                         for f in flags]).fillna(""), FLAGS_NOTE,
                       result=_links(flags))
        blocks.append(TableBlock(second, "summary-flags", f"{suite}: can the detector flag the poison unaided? "
                                 "(per flagging rule)", heading=True, prose=True))
    return [Section(SUMMARY_TITLE, 2, blocks, anchor="summary")]


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
